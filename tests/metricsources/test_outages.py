"""The live forecast when Prometheus fails: last known forecast for a bounded number of epochs,
counted and logged once per cause, then the function keeps its containers (held).

A real Prometheus with one function's backfilled history ("fa": 10 requests every minute),
stopped and started again on the same port and storage; a socket that accepts connections but
never answers for timeouts; a PromQL syntax error for a bad response.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest

from casa_sched.autoscaler.forecast import FunctionInfo, HistoryForecaster
from casa_sched.devcluster.prometheus import PrometheusServer, Sample, backfilled_server, tools_missing
from casa_sched.forecasting import create
from casa_sched.metrics import CasaMetrics
from casa_sched.metricsources import MetricsUnavailable, PromClient
from casa_sched.metricsources.openfaas import OpenFaasSource

pytestmark = [pytest.mark.prometheus, pytest.mark.skipif(tools_missing() is not None, reason=str(tools_missing()))]

M = 30
RATE_PER_MIN = 10.0
FUNCTIONS = [FunctionInfo("fa", 150.0), FunctionInfo("ghost", 150.0)]  # ghost has no series at all


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrometheusServer, datetime]]:
    end_s = (int(datetime.now(UTC).timestamp()) // 60) * 60 - 60
    t0 = end_s - 60.0 * M
    name = {"function_name": "fa", "code": "200"}
    samples: list[Sample] = []
    for k in range(M + 1):
        samples.append(("gateway_function_invocation_total", name, t0 + 60.0 * k, RATE_PER_MIN * k))
        samples.append(
            ("gateway_functions_seconds_sum", {"function_name": "fa"}, t0 + 60.0 * k, 0.2 * RATE_PER_MIN * k)
        )
        samples.append(("gateway_functions_seconds_count", {"function_name": "fa"}, t0 + 60.0 * k, RATE_PER_MIN * k))
    server = backfilled_server(tmp_path_factory.mktemp("prom"), samples)
    try:
        yield server, datetime.fromtimestamp(end_s, UTC)
    finally:
        server.stop()


def live(url: str, metrics: CasaMetrics, timeout_s: float = 5.0) -> HistoryForecaster:
    """As ``casa autoscaler`` wires it: fallbacks and staleness into the process's metrics."""
    source = OpenFaasSource.create(PromClient(url, timeout_s=timeout_s, retries=1, backoff_s=0.01))
    return HistoryForecaster(
        source, 1.0, create("last"), history_minutes=M, max_stale_epochs=2,
        on_fallback=lambda reason: metrics.signal_fallback_total.labels(signal="forecast", reason=reason).inc(),
        on_stale=lambda fn, n: metrics.forecast_stale_epochs.labels(function=fn).set(n),
    )  # fmt: skip


def value(metrics: CasaMetrics, name: str, **labels: str) -> float:
    got = metrics.registry.get_sample_value(name, labels)
    return 0.0 if got is None else got


def test_outage_uses_the_last_forecast_for_max_stale_epochs_then_holds(prom, caplog):
    server, end = prom
    metrics = CasaMetrics()
    fc = live(server.url, metrics)
    caplog.set_level(logging.INFO, logger="casa_sched.autoscaler.forecast")

    first = fc.forecast(1, end, 900.0, FUNCTIONS)
    assert first.forecast.function_ids == ("fa",)
    assert first.forecast.counts.tolist() == [[RATE_PER_MIN] * 15]  # last value: the previous 15 minutes
    assert first.held == ("ghost",)  # never read: held at once, nothing invented

    server.stop()
    try:
        outcomes = [fc.forecast(e, end, 900.0, FUNCTIONS) for e in (2, 3, 4)]
        stale = [value(metrics, "casa_forecast_stale_epochs", function="fa")]
        unavailable: list[tuple[str, str]] = []
        src = fc.source
        assert isinstance(src, OpenFaasSource)
        src.on_unavailable = lambda signal, reason: unavailable.append((signal, reason))
        # the saturation signals are unknown (empty) during the outage: no intra-epoch growth from them
        assert (src.in_flight(["fa"]), src.cpu_usage_cores(["openfaas-fn/fa-1"])) == ({}, {})
        assert unavailable == [("in_flight", "unreachable"), ("cpu_usage", "unreachable")]
    finally:
        server.start()
    # epochs 2 and 3: fa planned on its last known forecast (the same numbers); epoch 4: past
    # max_stale_epochs = 2, it keeps its containers
    assert [o.forecast.function_ids for o in outcomes] == [("fa",), ("fa",), ()]
    assert [o.held for o in outcomes] == [("ghost",), ("ghost",), ("fa", "ghost")]
    np.testing.assert_array_equal(outcomes[0].forecast.counts, first.forecast.counts)
    assert stale == [3.0]
    # two functions x three epochs without Prometheus; ghost's missing series in epoch 1
    assert value(metrics, "casa_signal_fallback_total", signal="forecast", reason="unreachable") == 6.0
    assert value(metrics, "casa_signal_fallback_total", signal="forecast", reason="series_missing") == 1.0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("forecast: unreachable" in w for w in warnings) == 1  # one line per cause, not per epoch or query

    back = fc.forecast(5, end, 900.0, FUNCTIONS)
    assert back.forecast.function_ids == ("fa",)
    assert value(metrics, "casa_forecast_stale_epochs", function="fa") == 0.0
    assert any("unreachable cleared" in r.getMessage() for r in caplog.records)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP port that accepts connections and never answers (a hung Prometheus)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    try:
        yield f"http://127.0.0.1:{s.getsockname()[1]}"
    finally:
        s.close()


def test_a_query_timing_out_is_a_timeout_fallback(silent_server, prom):
    _, end = prom
    with pytest.raises(MetricsUnavailable) as err:
        PromClient(silent_server, timeout_s=0.2, retries=1, backoff_s=0.01).instant("up")
    assert err.value.reason == "timeout"
    metrics = CasaMetrics()
    got = live(silent_server, metrics, timeout_s=0.2).forecast(1, end, 900.0, FUNCTIONS)
    assert got.held == ("fa", "ghost")  # no forecast ever read: held
    assert value(metrics, "casa_signal_fallback_total", signal="forecast", reason="timeout") == 2.0


def test_a_bad_query_is_a_bad_response_not_retried(prom):
    server, _ = prom
    with pytest.raises(MetricsUnavailable, match="parse error") as err:
        PromClient(server.url).instant("sum(")
    assert err.value.reason == "bad_response"
