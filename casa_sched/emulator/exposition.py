"""The emulation's counters in the exposition formats real exporters use. Pure.

The names and labels are the ones the repository's readers query, so the real forecast
(``casa_sched.metricsources``) and accounting (``casa_sched.accounting.live``) paths run on the
emulated cluster unchanged:

- **OpenFaaS gateway** (``openfaas``): ``gateway_function_invocation_started{function_name}``
  (arrivals), ``gateway_function_invocation_total{function_name,code}`` (finished: 200 served,
  504 dropped at the deadline), ``gateway_functions_seconds`` (histogram of end-to-end latency,
  s; a drop counts at its deadline);
- **Knative queue-proxy**, generation ``opencensus`` (``knative``):
  ``revision_app_request_count{service_name,namespace_name,revision_name,response_code}``,
  ``revision_app_request_latencies`` (histogram of the user container's time, **ms**: a served
  request's execution time; a dropped request never reaches the container),
  ``revision_request_latencies`` (histogram of the queue-proxy's end-to-end time, ms: waits
  included, drops in ``+Inf``), ``revision_queue_depth`` (requests in flight);
- **cAdvisor** (``cadvisor``): ``container_cpu_usage_seconds_total{namespace,pod,container,node}``,
  CPU seconds per *wall-clock* second (:mod:`casa_sched.clock`), so ``rate()`` is busy cores.

A served request is counted in ``gateway_function_invocation_total`` once it has finished by
the end of a replayed window (a drop at once), so started − total is the requests in flight,
as the OpenFaaS source reads it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from casa_sched.emulator.core import FunctionCounters

FORMATS: tuple[str, ...] = ("openfaas", "knative", "cadvisor")


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_esc(v)}"' for k, v in labels.items()) + "}"


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _histogram(
    out: list[str], name: str, labels: Mapping[str, str], bounds: Sequence[float], buckets: Sequence[int],
    total: float, scale: float,
) -> None:  # fmt: skip
    for b, n in zip([*bounds, math.inf], buckets, strict=True):
        le = "+Inf" if math.isinf(b) else _num(b * scale)
        out.append(f"{name}_bucket{_labels(**labels, le=le)} {n}")
    out.append(f"{name}_sum{_labels(**labels)} {_num(total * scale)}")
    out.append(f"{name}_count{_labels(**labels)} {buckets[-1]}")


def render(
    counters: Mapping[str, FunctionCounters],
    pod_cpu_s: Mapping[tuple[str, str, str, str], float],
    *,
    formats: Iterable[str] = FORMATS,
    namespace: str = "default",
    clock_factor: float = 1.0,
) -> str:
    """The text exposition (version 0.0.4) of ``counters`` and the pods' CPU in ``formats``.

    ``pod_cpu_s`` is emulated core-seconds per (namespace, pod, container, node); they are
    exported per wall-clock second (divided by ``clock_factor``).
    """
    wanted = set(formats)
    out: list[str] = []
    fns = sorted(counters)
    if "openfaas" in wanted:
        out.append("# HELP gateway_function_invocation_started The number of function invocations started.")
        out.append("# TYPE gateway_function_invocation_started counter")
        for f in fns:
            out.append(f"gateway_function_invocation_started{_labels(function_name=f)} {counters[f].requests}")
        out.append("# HELP gateway_function_invocation_total The number of function invocations finished.")
        out.append("# TYPE gateway_function_invocation_total counter")
        for f in fns:
            c = counters[f]
            out.append(f"gateway_function_invocation_total{_labels(function_name=f, code='200')} {c.finished}")
            out.append(f"gateway_function_invocation_total{_labels(function_name=f, code='504')} {c.dropped}")
        out.append("# HELP gateway_functions_seconds Function time taken.")
        out.append("# TYPE gateway_functions_seconds histogram")
        for f in fns:
            c = counters[f]
            _histogram(out, "gateway_functions_seconds", {"function_name": f}, c.bounds_s, c.latency_buckets,
                       c.latency_s, 1.0)  # fmt: skip
    if "knative" in wanted:
        out.append("# HELP revision_app_request_count The number of requests that are routed to queue-proxy.")
        out.append("# TYPE revision_app_request_count counter")
        for f in fns:
            c = counters[f]
            base = {"service_name": f, "namespace_name": namespace, "revision_name": f"{f}-00001"}
            out.append(f"revision_app_request_count{_labels(**base, response_code='200')} {c.served}")
            out.append(f"revision_app_request_count{_labels(**base, response_code='504')} {c.dropped}")
        for name, attr, total, help_ in (
            ("revision_app_request_latencies", "service_buckets", "service_s",
             "The distribution of request latencies in the user container, ms."),
            ("revision_request_latencies", "latency_buckets", "latency_s",
             "The distribution of request latencies through queue-proxy, ms."),
        ):  # fmt: skip
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} histogram")
            for f in fns:
                c = counters[f]
                base = {"service_name": f, "namespace_name": namespace, "revision_name": f"{f}-00001"}
                _histogram(out, name, base, c.bounds_s, getattr(c, attr), getattr(c, total), 1000.0)
        out.append("# HELP revision_queue_depth The current number of items in the serving and waiting queue.")
        out.append("# TYPE revision_queue_depth gauge")
        for f in fns:
            base = {"service_name": f, "namespace_name": namespace, "revision_name": f"{f}-00001"}
            out.append(f"revision_queue_depth{_labels(**base)} {counters[f].in_flight}")
    if "cadvisor" in wanted:
        out.append("# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.")
        out.append("# TYPE container_cpu_usage_seconds_total counter")
        for (ns, pod, container, node), core_s in sorted(pod_cpu_s.items()):
            labels = _labels(namespace=ns, pod=pod, container=container, node=node)
            out.append(f"container_cpu_usage_seconds_total{labels} {_num(core_s / clock_factor)}")
    return "\n".join(out) + "\n"
