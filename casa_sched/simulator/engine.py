"""Request-level FaaS cluster simulator: the "detailed simulation" of CASA §V.A / §VI.A.

An explicit loop with named phases, deterministic for given inputs (arrival times are an input;
their seed is set once, where they are generated). For each epoch:

1. **apply plan** — match the plan's containers to the running ones per (function, node):
   kept containers stay warm and are resized in place; new ones cold-start together, sharing
   the node's link (eq. 8); removed ones shut down for ``shutdown_s`` at ``stopping_cores``.
2. **on-demand starts** — a function with requests but no container (the forecast missed it,
   or the plan chose none) gets one size-1 container, cold, at its next arrival, on the node
   with the most unallocated cores, as a FaaS platform scaling from zero would; an unplanned
   container idle for ``keepalive_s`` is removed again (scale to zero). With no free cores
   anywhere the requests find no container and are dropped.
3. **replay** — requests are replayed in autoscaling windows (``autoscale_interval_s``): FIFO
   per function, earliest-free slot, deadline drops (eqs. 6-7, see :mod:`.kernel`); after each
   window, saturated functions (requests dropped, or the mean wait used over a tenth of the
   wait budget ``(laxity − 1)·T_ave``) grow one container by one unit in place, busiest first,
   on nodes with unallocated cores (paper §V.D: stop at 100 % of the node).
4. **account** — per-node busy cores per second (+ container overheads) → P_i(U) (eq. 2) →
   P_IT + cooling (eqs. 1, 3) → energy per run of minutes with equal signals (the epoch's
   per-minute window the planner saw; one run per hour for hourly signals) → carbon, cost and
   water (eqs. 4-5).

Node power states (``cluster.sleep_empty_nodes``, power management): off, every node is on all
the time (the paper). On, a node draws ``sleep_power_w`` while it sleeps, and two things put it
to sleep: the plan (``Plan.sleeping_nodes``, from the epoch's start: CASA plans them), and, when
the simulator is built with ``node_manager_s`` (the baselines' deployments), a
cluster-autoscaler-style manager that sleeps a node once it has hosted no container for that long
(``scale_down_unneeded_s``, 10 minutes), checked after every autoscaling window, keeping one node
awake. A node asleep at an epoch's start that the plan does not keep asleep wakes then, and its
containers start ``wake_latency_s`` later (their cold start, eq. 8, begins when it is up). Starts
on demand avoid sleeping nodes; when no awake node has room they wake one (a pending pod makes
cluster-autoscaler scale up) and wait for it. A node planned to sleep is drained at the epoch's
start (its on-demand containers are removed).

Dispatch policy: a central FIFO queue per function; a request takes the slot (one request's CPU
share in a container) that is free earliest, and among free slots the one idle longest, which
spreads load evenly over the function's containers. A request's start is fixed when it arrives,
so capacity added later by autoscaling serves later arrivals, not the backlog (stated
simplification). Idle overhead: a ready container burns ``idle_cores`` for as long as it is up
(runtime + sidecar baseline), whether or not it is serving (stated simplification).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from casa_sched._typing import FloatArray, IntArray
from casa_sched.contract.cluster import ClusterSpec, SimParams, SimulationError
from casa_sched.contract.forecast import EpochSignals
from casa_sched.contract.plan import Container, Plan
from casa_sched.contract.results import EpochResult, FunctionStats, epoch_result
from casa_sched.models.accounting import NO_WATER, Accounting, WaterFactors, account_hours
from casa_sched.models.coldstart import cold_start_s
from casa_sched.models.cooling import it_power_w
from casa_sched.models.slo import wait_budget_s
from casa_sched.models.tolerances import EPS_CORES, EPS_S
from casa_sched.simulator.inputs import EpochRequests
from casa_sched.simulator.kernel import DROPPED, RESULT_COLUMNS, SERVED, WAIT_S, WAITED, heapify, replay
from casa_sched.simulator.results import SimulationResult


@dataclass
class _Container:
    node: int
    size: int
    slot_ids: list[int]
    ready_s: float
    on_demand: bool = False
    # (time, cores) allocation increments since the epoch began; closed at release or epoch end
    alloc: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class _FunctionState:
    """Runtime state of one function's containers and request slots (mutable by design)."""

    containers: list[_Container] = field(default_factory=list)
    heap_t: FloatArray = field(default_factory=lambda: np.zeros(0))
    heap_id: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    slot_node: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    n_slots: int = 0

    def free_times(self) -> dict[int, float]:
        return {int(self.heap_id[i]): float(self.heap_t[i]) for i in range(self.n_slots)}


class Simulator:
    """Replays epochs of requests on a simulated cluster under a plan per epoch."""

    def __init__(
        self,
        cluster: ClusterSpec,
        params: SimParams,
        horizon_s: float,
        water: WaterFactors = NO_WATER,
        node_manager_s: float | None = None,
    ) -> None:
        if horizon_s <= 0:
            raise SimulationError(f"horizon must be > 0 s, got {horizon_s}")
        self.cluster = cluster
        self.params = params
        self.water = water
        self.n_nodes = len(cluster.nodes)
        self.n_bins = math.ceil(horizon_s)
        shape = (self.n_nodes, self.n_bins + 1)
        # Core-seconds per 1-s bin: direct amounts (acc) plus step changes (diff, cumulated later).
        self.busy_acc = np.zeros(shape)
        self.busy_diff = np.zeros(shape)
        self.overhead_acc = np.zeros(shape)
        self.overhead_diff = np.zeros(shape)
        self.alloc_acc = np.zeros(shape)
        self.alloc_diff = np.zeros(shape)
        self.node_cores = np.array([n.cores for n in cluster.nodes], dtype=np.float64)
        self.node_index = {n.name: i for i, n in enumerate(cluster.nodes)}
        self.functions: dict[str, _FunctionState] = {}
        self.node_manager_s = node_manager_s if cluster.sleep_empty_nodes else None
        self.asleep = np.zeros(self.n_nodes, dtype=bool)
        self.awake_from = np.zeros(self.n_nodes)
        self.empty_since = np.full(self.n_nodes, math.inf)  # hosting no container since (node manager)
        self.sleep_start = np.full(self.n_nodes, math.nan)  # asleep since, within the current epoch
        self.sleep_spans: list[tuple[int, float, float]] = []  # (node, from_s, to_s) of the current epoch
        self.epoch_t0 = 0.0
        # image transfers in progress: (node, start_s, end_s, images), for eq. (8)'s shared link
        self.transfers: list[tuple[int, float, float, int]] = []
        self.epochs: list[EpochResult] = []

    # ------------------------------------------------------------------------------------------
    def run_epoch(
        self, plan: Plan, requests: EpochRequests, signals: EpochSignals, on_demand: bool = True
    ) -> EpochResult:
        """Simulate one epoch of ``requests`` under ``plan`` and return its results.

        ``signals`` are the epoch's per-minute CI, price and E_t: the same window the planner
        was given (one value per ``epoch_s / minutes`` seconds). ``on_demand=False``: a function
        without containers drops its requests instead of scaling from zero (see :meth:`step`).
        """
        t0 = requests.start_s
        result = self.step(plan, requests, signals, t0, t0 + self.params.epoch_s, on_demand=on_demand)
        self.epochs.append(result)
        return result

    def step(
        self,
        plan: Plan,
        requests: EpochRequests,
        signals: EpochSignals,
        t0: float,
        t1: float,
        *,
        on_demand: bool = True,
        keep_unchanged: bool = False,
    ) -> EpochResult:
        """Simulate ``[t0, t1)`` with ``plan``'s containers from ``t0``: the four phases of one
        epoch (see the module docstring) over any window, so a caller can move the containers
        more often than once an epoch. :meth:`run_epoch` is one step per epoch; the emulator
        (``casa_sched.emulator``) steps once per autoscaling window with the containers a real
        cluster runs. ``requests`` must arrive within the window; ``signals`` split it into
        whole seconds. ``on_demand=False`` turns the scale-from-zero starts off (the cluster's
        own platform decides them); ``keep_unchanged=True`` leaves the containers untouched when
        the plan's are the running ones (so a step splits an epoch without changing its replay).
        The result is not added to :attr:`epochs`.
        """
        if t1 > self.n_bins + EPS_S:
            raise SimulationError(f"epoch {requests.epoch} ends at {t1} s, beyond the horizon {self.n_bins} s")
        length_s = t1 - t0
        if signals.minutes < 1 or abs(length_s / signals.minutes - round(length_s / signals.minutes)) > EPS_S:
            raise SimulationError(
                f"epoch signals must split the {length_s} s epoch into whole seconds, got {signals.minutes} values"
            )
        self._check_feasible(plan)
        self.epoch_t0 = t0
        self.awake_from = self._power_states(plan, t0)
        cold = 0 if keep_unchanged and self._runs(plan) else self._apply_plan(plan, t0, t1)
        self._manage_nodes(t0)
        stats, grows, started = self._replay(requests, t0, t1, on_demand)
        self._close_epoch(t0, t1)
        for i in np.flatnonzero(self.asleep).tolist():
            self.sleep_spans.append((i, float(self.sleep_start[i]), t1))
        account, load = self._account(t0, t1, signals)
        return self._epoch_result(plan, requests, stats, account, load, cold, started, grows)

    def _runs(self, plan: Plan) -> bool:
        """True when the running containers are exactly ``plan``'s (per function, node and size)."""
        running = {f: sorted((c.node, c.size) for c in st.containers) for f, st in self.functions.items()}
        wanted = {f: sorted((self.node_index[c.node], c.size) for c in cs) for f, cs in plan.containers.items()}
        return running == wanted and not any(c.on_demand for st in self.functions.values() for c in st.containers)

    def mean_cores(self, t0: float, t1: float) -> FloatArray:
        """Mean cores in use per node over ``[t0, t1)`` as accounted: U_i of eq. (2)."""
        return np.asarray(self._cores(int(t0), math.ceil(t1)).mean(axis=1), dtype=np.float64)

    def in_flight(self, function: str, t_s: float, t_ave_s: float) -> int:
        """Requests of ``function`` arrived and not finished at ``t_s`` (running or queued): after
        ``t_s`` each slot serves its requests back to back from ``t_s`` or, while its container
        cold-starts, from when it is ready, so ``ceil((free − from) / T_ave)`` of them."""
        st = self.functions.get(function)
        if st is None or st.n_slots == 0:
            return 0
        ready = np.full(st.slot_node.size, t_s)
        for c in st.containers:
            ready[c.slot_ids] = max(c.ready_s, t_s)
        ahead = st.heap_t[: st.n_slots] - ready[st.heap_id[: st.n_slots]]
        return int(np.ceil(ahead[ahead > EPS_S] / t_ave_s).sum())

    def containers(self) -> dict[str, list[tuple[str, int, float]]]:
        """Per function its containers now: (node, size in units, ready time s)."""
        names = [n.name for n in self.cluster.nodes]
        return {f: [(names[c.node], c.size, c.ready_s) for c in st.containers] for f, st in self.functions.items()}

    def preload(self, plan: Plan, t_s: float = 0.0) -> None:
        """Install ``plan``'s containers as already running and warm at ``t_s`` (no cold start).

        For simulating one epoch from a known state D_{e-1}, as a planner validating a
        candidate does.
        """
        self._check_feasible(plan)
        p = self.params
        for f, cs in plan.containers.items():
            st = _FunctionState()
            slot_t: list[float] = []
            slot_node: list[int] = []
            for c in cs:
                node = self.node_index[c.node]
                n = c.size * p.slots_per_unit
                ids = list(range(len(slot_t), len(slot_t) + n))
                slot_t.extend([t_s] * n)
                slot_node.extend([node] * n)
                st.containers.append(_Container(node, c.size, ids, t_s, alloc=[(t_s, c.size * p.base_cpu_cores)]))
            self._set_slots(st, slot_t, slot_node)
            self.functions[f] = st
        if self.cluster.sleep_empty_nodes:
            for name in plan.sleeping_nodes:
                self.asleep[self.node_index[name]] = True

    def finish(self) -> SimulationResult:
        """Totals over all simulated epochs, with requests still in flight at the horizon."""
        in_flight = 0
        end = float(self.n_bins)
        for st in self.functions.values():
            in_flight += int(np.count_nonzero(st.heap_t[: st.n_slots] > end))
        return SimulationResult.of(tuple(self.epochs), in_flight_at_end=in_flight)

    # -- phase 0: feasibility and node power states --------------------------------------------
    def _check_feasible(self, plan: Plan) -> None:
        allocated: dict[str, float] = {}
        for cs in plan.containers.values():
            for c in cs:
                allocated[c.node] = allocated.get(c.node, 0.0) + c.size * self.params.base_cpu_cores
        for node, cores in allocated.items():
            idx = self.node_index.get(node)
            if idx is None:
                raise SimulationError(f"plan places containers on unknown node {node!r}")
            if cores > self.node_cores[idx] + EPS_CORES:
                raise SimulationError(f"plan allocates {cores:g} cores on {node}, which has {self.node_cores[idx]:g}")
        unknown = sorted(set(plan.sleeping_nodes) - set(self.node_index))
        if unknown:
            raise SimulationError(f"plan puts unknown nodes to sleep: {', '.join(unknown)}")
        for f, cs in plan.containers.items():
            for c in cs:
                if c.size > self.params.max_container_size:
                    raise SimulationError(
                        f"container of {f} has size {c.size} > max_container_size {self.params.max_container_size}"
                    )

    def _power_states(self, plan: Plan, t0: float) -> FloatArray:
        """Apply the plan's sleeping nodes at ``t0``; returns when each node can start containers
        (now, or after waking if it slept and the plan wants it on)."""
        awake_from = np.full(self.n_nodes, t0)
        self.sleep_spans = []
        if not self.cluster.sleep_empty_nodes:
            return awake_from
        planned = {self.node_index[n] for n in plan.sleeping_nodes}
        for f in [f for f, st in self.functions.items() if any(c.node in planned for c in st.containers)]:
            if all(c.on_demand for c in self.functions[f].containers):
                del self.functions[f]  # drained: the next request starts one on demand elsewhere
        for i in range(self.n_nodes):
            if i in planned and not self.asleep[i]:
                self.asleep[i] = True
            elif i not in planned and self.asleep[i] and (self.node_manager_s is None or self._hosts(plan, i)):
                # the plan wants it on (a node manager wakes a node only for containers)
                self.asleep[i] = False
                awake_from[i] = t0 + self.cluster.wake_latency_s
                self.empty_since[i] = math.inf
        self.sleep_start = np.where(self.asleep, t0, math.nan)
        return awake_from

    def _hosts(self, plan: Plan, node: int) -> bool:
        name = self.cluster.nodes[node].name
        return any(c.node == name for cs in plan.containers.values() for c in cs)

    def _wake(self, node: int, t: float) -> None:
        """Wake a sleeping node at ``t`` for a container start; it is up ``wake_latency_s`` later."""
        self.sleep_spans.append((node, float(self.sleep_start[node]), t))
        self.asleep[node] = False
        self.sleep_start[node] = math.nan
        self.empty_since[node] = math.inf
        self.awake_from[node] = t + self.cluster.wake_latency_s

    def _manage_nodes(self, t: float) -> None:
        """The baselines' node manager (cluster-autoscaler's scale-down): a node that has hosted
        no container for ``node_manager_s`` sleeps; one node always stays awake."""
        if self.node_manager_s is None:
            return
        hosted = self._allocated_cores() > 0
        for i in range(self.n_nodes):
            if self.asleep[i] or hosted[i]:
                self.empty_since[i] = math.inf
            elif self.empty_since[i] == math.inf:
                self.empty_since[i] = t
            elif t - self.empty_since[i] >= self.node_manager_s - EPS_S and int((~self.asleep).sum()) > 1:
                self.asleep[i] = True
                self.sleep_start[i] = t

    # -- phase 1: apply the plan ---------------------------------------------------------------
    def _apply_plan(self, plan: Plan, t0: float, t1: float) -> int:
        """Match planned containers to running ones per (function, node); returns cold starts."""
        p = self.params
        new_by_node: dict[int, list[tuple[str, int]]] = {}
        next_state: dict[str, list[tuple[_Container | None, int, int]]] = {}
        for f in sorted(set(self.functions) | set(plan.containers)):
            old = self.functions.get(f, _FunctionState()).containers
            if f not in plan.containers and all(c.on_demand for c in old):
                continue  # unplanned on-demand containers live on until idle (scale to zero)
            wanted = sorted(
                ((self.node_index[c.node], c.size) for c in plan.containers_of(f)), key=lambda x: (x[0], -x[1])
            )
            by_node_old: dict[int, list[_Container]] = {}
            for c in old:
                by_node_old.setdefault(c.node, []).append(c)
            entries: list[tuple[_Container | None, int, int]] = []
            for node, size in wanted:
                pool = by_node_old.get(node)
                if pool:
                    entries.append((pool.pop(0), node, size))  # kept: warm, resized in place
                else:
                    entries.append((None, node, size))
                    new_by_node.setdefault(node, []).append((f, len(entries) - 1))
            for pool in by_node_old.values():
                for c in pool:  # removed: shuts down for shutdown_s
                    self._add_overhead(c.node, t0, t0 + p.shutdown_s, p.stopping_cores)
                    if p.utilisation == "allocated":
                        self._add_alloc(c.node, t0, t0 + p.shutdown_s, c.size * p.base_cpu_cores)
            next_state[f] = entries
        ready_at: dict[tuple[str, int], float] = {}
        cold = 0
        for node, items in sorted(new_by_node.items()):
            # eq. (8): every image starting on the node now shares its link
            t_cold = cold_start_s(
                len(items) * p.image_mb,
                self.cluster.image_bandwidth_mb_per_s,
                self.cluster.nodes[node].switch_hops,
                self.cluster.switch_delay_s,
            )
            start = float(self.awake_from[node])
            self.transfers.append((node, start, start + t_cold, len(items)))
            for f, pos in items:
                ready_at[(f, pos)] = start + t_cold
                self._add_overhead(node, start, start + t_cold, p.starting_cores)
                cold += 1
        for f, entries in next_state.items():
            free = self.functions.get(f, _FunctionState()).free_times()
            st = _FunctionState()
            slot_t: list[float] = []
            slot_node: list[int] = []
            for pos, (old_c, node, size) in enumerate(entries):
                n_new = size * p.slots_per_unit
                ids = list(range(len(slot_t), len(slot_t) + n_new))
                if old_c is not None:
                    carried = [max(free.get(s, t0), t0) for s in old_c.slot_ids][:n_new]
                    slot_t.extend(carried + [t0] * (n_new - len(carried)))
                    ready = max(t0, old_c.ready_s)  # a container still cold-starting stays so
                else:
                    ready = ready_at[(f, pos)]
                    slot_t.extend([ready] * n_new)
                slot_node.extend([node] * n_new)
                st.containers.append(_Container(node, size, ids, ready, alloc=[(t0, size * p.base_cpu_cores)]))
            self._set_slots(st, slot_t, slot_node)
            if st.containers:
                self.functions[f] = st
            else:
                self.functions.pop(f, None)
        return cold

    # -- phase 2: on-demand cold starts for functions without containers ------------------------
    def _start_on_demand(self, due: list[tuple[float, str]], t1: float) -> int:
        """Scale from zero: one size-1 container, cold, at the function's next arrival (eq. 8)."""
        p = self.params
        started = 0
        free = self.node_cores - self._allocated_cores()
        for t, f in sorted(due):
            # Spread cold starts over the image links: the node with the fewest transfers in
            # progress, then the most unallocated cores (what the casa extender scores for).
            sharing_by_node = np.zeros(self.n_nodes)
            for n, s, e, k in self.transfers:
                if s <= t < e:
                    sharing_by_node[n] += k
            fits = free >= p.base_cpu_cores - EPS_CORES
            awake = fits & ~self.asleep
            if not fits.any():
                break  # cluster fully allocated: these requests find no container and are dropped
            if awake.any():
                fits = awake
            node = int(np.lexsort((-free, np.where(fits, sharing_by_node, np.inf)))[0])
            if self.asleep[node]:
                self._wake(node, t)
            start = max(t, float(self.awake_from[node]))
            sharing = sum(k for n, s, e, k in self.transfers if n == node and s <= start < e)
            t_cold = cold_start_s(
                (1 + sharing) * p.image_mb,
                self.cluster.image_bandwidth_mb_per_s,
                self.cluster.nodes[node].switch_hops,
                self.cluster.switch_delay_s,
            )
            self.transfers.append((node, start, start + t_cold, 1))
            ready = start + t_cold
            container = _Container(
                node, 1, list(range(p.slots_per_unit)), ready, on_demand=True, alloc=[(start, p.base_cpu_cores)]
            )
            st = _FunctionState(containers=[container])
            self._set_slots(st, [ready] * p.slots_per_unit, [node] * p.slots_per_unit)
            self.functions[f] = st
            self._add_overhead(node, start, ready, p.starting_cores)
            free[node] -= p.base_cpu_cores
            started += 1
        return started

    def _release_idle_on_demand(self, t: float) -> None:
        """Scale to zero: an unplanned container idle for ``keepalive_s`` is removed."""
        p = self.params
        for f in [f for f, st in self.functions.items() if st.containers and all(c.on_demand for c in st.containers)]:
            st = self.functions[f]
            if st.n_slots and float(st.heap_t[: st.n_slots].max()) + p.keepalive_s <= t:
                for c in st.containers:
                    self._close_container(c, t)
                    self._add_overhead(c.node, t, t + p.shutdown_s, p.stopping_cores)
                del self.functions[f]

    # -- phase 3: replay requests, autoscaling between windows ---------------------------------
    def _replay(
        self, requests: EpochRequests, t0: float, t1: float, on_demand_starts: bool = True
    ) -> tuple[dict[str, FunctionStats], int, int]:
        p = self.params
        n = len(requests.function_ids)
        out = np.zeros((n, RESULT_COLUMNS))
        edges = np.append(np.arange(t0, t1, p.autoscale_interval_s), t1)
        bounds = [np.searchsorted(arr, edges, side="left") for arr in requests.arrivals_s]
        empty = _FunctionState()
        grows = on_demand = 0
        for w in range(edges.size - 1):
            due = [
                (float(requests.arrivals_s[i][bounds[i][w]]), f)
                for i, f in enumerate(requests.function_ids)
                if bounds[i][w + 1] > bounds[i][w] and f not in self.functions
            ]
            if due and on_demand_starts:
                on_demand += self._start_on_demand(due, t1)
            saturated: list[tuple[int, int]] = []
            for i in range(n):
                lo, hi = int(bounds[i][w]), int(bounds[i][w + 1])
                if hi == lo:
                    continue
                st = self.functions.get(requests.function_ids[i], empty)
                before_drop, before_wait, before_wait_s = out[i, DROPPED], out[i, WAITED], out[i, WAIT_S]
                replay(
                    requests.arrivals_s[i][lo:hi],
                    float(requests.t_ave_s[i]),
                    p.laxity,
                    st.heap_t,
                    st.heap_id,
                    st.n_slots,
                    st.slot_node,
                    p.request_cpu_cores,
                    self.busy_acc,
                    self.busy_diff,
                    self.n_bins,
                    out[i],
                )
                # Saturated: requests dropped, or their mean wait used over a tenth of the wait
                # budget (a queue is building). A wait behind a cold start is not saturation:
                # growing a container that is not ready yet would not help.
                waited = out[i, WAITED] - before_wait
                budget = wait_budget_s(p.laxity, float(requests.t_ave_s[i]))
                if (
                    p.autoscale
                    and st.n_slots
                    and (
                        out[i, DROPPED] > before_drop
                        or (waited > 0 and (out[i, WAIT_S] - before_wait_s) / waited > 0.1 * budget)
                    )
                    and all(c.ready_s <= edges[w] for c in st.containers)
                ):
                    saturated.append((hi - lo, i))
            t_next = float(edges[w + 1])
            if saturated:
                grows += self._autoscale(saturated, requests, t_next, t1)
            self._release_idle_on_demand(t_next)
            self._manage_nodes(t_next)
        stats = {
            f: FunctionStats(
                requests=int(requests.arrivals_s[i].size),
                served=int(out[i, SERVED]),
                dropped=int(out[i, DROPPED]),
                wait_s_total=float(out[i, WAIT_S]),
                waited=int(out[i, WAITED]),
            )
            for i, f in enumerate(requests.function_ids)
        }
        return stats, grows, on_demand

    def _autoscale(self, saturated: list[tuple[int, int]], requests: EpochRequests, t: float, t1: float) -> int:
        """Paper §V.D: grow saturated functions' containers by one unit, busiest first."""
        p = self.params
        if t >= t1:
            return 0
        grows = 0
        free = self.node_cores - self._allocated_cores()
        for _, i in sorted(saturated, key=lambda x: (-x[0], x[1])):
            st = self.functions.get(requests.function_ids[i])
            if st is None:
                continue
            candidates = [
                c
                for c in st.containers
                if c.size < p.max_container_size and free[c.node] >= p.base_cpu_cores - EPS_CORES
            ]
            if not candidates:
                continue
            c = max(candidates, key=lambda c: (free[c.node], -c.node))
            c.size += 1
            c.alloc.append((t, p.base_cpu_cores))
            free[c.node] -= p.base_cpu_cores
            new_ids = list(range(st.slot_node.size, st.slot_node.size + p.slots_per_unit))
            c.slot_ids.extend(new_ids)
            st.heap_t = np.concatenate([st.heap_t[: st.n_slots], np.full(p.slots_per_unit, t)])
            st.heap_id = np.concatenate([st.heap_id[: st.n_slots], np.array(new_ids, dtype=np.int64)])
            st.slot_node = np.concatenate([st.slot_node, np.full(p.slots_per_unit, c.node, dtype=np.int64)])
            st.n_slots = st.heap_t.size
            heapify(st.heap_t, st.heap_id, st.n_slots)
            grows += 1
        return grows

    # -- phase 4: overheads, power and accounting ----------------------------------------------
    def _close_container(self, c: _Container, t: float) -> None:
        """Book a container's idle baseline and allocation from the epoch's start (or its own) to ``t``."""
        p = self.params
        start = self.epoch_t0
        if p.idle_cores > 0:
            self._add_overhead(c.node, max(start, min(c.ready_s, t)), t, p.idle_cores)
        if p.utilisation == "allocated":
            for since, cores in c.alloc:
                self._add_alloc(c.node, max(since, start), t, cores)

    def _close_epoch(self, t0: float, t1: float) -> None:
        for st in self.functions.values():
            for c in st.containers:
                self._close_container(c, t1)
                c.alloc = [(t1, c.size * self.params.base_cpu_cores)]
        self.transfers = [tr for tr in self.transfers if tr[2] > t1]

    def _cores(self, b0: int, b1: int) -> FloatArray:
        """Cores in use per node per 1-s bin of ``[b0, b1)`` (busy + overheads, or allocated),
        clamped to each node's cores."""
        if self.params.utilisation == "allocated":
            cores = self._window(self.alloc_acc, self.alloc_diff, b0, b1)
        else:
            cores = self._window(self.busy_acc, self.busy_diff, b0, b1)
            cores += self._window(self.overhead_acc, self.overhead_diff, b0, b1)
        return np.minimum(cores, self.node_cores[:, None])

    def _account(self, t0: float, t1: float, signals: EpochSignals) -> tuple[Accounting, float]:
        b0, b1 = int(t0), math.ceil(t1)
        cores = self._cores(b0, b1)
        power = np.empty_like(cores)
        for i, node in enumerate(self.cluster.nodes):
            power[i] = node.curve.power_w_array(cores[i])
        for i, s, e in self.sleep_spans:  # asleep: the sleep power instead of P(U)
            power[i, max(round(s) - b0, 0) : max(round(e) - b0, 0)] = self.cluster.sleep_power_w
        it_w = it_power_w(power, self.cluster.storage_power_w, self.cluster.network_power_w)
        # Eqs. (4)-(5) are linear in energy, so runs of minutes with the same signals are
        # accounted together (an hourly signal gives one run per hour, as the paper accounts).
        step_s = round((t1 - t0) / signals.minutes)
        minute = np.minimum((np.arange(b0, b1) - b0) // step_s, signals.minutes - 1)
        run, first = _signal_runs(signals)
        energy_j = np.bincount(run[minute], weights=it_w, minlength=first.size)  # 1-s bins: W·s = J
        account = account_hours(
            energy_j,
            signals.cooling_factor[first],
            signals.ci_g_per_kwh[first],
            signals.price_usd_per_kwh[first],
            self.water,
        )
        load = float(np.mean(cores / self.node_cores[:, None]))
        return account, load

    def _window(self, acc: FloatArray, diff: FloatArray, b0: int, b1: int) -> FloatArray:
        # cumsum of the step changes from time 0, so steps begun in earlier epochs carry over
        return np.asarray(acc[:, b0:b1] + np.cumsum(diff[:, :b1], axis=1)[:, b0:b1], dtype=np.float64)

    # -- helpers -------------------------------------------------------------------------------
    def _set_slots(self, st: _FunctionState, times: list[float], nodes: list[int]) -> None:
        st.heap_t = np.array(times, dtype=np.float64)
        st.heap_id = np.arange(len(times), dtype=np.int64)
        st.slot_node = np.array(nodes, dtype=np.int64)
        st.n_slots = len(times)
        # Interleave containers' slots in the idle-longest order so light load spreads evenly.
        heapify(st.heap_t, st.heap_id, st.n_slots)

    def _allocated_cores(self) -> FloatArray:
        out = np.zeros(self.n_nodes)
        for st in self.functions.values():
            for c in st.containers:
                out[c.node] += c.size * self.params.base_cpu_cores
        return out

    def _add_interval(self, acc: FloatArray, diff: FloatArray, node: int, s: float, e: float, cores: float) -> None:
        s, e = max(s, 0.0), min(e, float(self.n_bins))
        if e <= s or cores == 0:
            return
        b0, b1 = int(s), int(e)
        if b0 == b1:
            acc[node, b0] += cores * (e - s)
            return
        acc[node, b0] += cores * (b0 + 1 - s)
        diff[node, b0 + 1] += cores
        diff[node, b1] -= cores
        if b1 < self.n_bins:
            acc[node, b1] += cores * (e - b1)

    def _add_overhead(self, node: int, s: float, e: float, cores: float) -> None:
        self._add_interval(self.overhead_acc, self.overhead_diff, node, s, e, cores)

    def _add_alloc(self, node: int, s: float, e: float, cores: float) -> None:
        self._add_interval(self.alloc_acc, self.alloc_diff, node, s, e, cores)

    def _epoch_result(
        self,
        plan: Plan,
        requests: EpochRequests,
        stats: dict[str, FunctionStats],
        account: Accounting,
        load: float,
        cold: int,
        on_demand: int,
        grows: int,
    ) -> EpochResult:
        return epoch_result(
            requests.epoch, stats, account, load, cold_starts=cold + on_demand, on_demand_starts=on_demand,
            autoscale_grows=grows, containers=sum(len(st.containers) for st in self.functions.values()),
            planned_containers=plan.container_count(),
        )


def plan_from_mapping(epoch: int, containers: dict[str, list[tuple[str, int]]]) -> Plan:
    """Convenience for tests and tools: ``{"f": [("node-0", 2)]}`` → :class:`Plan`."""
    return Plan(epoch=epoch, containers={f: tuple(Container(n, k) for n, k in cs) for f, cs in containers.items()})


def _signal_runs(signals: EpochSignals) -> tuple[IntArray, IntArray]:
    """Per minute, the index of its run of equal (CI, price, E_t) values; and each run's first minute."""
    values = np.stack([signals.ci_g_per_kwh, signals.price_usd_per_kwh, signals.cooling_factor])
    change = np.any(values[:, 1:] != values[:, :-1], axis=0)
    run = np.concatenate([[0], np.cumsum(change)]).astype(np.int64)
    first = np.flatnonzero(np.concatenate([[True], change])).astype(np.int64)
    return run, first
