"""``casa emulate`` on the real control plane + KWOK, scraped by a real Prometheus, read back by the
repository's own metric sources and live accounting (README "Emulated cluster").

One emulated epoch at clock factor 30 (30 s of wall clock): function pods Running on two KWOK
nodes, the emulator replaying the synthetic trace against them. What Prometheus then holds must
be what an in-process :class:`~casa_sched.emulator.core.Emulation` of the same pods counts.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from casa_sched.accounting.live import LatencyHistogram, LiveAccountant, prometheus_query
from casa_sched.autoscaler.epoch_signals import SignalReader
from casa_sched.clock import Clock
from casa_sched.contract.cluster import SimParams
from casa_sched.conventions import FUNCTION_LABEL
from casa_sched.devcluster.controlplane import ControlPlane, Process, free_port, pod_manifest
from casa_sched.devcluster.prometheus import PrometheusServer, tools_missing
from casa_sched.emulator.core import Emulation
from casa_sched.emulator.process import cluster_of, running_pods
from casa_sched.experiments.defaults import DEFAULT_START_LOCAL
from casa_sched.experiments.inputs import build_scenario
from casa_sched.metrics import CasaMetrics
from casa_sched.metricsources.base import PromClient
from casa_sched.metricsources.knative import KnativeSource
from casa_sched.metricsources.openfaas import OpenFaasSource
from casa_sched.settings import load_settings

pytestmark = [pytest.mark.k8s, pytest.mark.prometheus,
              pytest.mark.skipif(tools_missing() is not None, reason=str(tools_missing()))]

FACTOR = 30.0
FUNCTIONS = 4
SCRAPE_S = 1.0  # 30 emulated s at this factor
# a tight deadline and one request per container, so some requests are dropped (eq. 6)
LAXITY = {"CASA_SLO__LAXITY": "1.05", "CASA_WORKLOAD__REQUEST_CPU_CORES": "2.0"}
LAG_S = 45.0  # emulated: what Prometheus holds trails the emulator by a scrape and a window (30 + 10 s)
CASA = str(Path(sys.executable).parent / "casa")


def _wait(what: str, check: Callable[[], bool], timeout_s: float, proc: Process | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if proc is not None and not proc.alive():
            pytest.fail(f"{what}: the process exited:\n{proc.log_tail()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout_s:.0f} s" + (f"\n{proc.log_tail()}" if proc else ""))
        time.sleep(0.2)


def test_emulated_traffic_reaches_the_forecast_and_the_accounting(
    k8s_kwok: ControlPlane, kwok_nodes, k8s_namespace: str, tmp_path: Path
) -> None:
    cp = k8s_kwok
    for n in ("emu-0", "emu-1"):
        kwok_nodes(n, cpu="128", memory="64Gi")
    start = datetime.fromisoformat(DEFAULT_START_LOCAL)
    base = load_settings(environ=LAXITY)
    tz_start = start.replace(tzinfo=ZoneInfo(base.signals.timezone))
    scenario, _ = build_scenario(base, functions=FUNCTIONS, epochs=1, start_local=start)
    fns = scenario.workload.function_ids
    for i, f in enumerate(fns):  # one pod per function, and a second one of 2 units for the first
        for j, cpu in enumerate(["2", "4"] if i == 0 else ["2"]):
            m = pod_manifest(f"{f}-{j}", labels={FUNCTION_LABEL: f}, cpu=cpu, memory="150Mi",
                             only_on_nodes=[("emu-0", "emu-1")[(i + j) % 2]])  # fmt: skip
            cp.request("POST", f"/api/v1/namespaces/{k8s_namespace}/pods", m)

    def listed() -> list:  # type: ignore[type-arg]
        return list(cp.request("GET", f"/api/v1/namespaces/{k8s_namespace}/pods")["items"])

    _wait("function pods Running", lambda: len(running_pods(listed())) == len(fns) + 1, 60)

    port = free_port()
    argv = [CASA, "emulate", "--kubeconfig", str(cp.kubeconfig), "--functions", str(FUNCTIONS), "--epochs", "1",
            "--port", str(port), "--start", DEFAULT_START_LOCAL, "--log-level", "INFO"]  # fmt: skip
    emu: Process | None = None
    with PrometheusServer(tmp_path / "prom", scrape_targets={"emulator": f"127.0.0.1:{port}"},
                          scrape_interval_s=SCRAPE_S) as server:  # fmt: skip
        url = server.url
        try:
            origin = time.time() + 15.0  # the emulator up and scraped before the trace starts
            env = {"CASA_CLOCK__FACTOR": str(FACTOR), "CASA_CLOCK__ORIGIN_UNIX_S": f"{origin:.3f}",
                   "CASA_CLOCK__START_UNIX_S": f"{tz_start.timestamp():.0f}"}  # fmt: skip
            settings = load_settings(environ={**env, **LAXITY})
            clock = Clock.from_settings(settings)
            emu = Process("casa-emulate", argv, tmp_path, env={**cp.env(), **env, **LAXITY})

            def up() -> bool:
                try:
                    return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=1).ok
                except requests.RequestException:
                    return False

            _wait("casa emulate serving /metrics", up, 15, emu)
            assert time.time() < origin - 1.0, "casa emulate took too long to start for this test's clock"
            epoch_end = tz_start.timestamp() + settings.workload.epoch_s
            _wait("the emulated epoch to end", lambda: clock.now() > epoch_end + 5 * FACTOR, 90, emu)
            assert "the trace has ended" in emu.log_tail(20000), emu.log_tail()

            # the same pods, replayed in process: what Prometheus must hold
            nodes = cp.request("GET", "/api/v1/nodes")["items"]
            cluster = cluster_of([n for n in nodes if n["metadata"]["name"].startswith("emu-")], settings,
                                 SimParams.from_settings(settings))  # fmt: skip
            reference = Emulation(scenario, cluster)
            pods = running_pods(listed())
            while not reference.done:
                reference.step(pods)
            truth = reference.epoch_results[0]

            client = PromClient(url, clock=clock)
            # one minute past the epoch: its last window is scraped up to a scrape interval
            # (30 emulated s at this factor) plus a window (10 s) after it ends
            end = datetime.fromtimestamp(epoch_end + 60.0, UTC)
            minutes = round(settings.workload.epoch_s / 60) + 1
            openfaas = OpenFaasSource.create(client).request_counts(list(fns), end, minutes)
            knative = KnativeSource.create(client, "auto", window_min=60)
            counts = knative.request_counts(list(fns), end, minutes)
            for f in fns:
                c = reference.counters[f]
                assert openfaas[f].sum() == c.finished + c.dropped, (f, emu.log_tail())  # counted once finished
                assert counts[f].sum() == c.requests, f
            assert knative.generation == "opencensus"
            t_ave = knative.mean_duration_s(list(fns), end, minutes)
            for f, t in zip(fns, scenario.workload.t_ave_s, strict=True):
                if reference.counters[f].served:
                    assert t_ave[f] == pytest.approx(float(t), rel=1e-6), f  # the user container's time

            metrics = CasaMetrics()
            accountant = LiveAccountant(
                settings, metrics, prometheus_query(url, clock=clock), SignalReader(settings, metrics, clock=clock.now),
                latency=LatencyHistogram("revision_request_latencies", "service_name", 0.001),
                t_ave_s=dict(zip(fns, map(float, scenario.workload.t_ave_s), strict=True)), clock=clock,
            )  # fmt: skip
            # the second tick LAG_S late, so the window holds the whole epoch's CPU
            accountant.tick(tz_start.timestamp())
            tick = accountant.tick(epoch_end + LAG_S)
            assert tick is not None
            n_req = sum(n for n, _ in tick.functions.values())
            n_viol = sum(v for _, v in tick.functions.values())
            assert n_req == pytest.approx(truth.requests, abs=0.5 + 0.03 * truth.requests)  # measured +1.2 %
            assert truth.dropped > 0
            assert n_viol == pytest.approx(truth.dropped, abs=0.5 + 0.03 * truth.dropped)  # eq. (7)'s V, measured +2 %
            busy = reference.sim.mean_cores(0.0, settings.workload.epoch_s)
            for i, node in enumerate(cluster.node_names):
                core_s = tick.busy_cores[node] * tick.window_s  # measured 2 % above (rate()'s extrapolation)
                assert core_s == pytest.approx(float(busy[i]) * settings.workload.epoch_s, rel=0.03), node
            # the window is LAG_S longer than the epoch, its tail idle: measured 5.0 % above the epoch's
            # carbon, 0.0 % above it scaled by the window's length (P(mean U) held over the window)
            scaled = truth.carbon_g * tick.window_s / settings.workload.epoch_s
            assert tick.accounting.carbon_g == pytest.approx(scaled, rel=0.02)
            text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            assert "container_cpu_usage_seconds_total" in text
        finally:
            if emu is not None:
                emu.stop()


def test_emulate_bad_input_is_one_line(k8s_control_plane: ControlPlane, tmp_path: Path) -> None:
    kc = str(k8s_control_plane.kubeconfig)
    cases = [
        (["--kubeconfig", kc, "--functions", "0"], 2, "--functions"),
        (["--kubeconfig", kc, "--start", "2024-07-10T08:07"], 2, "epoch boundary"),
        (["--kubeconfig", kc, "--start", "yesterday"], 2, "--start"),
        (["--kubeconfig", kc, "--clock-factor", "-1"], 2, "clock.factor"),
    ]
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(Path(kc).read_text().replace(k8s_control_plane.server, f"https://127.0.0.1:{free_port()}"))
    cases.append((["--kubeconfig", str(dead), "--start", "2099-07-10T08:00"], 1, "does not answer"))
    for args, code, needle in cases:
        out = subprocess.run([CASA, "emulate", *args], capture_output=True, text=True, timeout=120, check=False)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == code, (args, out.stderr)
        assert len(lines) == 1, (args, out.stderr)
        assert needle in lines[0], (args, out.stderr)
