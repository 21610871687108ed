"""Metrics sources of the live forecast: what each function did, read from Prometheus.

One module per platform behind the autoscaler's ``MetricsSource`` protocol (request counts per
minute, mean execution time, requests in flight, pods' CPU): ``openfaas`` (gateway metrics),
``knative`` (queue-proxy metrics, three generations of names, detected), ``promql`` (a configured
PromQL pair). :func:`create_source` builds the one ``forecast.source`` names. Outer layer:
prometheus-api-client and HTTP live here, never in the forecasters.
"""

from casa_sched.metricsources._sources import SOURCES, SourceError, create_source
from casa_sched.metricsources.base import BAD_RESPONSE, TIMEOUT, UNREACHABLE, MetricsUnavailable, PromClient

__all__ = [
    "BAD_RESPONSE",
    "SOURCES",
    "TIMEOUT",
    "UNREACHABLE",
    "MetricsUnavailable",
    "PromClient",
    "SourceError",
    "create_source",
]
