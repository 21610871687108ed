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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from casa_sched._typing import FloatArray
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
        if client.instant(f"count(last_over_time({g.counter}{matchers(selector)}[{client.window(window_min * 60.0)}]))"):
            return g
    raise MetricsUnavailable(
        "series_missing",
        "no Knative queue-proxy request metrics in Prometheus (from 1.19 set request-metrics-protocol: "
        "prometheus in config-observability)",
    )


@dataclass
class KnativeSource(PrometheusSource):
    generation: str = ""
    detect_window_min: int = 60

    def _use(self, g: Generation, label: str | None = None) -> None:
        lab = label or g.label
        self.function_label = lab
        self.counter = g.counter
        self.duration_sum, self.duration_count, self.duration_scale = (
            f"{g.duration}_sum",
            f"{g.duration}_count",
            g.duration_scale,
        )
        self.in_flight_expr = f"sum by ({lab}) ({g.depth}{{sel}})"
        self.generation = g.name

    def detect(self) -> str:
        """The generation in use, detected on first use under ``auto`` (so a Prometheus outage at
        start-up is an ordinary outage, handled by the forecast's fallback, not a failed start)."""
        if not self.generation:
            g = detect_generation(self.client, self.selector, self.detect_window_min)
            log.info("Knative request metrics: generation %s (releases %s): %s", g.name, g.releases, g.counter)
            self._use(g, self._label_override)
        return self.generation

    _label_override: str | None = None

    def request_counts(self, functions: Sequence[str], end: datetime, minutes: int) -> Mapping[str, FloatArray]:
        self.detect()
        return super().request_counts(functions, end, minutes)

    def mean_duration_s(self, functions: Sequence[str], end: datetime, minutes: int) -> Mapping[str, float]:
        self.detect()
        return super().mean_duration_s(functions, end, minutes)

    def in_flight(self, functions: Sequence[str]) -> Mapping[str, float]:
        try:
            self.detect()
        except MetricsUnavailable:
            return {}  # unknown until the generation is known
        return super().in_flight(functions)

    @classmethod
    def create(cls, client: PromClient, generation: str = "auto", selector: str = "", label: str | None = None,
               window_min: int = 60) -> KnativeSource:  # fmt: skip
        """A source for ``generation`` (a name of :data:`GENERATIONS`, or ``auto``: detected at first use)."""
        src = cls(client=client, function_label=label or "", selector=selector, detect_window_min=window_min)
        src._label_override = label
        if generation != "auto":
            src._use(BY_NAME[generation], label)
        return src
