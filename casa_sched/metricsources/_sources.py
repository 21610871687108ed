"""Every metrics source, registered by name (``forecast.source``)."""

from __future__ import annotations

from collections.abc import Callable

from casa_sched.clock import Clock
from casa_sched.metricsources.base import PromClient, PrometheusSource
from casa_sched.metricsources.knative import KnativeSource
from casa_sched.metricsources.openfaas import OpenFaasSource
from casa_sched.metricsources.promql import PromqlSource
from casa_sched.registry import Registry
from casa_sched.settings import CasaSettings


class SourceError(ValueError):
    """Settings that do not make a metrics source; the message names the setting."""


SourceFactory = Callable[[CasaSettings, PromClient], PrometheusSource]
SOURCES: Registry[SourceFactory] = Registry("metrics source", SourceError)


def _promql(s: CasaSettings, client: PromClient) -> PrometheusSource:
    f = s.forecast
    if not (f.promql_requests_per_s and f.promql_duration_s and f.function_label):
        raise SourceError(
            "forecast.source=promql needs forecast.promql_requests_per_s, promql_duration_s and function_label"
        )
    return PromqlSource.create(
        client, f.promql_requests_per_s, f.promql_duration_s, f.function_label, f.promql_in_flight
    )


SOURCES.add("openfaas", lambda s, c: OpenFaasSource.create(c, s.forecast.selector, s.openfaas.namespace,
                                                           s.forecast.function_label))  # fmt: skip
SOURCES.add("knative", lambda s, c: KnativeSource.create(c, s.forecast.knative_generation, s.forecast.selector,
                                                         s.forecast.function_label, s.forecast.history_minutes))  # fmt: skip
SOURCES.add("promql", _promql)


def create_source(settings: CasaSettings) -> PrometheusSource:
    """The source ``forecast.source`` names, on ``autoscaler.prometheus_url``."""
    f = settings.forecast
    client = PromClient(settings.autoscaler.prometheus_url, timeout_s=f.query_timeout_s, retries=f.query_retries,
                        clock=Clock.from_settings(settings))  # fmt: skip
    return SOURCES.get(f.source)(settings, client)
