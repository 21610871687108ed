"""Metrics sources against a real Prometheus holding trace-derived history in each platform's names.

Three functions' per-minute counts (the Azure sample's busiest three when ../shared/data is
present, else the synthetic workload's) are written as the counters OpenFaaS' gateway and each
Knative generation export, backfilled with promtool, and read back through the sources. On top:
a gateway restart (counter reset) for ``fb`` at minute 40, ``fc``'s series ending 10 minutes
before the window does (a gap), requests split over two pods for Knative, a status-code split
for OpenFaaS, and in-flight gauges at the last sample.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest

from casa_sched.autoscaler.forecast import FunctionInfo, HistoryForecaster
from casa_sched.devcluster.prometheus import PrometheusServer, Sample, backfilled_server, tools_missing
from casa_sched.forecasting import History, create
from casa_sched.metricsources import MetricsUnavailable, PromClient
from casa_sched.metricsources.knative import KnativeSource
from casa_sched.metricsources.openfaas import OpenFaasSource
from casa_sched.traces import load_azure2019
from casa_sched.traces.synthetic import synthetic_workload
from tests.conftest import SHARED_DATA

pytestmark = [pytest.mark.prometheus, pytest.mark.skipif(tools_missing() is not None, reason=str(tools_missing()))]

M = 60  # minutes of history
FNS = ("fa", "fb", "fc")
T_AVE_S = {"fa": 0.25, "fb": 1.5, "fc": 0.04}
RESET_AT = 40  # fb's gateway restarts: its counters restart from zero at minute 40
STOP_AT = M - 10  # fc's series end here
FAAS_IN_FLIGHT = 3.0  # fa: started - completed at the last sample
DEPTH_PER_POD = 4.0  # Knative queue depth of each of the two pods


def trace_counts() -> np.ndarray:
    sample = SHARED_DATA / "azure-functions-2019-sample500"
    wl = load_azure2019(sample, None).workload if sample.exists() else synthetic_workload(seed=0)
    wl = wl.window(wl.start_minute, M)
    return wl.counts[np.argsort(-wl.totals(), kind="stable")[:3]].astype(float)  # [3 x M]


def cumulative(fn: str, counts: np.ndarray) -> np.ndarray:
    """Counter value at minute boundaries 0..M (0 = the baseline), with fb's reset and fc's stop."""
    row = counts[FNS.index(fn)]
    cum = np.concatenate([[0.0], np.cumsum(row)])
    if fn == "fb":
        cum[RESET_AT:] -= cum[RESET_AT - 1]  # after the restart the counter holds only minutes >= RESET_AT
    return cum


def samples(counts: np.ndarray, t0: float) -> list[Sample]:
    out: list[Sample] = []
    gens = {
        "kn-gen1": ("revision_app_request_count", "revision_app_request_latencies", 1000.0, "revision_queue_depth",
                    lambda fn, pod: {"service_name": fn, "namespace_name": "fn", "revision_name": f"{fn}-00001",
                                     "configuration_name": fn, "pod_name": pod, "response_code": "200",
                                     "response_code_class": "2xx"}),
        "kn-gen2": ("kn_queueproxy_app_duration_seconds_count", "kn_queueproxy_app_duration_seconds", 1.0,
                    "kn_queueproxy_depth",
                    lambda fn, pod: {"kn_service_name": fn, "kn_revision_name": f"{fn}-00001", "k8s_namespace_name": "fn",
                                     "k8s_pod_name": pod, "http_response_status_code": "200"}),
        "kn-gen3": ("kn_serving_invocation_duration_seconds_count", "kn_serving_invocation_duration_seconds", 1.0,
                    "kn_serving_queue_depth",
                    lambda fn, pod: {"kn_service_name": fn, "kn_revision_name": f"{fn}-00001", "k8s_namespace_name": "fn",
                                     "k8s_pod_name": pod, "http_response_status_code": "200"}),
    }  # fmt: skip
    for fn in FNS:
        cum = cumulative(fn, counts)
        last = STOP_AT if fn == "fc" else M
        ok_share = np.floor(cum * 0.9)
        for k in range(last + 1):
            t = t0 + 60.0 * k
            name = {"function_name": f"{fn}.openfaas-fn", "job": "openfaas"}
            out.append(("gateway_function_invocation_total", {**name, "code": "200"}, t, ok_share[k]))
            out.append(("gateway_function_invocation_total", {**name, "code": "500"}, t, cum[k] - ok_share[k]))
            started = cum[k] + (FAAS_IN_FLIGHT if fn == "fa" and k == M else 0.0)
            out.append(("gateway_function_invocation_started", name, t, started))
            out.append(("gateway_functions_seconds_sum", name, t, cum[k] * T_AVE_S[fn]))
            out.append(("gateway_functions_seconds_count", name, t, cum[k]))
            out.append(("gateway_functions_seconds_bucket", {**name, "le": "+Inf"}, t, cum[k]))
            half = np.floor(cum[k] / 2)
            for job, (counter, hist, scale, depth, labels) in gens.items():
                for pod, value in ((f"{fn}-a", half), (f"{fn}-b", cum[k] - half)):
                    lab = {**labels(fn, pod), "job": job}
                    out.append((counter, lab, t, value))
                    if counter == f"{hist}_count":  # OTel: the histogram's own count
                        out.append((f"{hist}_sum", lab, t, value * T_AVE_S[fn]))
                    else:
                        out.append((f"{hist}_count", lab, t, value))
                        out.append((f"{hist}_sum", lab, t, value * T_AVE_S[fn] * scale))
                    out.append((depth, lab, t, DEPTH_PER_POD))
    # 1.5 cores of CPU in fa's pod, scraped every 15 s up to now (rate() is read at the current time)
    now_s = datetime.now(UTC).timestamp()
    for k in range(int((now_s - t0) // 15) + 1):
        out.append(("container_cpu_usage_seconds_total",
                    {"namespace": "openfaas-fn", "pod": "fa-1", "container": "fa", "job": "cadvisor"},
                    t0 + 15.0 * k, 1.5 * 15.0 * k))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrometheusServer, np.ndarray, datetime]]:
    counts = trace_counts()
    end_s = (int(datetime.now(UTC).timestamp()) // 60) * 60 - 60
    t0 = end_s - 60.0 * M
    server = backfilled_server(tmp_path_factory.mktemp("prom"), samples(counts, t0))
    try:
        yield server, counts, datetime.fromtimestamp(end_s, UTC)
    finally:
        server.stop()


def expected(fn: str, counts: np.ndarray) -> np.ndarray:
    """What the source must return for the M minutes before the end."""
    row: np.ndarray = np.array(counts[FNS.index(fn)], dtype=float)
    if fn == "fc":
        # samples stop at minute 50; Prometheus' 5-minute lookback repeats the last value through
        # minute 55 (0 requests), then there is no sample: NaN for minutes 56..60
        row[STOP_AT : STOP_AT + 5] = 0.0
        row[STOP_AT + 5 :] = np.nan
    return row


SOURCES = [
    pytest.param(lambda c: OpenFaasSource.create(c, 'job="openfaas"', "openfaas-fn"), id="openfaas"),
    pytest.param(lambda c: KnativeSource.create(c, "opencensus", 'job="kn-gen1"'), id="knative-le-1.18"),
    pytest.param(lambda c: KnativeSource.create(c, "otel-queueproxy", 'job="kn-gen2"'), id="knative-1.19.0-1.20.0"),
    pytest.param(lambda c: KnativeSource.create(c, "otel-serving", 'job="kn-gen3"'), id="knative-1.19.8+"),
]


@pytest.mark.parametrize("make", SOURCES)
def test_requests_per_minute_come_back_exactly_across_a_reset_and_end_in_a_gap(world, make):
    server, counts, end = world
    src = make(PromClient(server.url))
    got = src.request_counts([*FNS, "never-deployed"], end, M)
    assert set(got) == set(FNS)  # a function without series is absent, not zero
    for fn in FNS:
        np.testing.assert_array_equal(got[fn], expected(fn, counts), err_msg=fn)


@pytest.mark.parametrize("make", SOURCES)
def test_mean_execution_time_is_the_histograms_sum_over_count(world, make):
    server, _, end = world
    got = make(PromClient(server.url)).mean_duration_s(["fa", "fb"], end, 15)
    # sum = count x T_ave in every minute, so increase(sum) / increase(count) = T_ave (Knative <= 1.18 in ms)
    assert got == pytest.approx({"fa": T_AVE_S["fa"], "fb": T_AVE_S["fb"]}, rel=1e-9)


@pytest.mark.parametrize(
    ("make", "fa_in_flight"),
    [
        pytest.param(SOURCES[0].values[0], FAAS_IN_FLIGHT, id="openfaas-started-minus-completed"),
        pytest.param(SOURCES[3].values[0], 2 * DEPTH_PER_POD, id="knative-queue-depth-of-two-pods"),
    ],
)
def test_in_flight_requests_now(world, make, fa_in_flight):
    server, _, _ = world
    got = make(PromClient(server.url)).in_flight(["fa", "fb"])
    assert got["fa"] == pytest.approx(fa_in_flight)


def test_cpu_usage_of_pods_from_cadvisor(world):
    server, _, _ = world
    got = OpenFaasSource.create(PromClient(server.url)).cpu_usage_cores(["openfaas-fn/fa-1", "openfaas-fn/gone"])
    # 22.5 core-seconds per 15 s; within 5 % for the few seconds between the last sample and the query
    assert got == {"openfaas-fn/fa-1": pytest.approx(1.5, rel=0.05)}


@pytest.mark.parametrize(
    ("job", "generation"),
    [
        pytest.param("kn-gen1", "opencensus", id="le-1.18"),
        pytest.param("kn-gen2", "otel-queueproxy", id="1.19.0-1.20.0"),
        pytest.param("kn-gen3", "otel-serving", id="1.19.8+"),
        # a cluster mid-upgrade exports two generations: the newest wins
        pytest.param("kn-gen1|kn-gen3", "otel-serving", id="both-newest-wins"),
    ],
)
def test_the_knative_generation_is_detected(world, job, generation):
    server, _, _ = world
    src = KnativeSource.create(PromClient(server.url), "auto", f'job=~"{job}"', window_min=120)
    assert src.detect() == generation


def test_no_knative_metrics_is_a_clear_error(world):
    server, _, end = world
    with pytest.raises(MetricsUnavailable, match="request-metrics-protocol: prometheus") as err:
        KnativeSource.create(PromClient(server.url), "auto", 'job="nothing"').request_counts(["fa"], end, 15)
    assert err.value.reason == "series_missing"


@pytest.mark.parametrize("method", ["last", "ewma", "care"])
def test_forecasters_read_the_history_back_through_a_source(world, method):
    server, counts, end = world
    src = OpenFaasSource.create(PromClient(server.url), 'job="openfaas"', "openfaas-fn")
    fallbacks: list[str] = []
    live = HistoryForecaster(src, 1.0, create(method), history_minutes=M, on_fallback=fallbacks.append)
    got = live.forecast(7, end, 900.0, [FunctionInfo(f, 150.0) for f in FNS])
    # fc's last epoch has a gap and there is no earlier forecast of it: held (keeps its containers)
    assert got.held == ("fc",)
    assert fallbacks == ["series_gap"]
    direct = create(method).predict(History(("fa", "fb"), counts[:2], 0, np.ones(2), np.ones(2)), 15)
    np.testing.assert_allclose(got.forecast.counts, direct)
    assert got.forecast.t_ave_s.tolist() == pytest.approx([T_AVE_S["fa"], T_AVE_S["fb"]])
