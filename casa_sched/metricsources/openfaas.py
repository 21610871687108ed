"""OpenFaaS: the gateway's own metrics (openfaas/faas ``gateway/metrics/metrics.go``).

- ``gateway_function_invocation_total{function_name, code}``: completed invocations (counter);
- ``gateway_function_invocation_started{function_name}``: invocations started (counter), so
  started - total is the requests in flight now;
- ``gateway_functions_seconds{function_name}``: a histogram of invocation time, s.

Recent gateways name functions ``name.namespace`` (``figlet.openfaas-fn``); the namespace suffix
of ``openfaas.namespace`` is stripped so ids match the ``faas_function`` pod label.
"""

from __future__ import annotations

from dataclasses import dataclass

from casa_sched.metricsources.base import PromClient, PrometheusSource

LABEL = "function_name"


@dataclass
class OpenFaasSource(PrometheusSource):
    @classmethod
    def create(
        cls, client: PromClient, selector: str = "", namespace: str = "", label: str | None = None
    ) -> OpenFaasSource:
        lab = label or LABEL
        return cls(
            client=client,
            function_label=lab,
            selector=selector,
            counter="gateway_function_invocation_total",
            duration_sum="gateway_functions_seconds_sum",
            duration_count="gateway_functions_seconds_count",
            in_flight_expr=(
                f"sum by ({lab}) (gateway_function_invocation_started{{sel}}) - "
                f"sum by ({lab}) (gateway_function_invocation_total{{sel}})"
            ),
            function_suffix=f".{namespace}" if namespace else "",
        )
