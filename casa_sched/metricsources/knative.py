"""Knative Serving: the queue-proxy's request metrics, under each generation of their names.

The names changed twice (check a cluster's with ``kubectl -n knative-serving get deploy controller
-o jsonpath='{.metadata.labels.app\\.kubernetes\\.io/version}'``):

- ``opencensus`` — releases up to 1.18: ``revision_app_request_count`` (counter) and
  ``revision_app_request_latencies`` (histogram, **ms**), labels ``service_name``,
  ``namespace_name``, ``revision_name``, ``pod_name``, ``response_code``; in-flight from
  ``revision_queue_depth``.
- ``otel-queueproxy`` — 1.19.0-1.19.7 and 1.20.0 (OpenTelemetry): ``kn.queueproxy.app.duration``
  (histogram, s) and ``kn.queueproxy.depth``, exported to Prometheus as
  ``kn_queueproxy_app_duration_seconds_{bucket,sum,count}`` and ``kn_queueproxy_depth``, labels
  ``kn_service_name``, ``k8s_namespace_name``, ``k8s_pod_name``, ``http_response_status_code``.
- ``otel-serving`` — 1.19.8+, 1.20.1+ and 1.21+ (serving PR #16290 renamed them):
  ``kn_serving_invocation_duration_seconds_*`` and ``kn_serving_queue_depth``, same labels.

From 1.19 request metrics are exported only when ``config-observability`` sets
``request-metrics-protocol: prometheus``. ``knative_generation: auto`` picks the newest generation
that has series in the history window (a cluster mid-upgrade has both); the choice is logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from casa_sched.metricsources.base import MetricsUnavailable, PromClient, PrometheusSource, matchers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Generation:
    name: str
    releases: str
    counter: str
    duration: str  # histogram base name
    duration_scale: float  # to seconds
    depth: str
    label: str


GENERATIONS: tuple[Generation, ...] = (  # newest first: auto prefers it
    Generation("otel-serving", "1.19.8+, 1.20.1+, 1.21+", "kn_serving_invocation_duration_seconds_count",
               "kn_serving_invocation_duration_seconds", 1.0, "kn_serving_queue_depth", "kn_service_name"),
    Generation("otel-queueproxy", "1.19.0-1.19.7, 1.20.0", "kn_queueproxy_app_duration_seconds_count",
               "kn_queueproxy_app_duration_seconds", 1.0, "kn_queueproxy_depth", "kn_service_name"),
    Generation("opencensus", "<= 1.18", "revision_app_request_count", "revision_app_request_latencies",
               0.001, "revision_queue_depth", "service_name"),
)  # fmt: skip
BY_NAME = {g.name: g for g in GENERATIONS}


def detect_generation(client: PromClient, selector: str = "", window_min: int = 60) -> Generation:
    """The newest generation whose request counter has series within ``window_min`` minutes."""
    for g in GENERATIONS:  # newest first; a name inside a range function is dropped, so one query each
        if client.instant(f"count(last_over_time({g.counter}{matchers(selector)}[{window_min}m]))"):
            return g
    raise MetricsUnavailable(
        "series_missing",
        "no Knative queue-proxy request metrics in Prometheus (from 1.19 set request-metrics-protocol: "
        "prometheus in config-observability)",
    )


@dataclass
class KnativeSource(PrometheusSource):
    generation: str = ""

    @classmethod
    def create(cls, client: PromClient, generation: str = "auto", selector: str = "", label: str | None = None,
               window_min: int = 60) -> KnativeSource:  # fmt: skip
        g = detect_generation(client, selector, window_min) if generation == "auto" else BY_NAME[generation]
        log.info("Knative request metrics: generation %s (releases %s): %s", g.name, g.releases, g.counter)
        lab = label or g.label
        return cls(
            client=client,
            function_label=lab,
            selector=selector,
            counter=g.counter,
            duration_sum=f"{g.duration}_sum",
            duration_count=f"{g.duration}_count",
            duration_scale=g.duration_scale,
            in_flight_expr=f"sum by ({lab}) ({g.depth}{{sel}})",
            generation=g.name,
        )
