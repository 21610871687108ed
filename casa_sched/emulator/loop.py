"""The whole live loop on one machine, on the emulated clock: ``casa demo`` and the agreement test.

:class:`LiveLoop` starts, in a work directory: the dev cluster (:func:`casa_sched.devcluster.cluster.up`:
control plane, ``casa extender`` attached to kube-scheduler, KWOK nodes of the default node), one
Deployment per function of the trace (``casa.dev/function``, one pod of one unit each),
``casa emulate`` replaying the trace against the pods, and ``casa autoscaler`` (forecast from
Prometheus through the Knative source, the planner, the plan ConfigMap, scale and in-place
resize), all on one clock (``clock.factor``); then it accounts each epoch with
:class:`~casa_sched.accounting.live.LiveAccountant` from Prometheus, whose metrics it serves.
The dev cluster's own Prometheus scrapes every wall-clock second (``scrape_interval_s``) the
extender and, registered with :func:`~casa_sched.devcluster.cluster.register_target`, the
emulator, the autoscaler and the accountant, so :meth:`LiveLoop.dashboard` draws the
dashboard's panels (``casa dashboard render``) from what the run really exported.
:meth:`LiveLoop.close` stops everything it started (also on SIGINT: the caller's ``finally``).

Per epoch it reports two things: what the emulator replayed (the simulator's models applied to
the live pods: carbon, energy, cost, SL_ave, drops, load) and what the live accounting measured
from Prometheus (carbon and SL_ave from the latency histograms).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from casa_sched.accounting.live import LatencyHistogram, LiveAccountant, TickResult, prometheus_query
from casa_sched.clock import Clock
from casa_sched.contract.cluster import ClusterSpec, SimParams
from casa_sched.contract.forecast import Forecast
from casa_sched.contract.plan import Container, Plan
from casa_sched.contract.results import EpochResult
from casa_sched.devcluster.controlplane import Process, free_port
from casa_sched.experiments.defaults import DEFAULT_START_LOCAL
from casa_sched.metrics import CasaMetrics
from casa_sched.settings import CasaSettings, load_settings

NAMESPACE = "casa-demo"
LAG_S = 45.0  # emulated s an accounting tick waits past an epoch's end (a scrape and a window)


@dataclass(frozen=True)
class LoopConfig:
    """What one live run replays and how fast."""

    workdir: Path
    nodes: int = 2
    functions: int = 6
    epochs: int = 3
    clock_factor: float = 30.0
    policy: str = "casa"
    time_budget_s: float = 1.0
    gen: int = 100
    seed: int = 0
    intensity: float = 20.0
    trace: str = "synthetic"
    trace_dir: Path | None = None
    start_local: str = DEFAULT_START_LOCAL
    lead_s: float = 25.0  # wall-clock s from the start of the processes to the trace's first minute
    scrape_interval_s: float = 1.0

    def environment(self) -> dict[str, str]:
        """The settings every process of the loop shares (the clock aside)."""
        return {
            "CASA_WORKLOAD__INTENSITY": f"{self.intensity:g}", "CASA_PLANNER__SEED": str(self.seed),
            "CASA_PLANNER__GEN": str(self.gen), "CASA_PLANNER__POLICY": self.policy,
            "CASA_PLANNER__TIME_BUDGET_S": f"{self.time_budget_s:g}", "CASA_CLUSTER__NODES": str(self.nodes),
        }  # fmt: skip


@dataclass
class EpochLive:
    epoch: int
    emulated: dict[str, float]  # casa emulate --results: the simulator's figures on the live pods
    accounted: TickResult | None  # live accounting from Prometheus over the epoch (+ LAG_S)

    @property
    def accounted_sl_ave(self) -> float | None:
        if self.accounted is None:
            return None
        rates = [v / n for n, v in self.accounted.functions.values() if n > 0]
        return sum(rates) / len(rates) if rates else 0.0


@dataclass
class LiveLoop:
    config: LoopConfig
    progress: Callable[[str], None] = lambda _m: None
    processes: list[Process] = field(default_factory=list)
    prometheus_url: str = ""
    cluster_dir: Path | None = None
    metrics: CasaMetrics | None = None  # the accountant's, served for Prometheus
    metrics_server: Any = None  # the accountant's /metrics (a wsgiref server)
    wall_start_s: float = 0.0  # wall-clock Unix s when start() began (the dashboard's range starts here)
    initial_nodes: dict[str, str] = field(default_factory=dict)  # function -> node of its first pod (D_{-1})
    cluster: ClusterSpec | None = None  # the nodes as the emulator and the planner see them
    settings: CasaSettings | None = None
    clock: Clock | None = None
    start_unix_s: float = 0.0

    def _env(self) -> dict[str, str]:
        assert self.clock is not None
        c = self.clock
        return {**self.config.environment(), "CASA_CLOCK__FACTOR": f"{c.factor:g}",
                "CASA_CLOCK__ORIGIN_UNIX_S": f"{c.origin_unix_s:.3f}", "CASA_CLOCK__START_UNIX_S": f"{c.start_unix_s:.0f}"}  # fmt: skip

    def start(self) -> None:
        from prometheus_client import start_http_server

        from casa_sched.devcluster.cluster import register_target, up

        cfg = self.config
        self.wall_start_s = time.time()
        base = load_settings(environ=cfg.environment())
        tz = ZoneInfo(base.signals.timezone)
        self.start_unix_s = datetime.fromisoformat(cfg.start_local).replace(tzinfo=tz).timestamp()
        self.cluster_dir = cfg.workdir / "cluster"
        state = up(self.cluster_dir, cfg.nodes, settings=base, progress=lambda m: self.progress(f"dev cluster: {m}"),
                   scrape_interval_s=cfg.scrape_interval_s)  # fmt: skip
        self.kubeconfig = Path(state.kubeconfig)
        self.prometheus_url = state.prometheus_url
        self.progress("function Deployments")
        self._deploy(base)
        emu_port, scaler_port, accounting_port = free_port(), free_port(), free_port()
        self.metrics = CasaMetrics()
        self.metrics_server, _ = start_http_server(accounting_port, addr="127.0.0.1", registry=self.metrics.registry)
        for job, port in (("casa-emulate", emu_port), ("casa-autoscaler", scaler_port),
                          ("casa-accounting", accounting_port)):  # fmt: skip
            register_target(self.cluster_dir, job, f"127.0.0.1:{port}")
        origin = time.time() + cfg.lead_s
        self.clock = Clock(cfg.clock_factor, origin, self.start_unix_s)
        env = {**os.environ, **self._env()}
        self.settings = load_settings(environ=self._env())
        casa = str(Path(sys.executable).parent / "casa")
        self.results = cfg.workdir / "emulated-epochs.jsonl"
        self.results.unlink(missing_ok=True)
        self.progress("casa emulate")
        trace = ["--trace", cfg.trace] + (["--trace-dir", str(cfg.trace_dir)] if cfg.trace_dir else [])
        self.processes.append(Process("casa-emulate", [
            casa, "emulate", "--kubeconfig", str(self.kubeconfig), *trace, "--functions", str(cfg.functions),
            "--epochs", str(cfg.epochs), "--start", cfg.start_local, "--port", str(emu_port),
            "--results", str(self.results)], cfg.workdir, env=env))  # fmt: skip
        self.progress("casa autoscaler")
        self.processes.append(Process("casa-autoscaler", [
            casa, "autoscaler", "--kubeconfig", str(self.kubeconfig), "--metrics-port", str(scaler_port), "--json"],
            cfg.workdir, env={**env, **self._autoscaler_env()}))  # fmt: skip
        self.progress("function pods Running")
        self.initial_nodes = self._wait_running(origin)
        self.cluster = self._cluster(base)
        if time.time() > origin:
            raise RuntimeError(f"the loop took {time.time() - origin + cfg.lead_s:.0f} s to start, more than "
                               f"its {cfg.lead_s:g} s lead: raise lead_s")  # fmt: skip

    def _autoscaler_env(self) -> dict[str, str]:
        return {"CASA_FORECAST__SOURCE": "knative", "CASA_FORECAST__KNATIVE_GENERATION": "opencensus",
                "CASA_AUTOSCALER__PROMETHEUS_URL": self.prometheus_url}  # fmt: skip

    def live_forecasts(self) -> list[Forecast | None]:
        """Per epoch, the forecast the autoscaler planned on, read again: its source (Knative's
        series in the loop's Prometheus) and forecaster (:func:`~casa_sched.autoscaler.forecast.history_forecaster`)
        asked at the epoch's start on the loop's clock, so Prometheus answers from the scrapes it
        had by then (the autoscaler asked the same some wall-clock milliseconds later). Numbered
        as the simulator numbers epochs (from 0). None for epoch 0 (no history: the autoscaler held
        every function). Raises RuntimeError when a later epoch would hold a function (the
        simulator cannot hold one after epoch 0)."""
        from dataclasses import replace

        from casa_sched.autoscaler.forecast import FunctionInfo, history_forecaster
        from casa_sched.metricsources import create_source

        assert self.clock is not None
        s = load_settings(environ={**self._env(), **self._autoscaler_env()})
        forecaster = history_forecaster(s, create_source(s))
        epoch_s = s.workload.epoch_s
        infos = [FunctionInfo(f, s.workload.base_memory_mb) for f in self.function_ids]
        out: list[Forecast | None] = [None]
        for e in range(1, self.config.epochs):
            start = datetime.fromtimestamp(self.start_unix_s + e * epoch_s, UTC)
            got = forecaster.forecast(math.floor(start.timestamp() / epoch_s), start, epoch_s, infos)
            if got.held:
                raise RuntimeError(f"epoch {e}: the live forecaster holds {', '.join(got.held)}")
            out.append(replace(got.forecast, epoch=e, start_s=e * epoch_s))
        return out

    def _cluster(self, settings: CasaSettings) -> ClusterSpec:
        from casa_sched.autoscaler.kubeapi import request_json
        from casa_sched.emulator.process import cluster_of
        from casa_sched.kube.client import load_api_client

        nodes = request_json(load_api_client(self.kubeconfig), "GET", "/api/v1/nodes").get("items") or []
        return cluster_of(nodes, settings, SimParams.from_settings(settings))

    def initial_plan(self) -> Plan:
        """D_{-1}: the one pod of one unit each function's Deployment started with, where it runs."""
        return Plan(epoch=0, containers={f: (Container(n, 1),) for f, n in sorted(self.initial_nodes.items())})

    def _wait_running(self, deadline_unix_s: float) -> dict[str, str]:
        """Wait until every function's first pod is Running; returns ``{function: node}``."""
        from casa_sched.autoscaler.kubeapi import request_json
        from casa_sched.emulator.process import running_pods
        from casa_sched.kube.client import load_api_client

        api = load_api_client(self.kubeconfig)
        nodes: dict[str, str] = {}
        while time.time() < deadline_unix_s:
            items = request_json(api, "GET", f"/api/v1/namespaces/{NAMESPACE}/pods").get("items", [])
            nodes = {p.function: p.node for p in running_pods(items)}
            if set(nodes) >= set(self.function_ids):
                return nodes
            time.sleep(0.2)
        missing = sorted(set(self.function_ids) - set(nodes))
        raise RuntimeError(f"the pods of {', '.join(missing)} were not Running within the loop's lead: raise lead_s")

    def _deploy(self, settings: CasaSettings) -> None:
        from casa_sched.autoscaler.kubeapi import request_json
        from casa_sched.experiments.inputs import load_trace
        from casa_sched.kube.client import load_api_client

        cfg = self.config
        wl = load_trace(settings, cfg.trace, cfg.trace_dir, None, cfg.functions)
        api = load_api_client(self.kubeconfig)
        for ns in (NAMESPACE, "casa-system"):
            request_json(api, "POST", "/api/v1/namespaces", body={"metadata": {"name": ns}})
        unit = settings.workload
        for f in wl.function_ids:
            res = {"cpu": f"{unit.base_cpu_cores:g}", "memory": f"{unit.base_memory_mb:g}Mi"}
            request_json(api, "POST", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", body={
                "metadata": {"name": f, "labels": {"casa.dev/function": f}},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": f}},
                         "template": {"metadata": {"labels": {"app": f, "casa.dev/function": f}},
                                      "spec": {"terminationGracePeriodSeconds": 0, "containers": [{
                                          "name": "fn", "image": "registry.invalid/casa/noop:0",
                                          "resources": {"requests": res, "limits": res}}]}}},
            })  # fmt: skip
        self.function_ids = wl.function_ids
        self.t_ave_s = {f: float(t) for f, t in zip(wl.function_ids, wl.t_ave_s, strict=True)}

    def run(self, on_epoch: Callable[[EpochLive], None] | None = None) -> list[EpochLive]:
        """Wait out every epoch and account it; returns the epochs as emulated and as accounted."""
        assert self.clock is not None
        assert self.settings is not None
        assert self.metrics is not None
        from casa_sched.autoscaler.epoch_signals import SignalReader

        clock, s, metrics = self.clock, self.settings, self.metrics
        accountant = LiveAccountant(
            s, metrics, prometheus_query(self.prometheus_url, clock=clock), SignalReader(s, metrics, clock=clock.now),
            latency=LatencyHistogram("revision_request_latencies", "service_name", 0.001), t_ave_s=self.t_ave_s,
            clock=clock,
        )  # fmt: skip
        out: list[EpochLive] = []
        epoch_s = s.workload.epoch_s
        for e in range(self.config.epochs):
            t0, t1 = self.start_unix_s + e * epoch_s + LAG_S, self.start_unix_s + (e + 1) * epoch_s + LAG_S
            self._wait_until(t0 if e == 0 else t1)
            if e == 0:
                accountant.tick(t0)
                self._wait_until(t1)
            tick = accountant.tick(t1)
            emulated = self._emulated(e)
            live = EpochLive(e, emulated, tick)
            out.append(live)
            if on_epoch is not None:
                on_epoch(live)
        return out

    def _wait_until(self, emulated_unix_s: float) -> None:
        assert self.clock is not None
        while self.clock.now() < emulated_unix_s:
            for p in self.processes:
                if not p.alive():
                    raise RuntimeError(f"{p.name} exited:\n{p.log_tail()}")
            time.sleep(min(0.5, max(self.clock.real_s(emulated_unix_s - self.clock.now()), 0.01)))

    def _emulated(self, epoch: int, timeout_s: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.results.exists():
                for line in self.results.read_text().splitlines():
                    rec = json.loads(line)
                    if rec["epoch"] == epoch:
                        return dict(rec)
            time.sleep(0.2)
        raise RuntimeError(f"casa emulate reported no epoch {epoch}:\n{self.processes[0].log_tail()}")

    def autoscaler_reports(self) -> list[dict[str, Any]]:
        p = next((p for p in self.processes if p.name == "casa-autoscaler"), None)
        if p is None:
            return []
        out = []
        for line in p.log_tail(10**7).splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out

    def dashboard(self, out: Path, timeout_s: float = 30.0) -> tuple[list[Path], list[str]]:
        """``casa dashboard render``'s PNGs of the run so far (from :meth:`start` to now) in ``out``,
        once Prometheus has scraped the accountant's last tick; returns the paths (the whole
        dashboard first) and the titles of the panels without data."""
        from casa_sched.accounting.render import Window, draw_dashboard
        from casa_sched.devcluster.prometheus import wait_for_value
        from casa_sched.metricsources.base import PromClient

        assert self.metrics is not None
        carbon_g = self.metrics.registry.get_sample_value("casa_carbon_grams_total") or 0.0
        wait_for_value(self.prometheus_url, "sum(casa_carbon_grams_total)", carbon_g * (1 - 1e-9),
                       "the accountant's last tick", timeout_s)  # fmt: skip
        # the range queries are evaluated at whole steps from the start: let one step pass after
        # that scrape, or a counter whose only change is the last tick has no point after it
        step_s = Window.of(datetime.fromtimestamp(self.wall_start_s, UTC), datetime.now(UTC)).step_s
        time.sleep(step_s + self.config.scrape_interval_s)
        window = Window.of(datetime.fromtimestamp(self.wall_start_s, UTC), datetime.now(UTC))
        return draw_dashboard(PromClient(self.prometheus_url, timeout_s=10.0, retries=1), window, out)

    def close(self) -> None:
        """Stop every process the loop started, then the dev cluster."""
        for p in reversed(self.processes):
            p.stop()
        self.processes.clear()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server.server_close()
            self.metrics_server = None
        if self.cluster_dir is not None and (self.cluster_dir / "dev-cluster.json").exists():
            from casa_sched.devcluster.cluster import down

            down(self.cluster_dir)
        self.cluster_dir = None


def simulate(
    config: LoopConfig, cluster: ClusterSpec, initial: Plan, forecasts: list[Forecast | None] | None = None
) -> list[EpochResult]:
    """The same run through ``casa simulate``'s harness (:func:`~casa_sched.experiments.runner.run_policies`):
    the workload, seed, policy, planner settings, nodes and start of ``config``, forecast ``last``
    on the trace's history (the live autoscaler's forecaster, there on Prometheus' history), and
    epoch 0 held at ``initial`` (D_{-1}), as the live autoscaler holds every function it has no
    metrics for yet, and no scale from zero (the loop's functions are plain Deployments: no
    activator starts a pod for a function the plan gives none). ``forecasts`` (e.g.
    :meth:`LiveLoop.live_forecasts`) replace the trace's forecast where given. Returns the
    simulator's epochs."""
    from dataclasses import replace

    from casa_sched.experiments.inputs import build_scenario
    from casa_sched.experiments.runner import run_policies

    settings = load_settings(environ=config.environment())
    scenario, _ = build_scenario(settings, trace=config.trace, trace_dir=config.trace_dir, functions=config.functions,
                                 epochs=config.epochs, start_local=datetime.fromisoformat(config.start_local),
                                 forecast="last")  # fmt: skip
    runs = run_policies(replace(scenario, cluster=cluster), [config.policy], initial=initial, hold_first_epoch=True,
                        scale_from_zero=False, forecasts=forecasts)  # fmt: skip
    result = runs[config.policy].result
    assert result is not None
    return list(result.epochs)
