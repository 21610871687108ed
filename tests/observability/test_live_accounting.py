"""Live accounting against a real Prometheus holding backfilled cAdvisor, meter and latency series.

The history is written at known times (every 15 s around 2024-07-10 12:00 UTC) with counters
rising at fixed rates, so every query the accountant makes at a fixed evaluation time has an
exact answer (rate() and increase() of a straight line are its slope), and the energy, carbon,
cost and SLO figures below follow by hand from eqs. (1)-(7).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime

import numpy as np
import pytest

from casa_sched.accounting import AccountingError, LatencyHistogram, LiveAccountant, Sample
from casa_sched.accounting.live import prometheus_query
from casa_sched.contract.forecast import EpochSignals
from casa_sched.devcluster.controlplane import free_port
from casa_sched.devcluster.prometheus import PrometheusServer, backfill, tools_missing
from casa_sched.metrics import CasaMetrics
from casa_sched.models.power import DEFAULT_NODE_CURVE, PowerCurve
from casa_sched.settings import CasaSettings

needs_prometheus = pytest.mark.skipif(tools_missing() is not None, reason=str(tools_missing()))
pytestmark = [pytest.mark.prometheus, needs_prometheus]

T0 = 1_720_612_800.0  # 2024-07-10T12:00:00Z, where the accounting window starts
T1 = T0 + 60.0  # ... and ends
STEP_S = 15.0
TIMES = [T0 - 600.0 + STEP_S * k for k in range(81)]  # T0 - 10 min .. T0 + 10 min

CI_G_PER_KWH, PRICE_USD_PER_KWH, E_T = 400.0, 0.10, 0.5
LINEAR_CURVE = PowerCurve((0.0, 0.0, 0.0, 2.0, 100.0), cores=64, source="test: 100 W + 2 W/core")


def _counter(per_s: float) -> dict[float, float]:
    return {t: per_s * (t - TIMES[0]) for t in TIMES}


def _gauge(value: float) -> dict[float, float]:
    return dict.fromkeys(TIMES, value)


def _history() -> dict[str, dict[float, float]]:
    cpu = "container_cpu_usage_seconds_total"
    h = "revision_app_request_latencies"
    series = {
        # n1: containers a + b busy 5 + 3 = 8 cores; the pod and root cgroups must not count
        f'{cpu}{{node="n1",pod="p1",container="a"}}': _counter(5.0),
        f'{cpu}{{node="n1",pod="p1",container="b"}}': _counter(3.0),
        f'{cpu}{{node="n1",pod="p1",container="POD"}}': _counter(1.0),
        f'{cpu}{{node="n1",pod="",container=""}}': _counter(100.0),
        f'{cpu}{{node="n2",pod="p2",container="a"}}': _counter(10.0),
        f'{cpu}{{node="n3",pod="p3",container="a"}}': _counter(4.0),
        'kube_pod_container_resource_requests{node="n1",resource="cpu",pod="p1",container="a"}': _gauge(16.0),
        'kube_pod_container_resource_requests{node="n1",resource="memory",pod="p1",container="a"}': _gauge(1e9),
        # meters: n3 IPMI at the wall; n4 Kepler (package + dram; core is inside package) and RAPL; n5 RAPL only
        'ipmi_dcmi_power_consumption_watts{node="n3"}': _gauge(250.0),
        'kepler_node_cpu_watts{node="n4",zone="package"}': _gauge(70.0),
        'kepler_node_cpu_watts{node="n4",zone="dram"}': _gauge(5.0),
        'kepler_node_cpu_watts{node="n4",zone="core"}': _gauge(30.0),
        'node_rapl_package_joules_total{node="n4",index="0"}': _counter(45.0),
        'node_rapl_package_joules_total{node="n5",index="0"}': _counter(40.0),
        'node_rapl_dram_joules_total{node="n5",index="0"}': _counter(10.0),
    }
    # Two functions, same buckets (ms): per minute 10 requests <= 100 ms, 30 <= 500, 38 <= 1000, 40 in all.
    for fn in ("f", "g"):
        for le, per_min in (("100.0", 10.0), ("500.0", 30.0), ("1000.0", 38.0), ("+Inf", 40.0)):
            series[f'{h}_bucket{{service_name="{fn}",le="{le}"}}'] = _counter(per_min / 60.0)
        series[f'{h}_count{{service_name="{fn}"}}'] = _counter(40.0 / 60.0)
        series[f'{h}_sum{{service_name="{fn}"}}'] = _counter(40.0 * 30.0 / 60.0)  # mean 30 ms
    return series


class FixedSignals:
    """The signal input: constant CI, price and E_t over any window."""

    def read(self, start: datetime, epoch_s: float) -> EpochSignals:
        minutes = max(1, round(epoch_s / 60.0))
        return EpochSignals(
            ci_g_per_kwh=np.full(minutes, CI_G_PER_KWH),
            price_usd_per_kwh=np.full(minutes, PRICE_USD_PER_KWH),
            cooling_factor=np.full(minutes, E_T),
        )


@pytest.fixture(scope="module")
def prom_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("prom-accounting")
    backfill(work / "data", _history())
    with PrometheusServer(work) as server:
        yield server.url


def _accountant(url: str, metrics: CasaMetrics, **kw: object) -> LiveAccountant:
    return LiveAccountant(
        CasaSettings(), metrics, prometheus_query(url), FixedSignals(), {"n2": LINEAR_CURVE},
        t_ave_s={"f": 0.040}, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_one_window_accounts_power_energy_carbon_cost_and_slo(prom_url: str) -> None:
    metrics = CasaMetrics()
    acc = _accountant(prom_url, metrics)
    assert acc.tick(T0) is None  # the first tick only opens the window
    r = acc.tick(T1)
    assert r is not None
    assert r.window_s == 60.0
    assert r.busy_cores == pytest.approx({"n1": 8.0, "n2": 10.0, "n3": 4.0, "n4": 0.0, "n5": 0.0})
    p_n1 = DEFAULT_NODE_CURVE.power_w(8.0)  # eq. (2) of the default node at U = 8
    assert {n: s for n, (_, s) in r.node_power.items()} == {
        "n1": "model", "n2": "model", "n3": "ipmi", "n4": "kepler", "n5": "rapl",
    }  # fmt: skip
    assert {n: w for n, (w, _) in r.node_power.items()} == pytest.approx(
        {
            "n1": p_n1,
            "n2": 120.0,  # 100 + 2·10
            "n3": 250.0,  # the wall meter wins over the curve
            "n4": 75.0,  # Kepler package 70 + dram 5 (preferred over RAPL's 45)
            "n5": 50.0,  # rate of RAPL package 40 + dram 10 J/s
        }
    )
    p_it = p_n1 + 120.0 + 250.0 + 75.0 + 50.0 + 150.0 + 100.0  # eq. (1): Σ P_i + P_S + P_N
    assert r.it_power_w == pytest.approx(p_it)
    it_kwh = p_it * 60.0 / 3.6e6
    total_kwh = it_kwh * (1.0 + E_T)  # eq. (3): cooling = E_t · IT
    water_l = 4.5 * E_T * it_kwh  # 4.5 L per cooling kWh (the settings' default)
    assert r.accounting.energy_kwh == pytest.approx(total_kwh)
    assert r.accounting.carbon_g == pytest.approx(CI_G_PER_KWH * total_kwh)  # eq. (4)
    assert r.accounting.cost_usd == pytest.approx(PRICE_USD_PER_KWH * total_kwh + 0.0015 * water_l)  # eq. (5)
    # f: deadline 10 · 40 ms = 400 ms, inside (100, 500]: on time 10 + (400-100)/(500-100)·(30-10) = 25 → V = 15
    # g: T_ave = the hour's mean 30 ms → 300 ms: on time 10 + 200/400·20 = 20 → V = 20
    assert r.functions == {"f": pytest.approx((40.0, 15.0)), "g": pytest.approx((40.0, 20.0))}

    text = metrics.exposition().decode()
    assert 'casa_node_power_watts{node="n3",source="ipmi"} 250.0' in text
    assert metrics.registry.get_sample_value("casa_carbon_grams_total") == pytest.approx(CI_G_PER_KWH * total_kwh)
    assert 'casa_slo_violation_ratio{function="f"} 0.375' in text  # 15 / 40
    assert 'casa_slo_violations_total{function="g"} 20.0' in text
    # beside the per-function ratios: SL_ave = (15/40 + 20/40) / 2 and the request-weighted (15 + 20) / 80
    assert metrics.registry.get_sample_value("casa_slo_sl_ave_ratio") == pytest.approx(0.4375)
    assert metrics.registry.get_sample_value("casa_slo_request_violation_ratio") == pytest.approx(35.0 / 80.0)
    assert metrics.registry.get_sample_value("casa_accounting_last_tick_timestamp_seconds") == T1


@pytest.mark.parametrize(
    ("utilisation", "n1_cores"),
    [
        pytest.param("busy", 8.0, id="busy-cadvisor"),  # 5 + 3 cores of rate(container_cpu_usage_seconds_total)
        pytest.param("allocated", 16.0, id="allocated-requests"),  # the CPU request, memory ignored
    ],
)
def test_utilisation_reading(prom_url: str, utilisation: str, n1_cores: float) -> None:
    acc = _accountant(prom_url, CasaMetrics(), utilisation=utilisation, latency=None)
    acc.tick(T0)
    r = acc.tick(T1)
    assert r is not None
    assert r.busy_cores["n1"] == pytest.approx(n1_cores)
    assert r.functions == {}


def test_window_spans_the_ticks_and_counters_add_up(prom_url: str) -> None:
    metrics = CasaMetrics()
    acc = _accountant(prom_url, metrics, latency=LatencyHistogram())
    acc.tick(T0 - 120.0)
    first = acc.tick(T0)
    second = acc.tick(T0 + 120.0)  # a 2-minute window, at the same constant rates
    assert first is not None
    assert second is not None
    assert second.window_s == 120.0
    assert second.accounting.carbon_g == pytest.approx(first.accounting.carbon_g)  # 120 s both
    total = metrics.registry.get_sample_value("casa_carbon_grams_total")
    assert total == pytest.approx(2.0 * first.accounting.carbon_g)
    assert metrics.registry.get_sample_value("casa_function_requests_total", {"function": "f"}) == pytest.approx(160.0)


def test_prometheus_down_raises_and_keeps_the_window_open(prom_url: str) -> None:
    servers = [prometheus_query(f"http://127.0.0.1:{free_port()}", timeout_s=2.0), prometheus_query(prom_url)]

    def query(promql: str, at_unix_s: float) -> list[Sample]:  # the first server is down, then "comes back"
        return servers[0](promql, at_unix_s)

    metrics = CasaMetrics()
    acc = LiveAccountant(CasaSettings(), metrics, query, FixedSignals())
    acc.tick(T0)
    with pytest.raises(AccountingError, match=r"Prometheus at http://127\.0\.0\.1:\d+: query"):
        acc.tick(T1)
    assert metrics.registry.get_sample_value("casa_carbon_grams_total") == 0.0
    servers.pop(0)  # the next tick covers the whole gap
    r = acc.tick(T1 + 60.0)
    assert r is not None
    assert r.window_s == 120.0
    assert math.isclose(metrics.registry.get_sample_value("casa_carbon_grams_total") or 0.0, r.accounting.carbon_g)
