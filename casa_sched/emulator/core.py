"""The emulated function traffic, pure: a trace replayed against the containers a cluster runs.

:class:`Emulation` steps through a :class:`~casa_sched.experiments.runner.Scenario`'s requests
(the same arrivals, seed for seed, that ``casa simulate`` replays) one autoscaling window
(``simulation.autoscale_interval_s``, 10 s) at a time. Each step is one
:meth:`casa_sched.simulator.Simulator.step` of the simulator itself with the *live* containers
as the plan: a function's requests are served only by its Running pods, each at its current CPU
allocation (in units of ``workload.base_cpu_cores``, rounded as the autoscaler rounds them);
a pod that appeared since the last window cold-starts (eq. 8, sharing its node's image link), one
that went away shuts down, FIFO queueing and deadline drops (eqs. 6-7) are the kernel's. The
simulator's own in-epoch autoscaling and scale-from-zero are off: in a live cluster the
autoscaler and the platform decide them, and the emulator sees their pods.

What a step leaves behind are cumulative counters per function (requests, served, dropped, the
latency histograms, in flight) and per pod / node (CPU core-seconds), which
:mod:`casa_sched.emulator.exposition` renders in the platforms' formats. Latencies are emulated
seconds. Within a window the kernel reports the sum of the waits only, so every request that
waited is given the window's mean wait (the histogram's buckets below the deadline are
approximate; the count above the deadline, the drops, is exact).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from casa_sched.contract.cluster import ClusterSpec, SimParams, SimulationError, units_of
from casa_sched.contract.forecast import EpochSignals
from casa_sched.contract.plan import Container, Plan
from casa_sched.contract.results import EpochResult, FunctionStats, epoch_result
from casa_sched.experiments.runner import Scenario
from casa_sched.models.accounting import ZERO, Accounting
from casa_sched.simulator import EpochRequests, Simulator

# Bucket bounds of the latency histograms as multiples of a function's T_ave; the laxity (the
# deadline, eq. 6) is added per function so the count above the deadline is read exactly.
LATENCY_BUCKETS_T_AVE: tuple[float, ...] = (1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0)


@dataclass(frozen=True)
class LivePodView:
    """One Running function pod as the emulator uses it."""

    namespace: str
    name: str
    function: str
    node: str
    container: str
    cpu_cores: float  # the function container's current allocation


@dataclass
class FunctionCounters:
    """Cumulative counters of one function (what its platform's metrics count)."""

    t_ave_s: float
    bounds_s: tuple[float, ...]  # finite bucket bounds, s
    requests: int = 0  # arrivals
    served: int = 0
    dropped: int = 0
    service_s: float = 0.0  # sum of served requests' execution time (T_ave each)
    latency_s: float = 0.0  # sum of end-to-end latencies (waits included; a drop counts its deadline)
    latency_buckets: list[int] = field(default_factory=list)  # cumulative, per bound, then +Inf
    service_buckets: list[int] = field(default_factory=list)
    in_flight: int = 0  # now
    finished: int = 0  # served and finished by now (monotonic)

    def __post_init__(self) -> None:
        if not self.latency_buckets:
            self.latency_buckets = [0] * (len(self.bounds_s) + 1)
            self.service_buckets = [0] * (len(self.bounds_s) + 1)

    def observe(self, latency_s: float, n: int, buckets: list[int]) -> None:
        for i, b in enumerate(self.bounds_s):
            if latency_s <= b:
                buckets[i] += n
        buckets[-1] += n


@dataclass(frozen=True)
class WindowResult:
    """One step: its window, the simulator's result, and the mean busy cores per node."""

    t0_s: float
    t1_s: float
    result: EpochResult
    node_cores: Mapping[str, float]


class EmulationError(ValueError):
    """Inputs the emulation cannot run on; the message names what was expected."""


class Emulation:
    """Replays ``scenario``'s requests window by window against live containers (see the module)."""

    def __init__(self, scenario: Scenario, cluster: ClusterSpec, params: SimParams | None = None) -> None:
        base = params or scenario.params
        window_s = base.autoscale_interval_s
        if abs(60.0 / window_s - round(60.0 / window_s)) > 1e-9:
            raise EmulationError(f"simulation.autoscale_interval_s must divide a minute, got {window_s:g} s")
        if abs(base.epoch_s / window_s - round(base.epoch_s / window_s)) > 1e-9:
            raise EmulationError(f"the epoch of {base.epoch_s:g} s is not a whole number of {window_s:g} s windows")
        # the cluster's autoscaler and platform grow and start containers: the kernel's own off
        self.params = SimParams(**{**base.__dict__, "autoscale": False})
        self.scenario = scenario
        self.cluster = cluster
        self.window_s = window_s
        self.horizon_s = scenario.epochs * base.epoch_s
        self.sim = Simulator(cluster, self.params, self.horizon_s, water=scenario.water)
        self.windows_per_epoch = round(base.epoch_s / window_s)
        self.n_windows = scenario.epochs * self.windows_per_epoch
        self.next_window = 0
        wl = scenario.workload
        laxity = self.params.laxity
        self.counters: dict[str, FunctionCounters] = {
            f: FunctionCounters(float(t), tuple(sorted({*(float(t) * m for m in LATENCY_BUCKETS_T_AVE), laxity * t})))
            for f, t in zip(wl.function_ids, wl.t_ave_s, strict=True)
        }
        self.node_cpu_s: dict[str, float] = {n.name: 0.0 for n in cluster.nodes}  # core-seconds, emulated
        self.pod_cpu_s: dict[tuple[str, str, str, str], float] = {}  # (namespace, pod, container, node)
        # a series is exported at 0 until a scrape has read it, and its CPU is added after: rate()
        # and increase() count from a series' first sample, as for a container just started
        self._cpu_carry: dict[tuple[str, str, str, str], float] = {}
        self._read: set[tuple[str, str, str, str]] = set()
        self._read_lock = threading.Lock()
        self.epoch_results: list[EpochResult] = []
        self._epoch_windows: list[EpochResult] = []
        self._requests: EpochRequests | None = None
        self.skipped: set[str] = set()  # pods on nodes the emulation does not know (warned once)

    # -- inputs --------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.next_window >= self.n_windows

    def window_bounds(self, window: int) -> tuple[float, float]:
        t0 = window * self.window_s
        return t0, t0 + self.window_s

    def _epoch_requests(self, epoch: int) -> EpochRequests:
        if self._requests is None or self._requests.epoch != epoch:
            self._requests = self.scenario.requests_for(epoch)
        return self._requests

    def _window_requests(self, window: int) -> EpochRequests:
        epoch = window // self.windows_per_epoch
        req = self._epoch_requests(epoch)
        t0, t1 = self.window_bounds(window)
        arrivals = tuple(a[np.searchsorted(a, t0, "left") : np.searchsorted(a, t1, "left")] for a in req.arrivals_s)
        return EpochRequests(epoch, t0, req.function_ids, req.t_ave_s, arrivals)

    def _signals(self, t0: float) -> EpochSignals:
        h = min(int(t0 // 3600.0), self.scenario.hourly.hours - 1)
        hourly = self.scenario.hourly
        return EpochSignals(
            ci_g_per_kwh=hourly.ci_g_per_kwh[h : h + 1],
            price_usd_per_kwh=hourly.price_usd_per_kwh[h : h + 1],
            cooling_factor=hourly.cooling_factor[h : h + 1],
        )

    def plan_of(self, pods: Sequence[LivePodView], epoch: int) -> Plan:
        """The live containers as a plan: one container per Running pod on a known node."""
        known = set(self.cluster.node_names)
        containers: dict[str, list[Container]] = {}
        for p in pods:
            if p.node not in known:
                self.skipped.add(f"{p.namespace}/{p.name}")
                continue
            containers.setdefault(p.function, []).append(Container(p.node, units_of(p.cpu_cores, self.params)))
        # a node the pods over-allocate (a resize not yet reflected) keeps its largest containers
        return _fit(Plan(epoch=epoch, containers={f: tuple(cs) for f, cs in containers.items()}), self.cluster,
                    self.params)  # fmt: skip

    # -- one step ------------------------------------------------------------------------------
    def step(self, pods: Sequence[LivePodView]) -> WindowResult:
        """Replay the next window with ``pods`` (the Running function pods now)."""
        if self.done:
            raise EmulationError(f"the trace ends after {self.n_windows} windows")
        w = self.next_window
        t0, t1 = self.window_bounds(w)
        epoch = w // self.windows_per_epoch
        requests = self._window_requests(w)
        plan = self.plan_of(pods, epoch)
        try:
            # containers are re-matched at each epoch's start, as the simulator applies each plan
            keep = w % self.windows_per_epoch != 0
            result = self.sim.step(plan, requests, self._signals(t0), t0, t1, on_demand=False, keep_unchanged=keep)
        except SimulationError as exc:  # pragma: no cover - plan_of keeps plans feasible
            raise EmulationError(str(exc)) from exc
        cores = self.sim.mean_cores(t0, t1)
        node_cores = {n.name: float(cores[i]) for i, n in enumerate(self.cluster.nodes)}
        self._count(requests, result, t1)
        self._count_cpu(pods, plan, node_cores)
        self._epoch_windows.append(result)
        self.next_window += 1
        if self.next_window % self.windows_per_epoch == 0:
            self.epoch_results.append(_merge(epoch, self._epoch_windows))
            self._epoch_windows = []
        return WindowResult(t0, t1, result, node_cores)

    def _count(self, requests: EpochRequests, result: EpochResult, t1: float) -> None:
        for f in requests.function_ids:
            c = self.counters[f]
            s = result.functions.get(f)
            c.in_flight = self.sim.in_flight(f, t1, c.t_ave_s)
            if s is None:
                c.finished = max(c.finished, c.served - c.in_flight)
                continue
            c.requests += s.requests
            c.served += s.served
            c.dropped += s.dropped
            c.service_s += s.served * c.t_ave_s
            c.observe(c.t_ave_s, s.served, c.service_buckets)
            mean_wait = s.wait_s_total / s.waited if s.waited else 0.0
            c.observe(c.t_ave_s, s.served - s.waited, c.latency_buckets)
            c.observe(c.t_ave_s + mean_wait, s.waited, c.latency_buckets)
            c.latency_buckets[-1] += s.dropped  # drops: past the deadline, only in +Inf
            c.latency_s += s.served * c.t_ave_s + s.wait_s_total + s.dropped * self.params.laxity * c.t_ave_s
            c.finished = max(c.finished, c.served - c.in_flight)

    def _count_cpu(self, pods: Sequence[LivePodView], plan: Plan, node_cores: Mapping[str, float]) -> None:
        """Core-seconds per node (exact: the simulator's accounting), split over the node's pods by
        their functions' served work (an estimate: the kernel books busy time per node)."""
        window = self.window_s
        by_node: dict[str, list[LivePodView]] = {}
        for p in pods:
            if p.node in self.node_cpu_s:
                by_node.setdefault(p.node, []).append(p)
        pods_of_function: dict[str, int] = {}
        for p in pods:
            pods_of_function[p.function] = pods_of_function.get(p.function, 0) + 1
        last = self.next_window + 1 >= self.n_windows
        with self._read_lock:
            read = set(self._read)
        for key in [k for k in self._cpu_carry if k in read or last]:
            self.pod_cpu_s[key] += self._cpu_carry.pop(key)

        def add(key: tuple[str, str, str, str], core_s: float) -> None:
            if key not in self.pod_cpu_s:
                self.pod_cpu_s[key] = 0.0
            if key in self._cpu_carry or (key not in read and not last):
                self._cpu_carry[key] = self._cpu_carry.get(key, 0.0) + core_s
            else:
                self.pod_cpu_s[key] += core_s

        for node, cores in node_cores.items():
            core_s = cores * window
            self.node_cpu_s[node] += core_s
            here = by_node.get(node, [])
            if not here:
                add(("kube-system", f"casa-emulator-{node}", "overhead", node), core_s)  # containers shutting down
                continue
            weights = np.array([1.0 + self._work(p.function) / max(pods_of_function[p.function], 1) for p in here])
            for p, share in zip(here, weights / weights.sum(), strict=True):
                add((p.namespace, p.name, p.container, node), core_s * float(share))

    def cpu_read(self, keys: Iterable[tuple[str, str, str, str]]) -> None:
        """A scrape has read these CPU series (called by the exporter, from any thread)."""
        with self._read_lock:
            self._read.update(keys)

    def warm_up(self) -> None:
        """Load the simulator's compiled kernels before the trace starts (a throwaway step)."""
        node = self.cluster.node_names[0]
        sim = Simulator(self.cluster, self.params, 2 * self.window_s)
        plan = Plan(epoch=0, containers={"warm-up": (Container(node, 1),)})
        req = EpochRequests.build(0, 0.0, ["warm-up"], [1.0], [[0.5, 1.5]])
        sim.step(plan, req, self._signals(0.0), 0.0, self.window_s, on_demand=False)

    def _work(self, function: str) -> float:
        c = self.counters.get(function)
        return 0.0 if c is None else c.served * c.t_ave_s

    # -- totals --------------------------------------------------------------------------------
    def accounting(self) -> Accounting:
        total = ZERO
        for e in self.epoch_results:
            total = total + e.accounting
        return total


def _fit(plan: Plan, cluster: ClusterSpec, params: SimParams) -> Plan:
    """Drop the smallest containers of a node whose pods allocate more than its cores."""
    cores = {n.name: float(n.cores) for n in cluster.nodes}
    placed: list[tuple[str, Container]] = sorted(
        ((f, c) for f, cs in plan.containers.items() for c in cs), key=lambda fc: (fc[1].node, -fc[1].size, fc[0])
    )
    used: dict[str, float] = {}
    kept: dict[str, list[Container]] = {}
    for f, c in placed:
        need = c.size * params.base_cpu_cores
        if used.get(c.node, 0.0) + need > cores[c.node] + 1e-9:
            continue
        used[c.node] = used.get(c.node, 0.0) + need
        kept.setdefault(f, []).append(c)
    return Plan(epoch=plan.epoch, containers={f: tuple(cs) for f, cs in kept.items()})


def _merge(epoch: int, windows: Sequence[EpochResult]) -> EpochResult:
    """One epoch's result from its windows' (SL_ave over the epoch's active functions, eq. 7)."""
    functions: dict[str, FunctionStats] = {}
    for r in windows:
        for f, s in r.functions.items():
            o = functions.get(f)
            functions[f] = s if o is None else FunctionStats(
                o.requests + s.requests, o.served + s.served, o.dropped + s.dropped,
                o.wait_s_total + s.wait_s_total, o.waited + s.waited)  # fmt: skip
    acc = ZERO
    for r in windows:
        acc = acc + r.accounting
    return epoch_result(
        epoch, functions, acc, float(np.mean([r.load for r in windows])) if windows else 0.0,
        cold_starts=sum(r.cold_starts for r in windows), on_demand_starts=0, autoscale_grows=0,
        containers=windows[-1].containers if windows else 0,
        planned_containers=windows[-1].planned_containers if windows else 0,
    )



def epoch_record(e: EpochResult) -> dict[str, float]:
    """One replayed epoch's figures as a flat JSON object (``casa emulate --results``)."""
    return {
        "epoch": e.epoch, "requests": e.requests, "served": e.served, "dropped": e.dropped,
        "slo_violation_rate": e.slo_violation_rate, "carbon_g": e.carbon_g, "energy_kwh": e.energy_kwh,
        "cost_usd": e.cost_usd, "load": e.load, "cold_starts": e.cold_starts, "containers": e.containers,
    }  # fmt: skip
