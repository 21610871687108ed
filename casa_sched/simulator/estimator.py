"""Fast plan estimator: predicts SL_ave and carbon of a plan without replaying requests.

The planner's inner loop evaluates thousands of candidate plans per epoch; the
request-level simulator gives every reported number. Per function and per minute of the
epoch (the trace is bursty within an epoch, so minutes, not the epoch mean):

- **queueing with deadlines** — ``c`` slots, offered load ``a = count·T_ave/60`` busy slots.
  Overload is a fluid queue carried across windows and minutes: it holds what the slots cannot
  serve yet, up to ``c·laxity`` requests (a wait of ``(laxity − 1)·T_ave``), and drops only the
  arrivals beyond, so a burst of seconds, such as the hourly timers firing together, is served
  within its wait budget while a sustained overload still loses ``1 − c/a``; below saturation
  a request waits with probability ``P(Poisson(a) ≥ c)`` (normal approximation) and misses its
  deadline if the wait exceeds ``(laxity − 1)·T_ave``, with an exponential tail
  ``exp(−2 (c − a)(laxity − 1))`` (M/M/c's ``exp(−(c − a)·t/T)``, halved variance for
  deterministic service) (:func:`~casa_sched.simulator.kernel.queue_drops`);
- **cold starts** — a function whose containers are all new waits for its node's shared image
  transfer (eq. 8); requests arriving before ``T_cold − (laxity − 1)·T_ave`` miss;
- **on demand** — a function with no container scales from zero: the container is cold at a
  request with probability ``exp(−λ·keepalive)``; the on-demand containers compete for the
  unallocated cores, and the share that finds none is dropped;
- **carbon** — expected busy cores per node per minute (served load × CPU share over the
  minutes each request runs, cut at the epoch's end, spread over the function's nodes by
  slots) plus container overheads → P_i(U) → eqs. (1), (3)-(5);
- **node power states** — with power management (``cluster.sleep_empty_nodes``) a node in the
  plan's ``sleeping_nodes`` draws ``sleep_power_w`` all epoch and gives scale-from-zero
  containers no room; a node asleep in D_{e-1} that the plan wakes delays the cold start of the
  containers placed on it by ``wake_latency_s`` (as the simulator does).

A move that changes one function is re-evaluated incrementally (that function, the nodes it
touches, and functions whose cold start those nodes' transfers delay). Its error against the
simulator is measured in ``benchmarks/estimator_accuracy.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from casa_sched._typing import FloatArray
from casa_sched.contract.cluster import ClusterSpec, SimParams, SimulationError
from casa_sched.contract.forecast import EpochSignals, Forecast
from casa_sched.contract.plan import Container, Plan
from casa_sched.contract.results import EpochResult
from casa_sched.models.accounting import J_PER_KWH, NO_WATER, WaterFactors
from casa_sched.models.coldstart import t_cold_s
from casa_sched.models.slo import wait_budget_s
from casa_sched.models.tolerances import EPS_COUNT
from casa_sched.simulator.kernel import busy_cores, busy_cores_rows, predict_aggregates, queue_drops

Layout = tuple[tuple[int, int], ...]  # ((node index, size k), ...)


@dataclass(frozen=True)
class Prediction:
    """Predicted epoch metrics of a plan."""

    sl_ave: float
    carbon_g: float
    energy_kwh: float
    cost_usd: float
    load: float


@dataclass
class _Undo:
    """What an :meth:`Estimator.try_move` changed, saved before its first change."""

    scalars: tuple[float]
    unplanned: npt.NDArray[np.bool_]
    nodes: tuple[FloatArray, FloatArray, FloatArray, FloatArray]
    waiters: dict[int, set[int]]
    busy: dict[int, FloatArray] = field(default_factory=dict)
    functions: dict[int, tuple[Layout, float, float, float, float, float, dict[int, FloatArray]]] = field(
        default_factory=dict
    )
    cold: list[tuple[npt.NDArray[np.int64], FloatArray]] = field(default_factory=list)


@dataclass(frozen=True)
class ScaleFromZero:
    """The scale-from-zero functions' aggregate effect (:meth:`Estimator.scale_from_zero_all`,
    :meth:`Estimator.scale_from_zero_alone`)."""

    functions: npt.NDArray[np.intp]
    violations: FloatArray  # per function in ``functions``, before capacity shortage
    sl_sum: float
    served_share: FloatArray  # [functions × minutes]
    share_sum: FloatArray  # per minute
    alive: FloatArray  # expected containers held, per minute
    busy: FloatArray  # busy cores per minute
    function_busy: FloatArray  # [functions × minutes], summing to ``busy``
    starting_core_s: float
    grow_units: float  # mean units their in-epoch autoscaling adds
    cores: FloatArray  # per minute, busy + idle + starting cores if every container finds room


class Estimator:
    """Incremental predictor of SL_ave and carbon for plans of one epoch."""

    unplanned: npt.NDArray[np.bool_]  # active functions the current plan leaves to scale from zero
    asleep: FloatArray  # 1.0 for a node the current plan puts to sleep

    def __init__(
        self,
        cluster: ClusterSpec,
        params: SimParams,
        forecast: Forecast,
        signals: EpochSignals,
        previous: Plan | None = None,
        water: WaterFactors = NO_WATER,
    ) -> None:
        if signals.ci_g_per_kwh.size != forecast.minutes:
            raise SimulationError(f"signals have {signals.ci_g_per_kwh.size} minutes, the forecast {forecast.minutes}")
        self.cluster, self.params, self.forecast, self.signals = cluster, params, forecast, signals
        self.water = water
        self.node_index = {n.name: i for i, n in enumerate(cluster.nodes)}
        self.n_nodes = len(cluster.nodes)
        self.fn_index = {f: i for i, f in enumerate(forecast.function_ids)}
        self.minute_s = forecast.minute_s
        self.epoch_s = forecast.minute_s * forecast.minutes
        self.counts = np.asarray(forecast.counts, dtype=np.float64)
        self.cum_counts = np.concatenate([np.zeros((self.counts.shape[0], 1)), np.cumsum(self.counts, axis=1)], axis=1)
        self.t_ave = forecast.t_ave_s
        self.totals = self.counts.sum(axis=1)
        self.active = self.totals > 0
        self.n_active = int(self.active.sum())
        self.node_cores = np.array([n.cores for n in cluster.nodes], dtype=np.float64)
        self.hops = np.array([n.switch_hops for n in cluster.nodes], dtype=np.float64)
        self.coeffs = np.array([n.curve.coeffs for n in cluster.nodes], dtype=np.float64)  # [N, 5]
        # Per minute: grams and dollars per joule of IT energy (cooling E_t included), cooling J per W.
        scale = (1.0 + signals.cooling_factor) * self.minute_s / J_PER_KWH
        self._ci_per_w = signals.ci_g_per_kwh * scale
        self._price_per_w = signals.price_usd_per_kwh * scale
        self._cool_j_per_w = signals.cooling_factor * self.minute_s
        p = params
        self._scalars = np.array([
            p.base_cpu_cores, p.idle_cores, p.starting_cores, p.stopping_cores, p.shutdown_s, self.epoch_s,
            p.image_mb, cluster.switch_delay_s, float(p.utilisation == "allocated"),
            float(cluster.sleep_empty_nodes), cluster.sleep_power_w, cluster.storage_power_w, self.minute_s,
            cluster.image_bandwidth_mb_per_s, cluster.network_power_w,
        ])  # fmt: skip
        self._phi_buf = np.empty(forecast.minutes)
        # (function, slots) → (queueing drops, autoscaling units, busy cores per minute): fixed for
        # this epoch's forecast, and the search asks for the same few sizes of a function again and again
        self._queue_memo: dict[tuple[int, float], tuple[float, float, FloatArray]] = {}
        self.spu = params.slots_per_unit
        self.budget_s = wait_budget_s(params.laxity, self.t_ave)  # the longest a request may wait
        self.prev: dict[int, dict[int, int]] = {}  # function → node → containers it had in D_{e-1}
        self._prev_unknown = np.zeros(self.n_nodes)  # D_{e-1} containers of functions not forecast
        self.power_managed = cluster.sleep_empty_nodes
        self.prev_asleep = np.zeros(self.n_nodes, dtype=bool)  # D_{e-1}'s sleeping nodes
        if previous is not None and self.power_managed:
            for name in previous.sleeping_nodes:
                if name in self.node_index:
                    self.prev_asleep[self.node_index[name]] = True
        if previous is not None:
            for f, cs in previous.containers.items():
                fi = self.fn_index.get(f)
                for c in cs:
                    n = self.node_index.get(c.node)
                    if n is None:
                        continue
                    if fi is None:
                        self._prev_unknown[n] += 1
                    else:
                        nodes = self.prev.setdefault(fi, {})
                        nodes[n] = nodes.get(n, 0) + 1
        n_fn = len(forecast.function_ids)
        self._windows = max(1, round(self.minute_s / params.autoscale_interval_s))
        # in-epoch autoscaling grows one container up to the largest size a node holds
        unit_cap = min(params.max_container_size, int(max(n.cores for n in cluster.nodes) // params.base_cpu_cores))
        self._grow_cap_slots = float(max(unit_cap - 1, 0) * self.spu)
        self._od_cold, self._od_alive, self._od_lam = self._on_demand_base()
        # a scale-from-zero container starts at one unit and autoscales like a planned one
        self._od_queue = np.zeros_like(self.counts)
        self._od_grow = np.zeros(n_fn)
        # busy cores per minute if every forecast request were served (a request's T_ave spread
        # over the minutes it runs); a scale-from-zero function's are scaled by its served share
        self._od_busy = busy_cores_rows(self.counts, self.t_ave, params.request_cpu_cores, self.minute_s)
        # per function and minute: the latest minute with requests so far (whose served share a
        # long request running on into this minute carries), and 1/count there
        has = self.counts > 0
        minutes = np.arange(self.counts.shape[1])[None, :]
        self._od_last = np.maximum.accumulate(np.where(has, minutes, 0), axis=1)
        self._od_inv = np.divide(1.0, self.counts, out=np.zeros_like(self.counts), where=has)
        for row in np.flatnonzero(self.active).tolist():
            q, extra = queue_drops(
                self.counts[row], float(self.t_ave[row]), float(self.spu), params.laxity, self.minute_s,
                float(self.spu), self._windows, self._grow_cap_slots if params.autoscale else 0.0,
            )  # fmt: skip
            self._od_queue[row] = q
            self._od_grow[row] = extra / self.spu
        self._od_cache: dict[bytes, ScaleFromZero] = {}
        self._containers_memo: dict[int, tuple[Layout, tuple[Container, ...]]] = {}
        self.bias_planned = np.zeros(n_fn)  # violations the simulator saw beyond this model's, per function
        self.bias_unplanned = np.zeros(n_fn)
        self._reset_state()

    # -- public API ------------------------------------------------------------------------------
    def load(self, plan: Plan) -> Prediction:
        """Make ``plan`` the current plan and predict it."""
        self._reset_state()
        if self.power_managed:
            for name in plan.sleeping_nodes:
                self.asleep[self.node_index[name]] = 1.0
        for f, cs in plan.containers.items():
            fi = self.fn_index.get(f)
            if fi is None:
                continue  # a container for a function with no forecast requests: nothing to serve
            self._apply(fi, tuple((self.node_index[c.node], c.size) for c in cs), save=False)
        return self.prediction()

    def try_move(self, function: int, layout: Layout) -> Prediction:
        """Prediction if ``function`` had ``layout`` instead; the current plan is unchanged."""
        undo = self._apply(function, layout, save=True)
        try:
            return self.prediction()
        finally:
            assert undo is not None
            self._restore(undo)

    def try_move_rate(self, function: int, layout: Layout) -> tuple[Prediction, float]:
        """:meth:`try_move` plus ``function``'s own predicted violation rate under the move."""
        undo = self._apply(function, layout, save=True)
        try:
            total = self.totals[function]
            rate = float(self.function_violations()[function] / total) if total > 0 else 0.0
            return self.prediction(), rate
        finally:
            assert undo is not None
            self._restore(undo)

    def commit(self, function: int, layout: Layout) -> Prediction:
        """Make the move permanent and return the new prediction."""
        self._apply(function, layout, save=False)
        return self.prediction()

    def try_nodes(
        self, changes: Sequence[tuple[int, Layout]], sleep: Iterable[int] = (), wake: Iterable[int] = ()
    ) -> tuple[Prediction, FloatArray]:
        """Prediction and per-function rates (eq. 7) if the nodes in ``wake`` woke, the functions
        in ``changes`` took their layouts, and then the nodes in ``sleep`` (which must be left
        empty) slept; the current plan is unchanged."""
        saved = self.asleep.copy()
        undos = self._apply_nodes(changes, sleep, wake, save=True)
        try:
            return self.prediction(), self.function_rates()
        finally:
            for undo in reversed(undos):
                self._restore(undo)
            self.asleep = saved

    def commit_nodes(
        self, changes: Sequence[tuple[int, Layout]], sleep: Iterable[int] = (), wake: Iterable[int] = ()
    ) -> Prediction:
        """Make a :meth:`try_nodes` move permanent and return the new prediction."""
        self._apply_nodes(changes, sleep, wake, save=False)
        return self.prediction()

    def _apply_nodes(
        self, changes: Sequence[tuple[int, Layout]], sleep: Iterable[int], wake: Iterable[int], save: bool
    ) -> list[_Undo]:
        if not self.power_managed and (list(sleep) or list(wake)):
            raise SimulationError("node power states need cluster.sleep_empty_nodes (power management)")
        for n in wake:
            self.asleep[n] = 0.0
        undos = [u for f, lay in changes if (u := self._apply(f, lay, save=save)) is not None]
        for n in sleep:
            if self.n_containers[n] > 0:
                raise SimulationError(f"node {self.cluster.nodes[n].name} cannot sleep: it hosts containers")
            self.asleep[n] = 1.0
        return undos

    def asleep_nodes(self) -> list[int]:
        """Nodes the current plan puts to sleep."""
        return [int(n) for n in np.flatnonzero(self.asleep > 0.5)]

    def prediction(self) -> Prediction:
        od = self._od_eval()
        load, it_j, carbon, cost, cooling_j, lost = self._aggregates(od, self._phi_buf)
        sl = (self.sl_planned_sum + od.sl_sum + lost) / self.n_active if self.n_active else 0.0
        water_l = self.water.l_per_cooling_kwh * cooling_j / J_PER_KWH
        return Prediction(
            sl_ave=sl,
            carbon_g=carbon,
            energy_kwh=(it_j + cooling_j) / J_PER_KWH,
            cost_usd=cost + water_l * self.water.price_usd_per_l,
            load=load,
        )

    def function_violations(self) -> FloatArray:
        """Expected violations per function under the current plan (the SLO optimizer's order)."""
        od = self._od_eval()
        phi = np.empty(self.busy.shape[1])
        self._aggregates(od, phi)
        out = np.clip(self.q_v + self.cold_v + self.bias_planned, 0.0, self.totals)
        u = od.functions
        out[u] = od.violations + (od.served_share * phi).sum(axis=1) * self.totals[u]
        return np.asarray(out, dtype=np.float64)

    def function_rates(self) -> FloatArray:
        """Eq. (7) per function under the current plan: expected violations over forecast
        requests (0 for a function without requests)."""
        totals = self.totals
        return np.asarray(
            np.divide(self.function_violations(), totals, out=np.zeros_like(totals), where=totals > 0),
            dtype=np.float64,
        )

    def plan(self, epoch: int, base: Plan | None = None) -> Plan:
        """The current layouts as a :class:`Plan`.

        The search asks for a plan at every new best, while a move changes one function: each
        function's containers are built once per layout and reused (``_containers_memo``)."""
        names = self.cluster.node_names
        ids = self.forecast.function_ids
        memo = self._containers_memo
        containers: dict[str, tuple[Container, ...]] = {}
        for f in sorted(self.layout):
            lay = self.layout[f]
            hit = memo.get(f)
            if hit is None or (hit[0] is not lay and hit[0] != lay):
                hit = memo[f] = (lay, tuple(Container(names[n], k) for n, k in lay))
            containers[ids[f]] = hit[1]
        return Plan(
            epoch=epoch,
            containers=containers,
            epoch_start=base.epoch_start if base else None,
            sleeping_nodes=tuple(names[n] for n in self.asleep_nodes()),
        )

    def calibrate(self, planned: FloatArray, unplanned: FloatArray) -> Prediction:
        """Add per-function violation corrections (measured against the simulator), re-predict.

        ``planned[f]`` applies while f has containers, ``unplanned[f]`` while it scales from zero.
        """
        self.bias_planned = np.asarray(planned, dtype=np.float64).copy()
        self.bias_unplanned = np.asarray(unplanned, dtype=np.float64).copy()
        self._od_cache.clear()
        self.sl_planned_sum = float(sum(self._sl_of(f) for f in self.layout))
        return self.prediction()

    def calibrate_from(self, result: EpochResult, plan: Plan) -> Prediction:
        """Calibrate against the request-level simulator's ``result`` of ``plan`` (which becomes
        the current plan): each function's simulated minus predicted violations is added to its
        correction, the planned one if ``plan`` gives it containers, else the scale-from-zero one."""
        self.load(plan)
        predicted = self.function_violations()
        planned = self.bias_planned.copy()
        unplanned = self.bias_unplanned.copy()
        for i, f in enumerate(self.forecast.function_ids):
            stats = result.functions.get(f)
            if stats is None or stats.requests == 0:
                continue
            diff = stats.dropped - predicted[i]
            if f in plan.containers:
                planned[i] += diff
            else:
                unplanned[i] += diff
        return self.calibrate(planned, unplanned)

    def scale_from_zero_all(self) -> ScaleFromZero:
        """The scale-from-zero model of every function the current plan leaves without a
        container, together (their cold starts share the image links)."""
        return self._od_eval()

    def scale_from_zero_alone(self, function: int) -> ScaleFromZero:
        """The scale-from-zero model of ``function`` as if no other function were left without a
        container: the least image-link sharing it can meet (the MILP bound's optimistic case)."""
        saved = self.unplanned
        self.unplanned = np.zeros_like(saved)
        self.unplanned[function] = True
        try:
            return self._od_eval()
        finally:
            self.unplanned = saved

    def free_cores(self) -> FloatArray:
        """Unallocated cores per node (none on a sleeping node)."""
        free = self.node_cores - self.alloc_units * self.params.base_cpu_cores
        return np.asarray(np.where(self.asleep > 0.5, 0.0, free), dtype=np.float64)

    def node_cold_s(self) -> FloatArray:
        """Eq. (8) per node: the shared image transfer of every container new on it, after the
        node wakes if it slept in D_{e-1}."""
        return np.asarray(
            t_cold_s(
                self.n_new * self.params.image_mb,
                self.cluster.image_bandwidth_mb_per_s,
                self.hops,
                self.cluster.switch_delay_s,
            )
            + self._wake_s(),
            dtype=np.float64,
        )

    def _wake_s(self) -> FloatArray:
        """Per node, how long it takes to wake: ``wake_latency_s`` if it slept in D_{e-1} and the
        current plan has it on, else 0."""
        waking = self.prev_asleep & (self.asleep < 0.5)
        return np.asarray(waking * self.cluster.wake_latency_s, dtype=np.float64)

    # -- state -----------------------------------------------------------------------------------
    def _reset_state(self) -> None:
        f, n, m = len(self.forecast.function_ids), self.n_nodes, self.forecast.minutes
        self.layout: dict[int, Layout] = {}
        self.n_slots = np.zeros(f)
        self.warm_slots = np.zeros(f)
        self.q_v = np.zeros(f)  # expected queueing drops per planned function
        self.grow_units = np.zeros(f)  # mean units in-epoch autoscaling adds to it
        self.cold_v = np.zeros(f)  # expected drops behind a cold start
        self.sl_planned_sum = 0.0
        self.busy = np.zeros((n, m))
        self.contrib: dict[int, dict[int, FloatArray]] = {}
        self.alloc_units = np.zeros(n)
        self.n_containers = np.zeros(n)
        self.n_new = np.zeros(n)
        self.asleep = np.zeros(n)
        # every container of D_{e-1} counts as removed until the plan keeps it
        self.removed = self._prev_unknown.copy()
        for nodes in self.prev.values():
            for node, k in nodes.items():
                self.removed[node] += k
        self.cold_waiters: list[set[int]] = [set() for _ in range(n)]
        # functions left to scale from zero: every active one until the plan gives it a container
        self.unplanned = self.active.copy()

    def _apply(self, fi: int, layout: Layout, save: bool) -> _Undo | None:
        """Replace ``fi``'s layout, updating every aggregate it feeds; returns an undo record."""
        old = self.layout.get(fi, ())
        prev = self.prev.get(fi, {})
        old_by_node = _count_by_node(old)
        new_by_node = _count_by_node(layout)
        touched = set(old_by_node) | set(new_by_node) | set(prev)
        undo = None
        if save:
            undo = _Undo(
                scalars=(self.sl_planned_sum,),
                unplanned=self.unplanned.copy(),
                nodes=(self.alloc_units.copy(), self.n_containers.copy(), self.n_new.copy(), self.removed.copy()),
                waiters={n: set(self.cold_waiters[n]) for n in touched},
            )
            self._save_function(undo, fi)
        if self.active[fi]:
            self.unplanned[fi] = not layout
        # node bookkeeping: containers kept from D_{e-1} = min(previous, planned) per node
        delay_changed: list[int] = []
        for n in touched:
            p, o, w = prev.get(n, 0), old_by_node.get(n, 0), new_by_node.get(n, 0)
            d_new = max(0, w - min(p, w)) - max(0, o - min(p, o))
            if d_new:
                self.n_new[n] += d_new
                delay_changed.append(n)
            self.removed[n] += max(0, p - w) - max(0, p - o)
            self.cold_waiters[n].discard(fi)
        for n, k in old:
            self.alloc_units[n] -= k
            self.n_containers[n] -= 1
        for n, k in layout:
            self.alloc_units[n] += k
            self.n_containers[n] += 1
        if layout:
            self.layout[fi] = layout
        else:
            self.layout.pop(fi, None)
        self.n_slots[fi] = sum(k for _, k in layout) * self.spu
        # warm slots: containers on nodes where D_{e-1} had one of this function are kept warm
        warm = 0
        budget = dict(prev)
        for n, k in sorted(layout, key=lambda x: -x[1]):
            if budget.get(n, 0) > 0:
                budget[n] -= 1
                warm += k * self.spu
        self.warm_slots[fi] = warm
        if layout and warm == 0 and self.totals[fi] > 0:
            for n in new_by_node:
                self.cold_waiters[n].add(fi)
        self._recompute_queue(fi, undo)
        self._recompute_cold(fi)
        # functions whose cold start waits on these nodes' image transfers (eq. 8) move too
        if delay_changed:
            others = set().union(*(self.cold_waiters[n] for n in delay_changed)) - {fi}
            if others:
                self._recompute_cold_batch(np.fromiter(others, dtype=np.int64, count=len(others)), undo)
        return undo

    def _recompute_cold_batch(self, fns: npt.NDArray[np.int64], undo: _Undo | None) -> None:
        """:meth:`_recompute_cold` for many functions at once (vectorised over one-node layouts)."""
        single = np.array([len(self.layout[g]) == 1 for g in fns], dtype=bool)
        for g in fns[~single]:
            if undo is not None:
                self._save_function(undo, int(g))
            self._recompute_cold(int(g))
        ws = fns[single]
        if ws.size == 0:
            return
        if undo is not None:
            undo.cold.append((ws, self.cold_v[ws].copy()))
        nodes = np.array([self.layout[g][0][0] for g in ws], dtype=np.int64)
        t_cold = self.node_cold_s()[nodes]
        x = np.maximum((t_cold - self.budget_s[ws]) / self.minute_s, 0.0)
        m = np.minimum(x.astype(np.int64), self.counts.shape[1] - 1)
        frac = np.minimum(x - m, 1.0)
        arrived = self.cum_counts[ws, m] + self.counts[ws, m] * frac
        arrived = np.where(x >= self.counts.shape[1], self.totals[ws], arrived)
        new = np.minimum(arrived, self.totals[ws] - self.q_v[ws])
        tot = self.totals[ws]
        base = self.q_v[ws] + self.bias_planned[ws]
        before = np.clip(base + self.cold_v[ws], 0.0, tot)
        after = np.clip(base + new, 0.0, tot)
        self.sl_planned_sum += float(((after - before) / tot).sum())
        self.cold_v[ws] = new

    def _save_function(self, undo: _Undo, fi: int) -> None:
        if fi not in undo.functions:
            undo.functions[fi] = (
                self.layout.get(fi, ()),
                float(self.n_slots[fi]),
                float(self.warm_slots[fi]),
                float(self.q_v[fi]),
                float(self.cold_v[fi]),
                float(self.grow_units[fi]),
                dict(self.contrib.get(fi, {})),
            )

    def _restore(self, undo: _Undo) -> None:
        (self.sl_planned_sum,) = undo.scalars
        self.unplanned = undo.unplanned
        self.alloc_units, self.n_containers, self.n_new, self.removed = undo.nodes
        for n, waiting in undo.waiters.items():
            self.cold_waiters[n] = waiting
        for n, row in undo.busy.items():
            self.busy[n] = row
        for ws, values in reversed(undo.cold):
            self.cold_v[ws] = values
        for fi, (lay, slots, warm, q_v, cold_v, grow, contrib) in undo.functions.items():
            self.grow_units[fi] = grow
            if lay:
                self.layout[fi] = lay
            else:
                self.layout.pop(fi, None)
            self.n_slots[fi], self.warm_slots[fi], self.q_v[fi], self.cold_v[fi] = slots, warm, q_v, cold_v
            if contrib:
                self.contrib[fi] = contrib
            else:
                self.contrib.pop(fi, None)

    # -- per-function model ----------------------------------------------------------------------
    def _sl_of(self, fi: int) -> float:
        if self.totals[fi] <= 0:
            return 0.0
        v = self.q_v[fi] + self.cold_v[fi] + self.bias_planned[fi]
        return float(min(max(v, 0.0), self.totals[fi]) / self.totals[fi])

    def _recompute_queue(self, fi: int, undo: _Undo | None) -> None:
        """Queueing drops and busy-core contribution of ``fi`` under its current layout."""
        before = self._sl_of(fi)
        for n, row in self.contrib.pop(fi, {}).items():
            if undo is not None and n not in undo.busy:
                undo.busy[n] = self.busy[n].copy()
            self.busy[n] -= row
        layout = self.layout.get(fi, ())
        c = self.n_slots[fi]
        if not layout or c <= 0 or self.totals[fi] <= 0:
            self.q_v[fi] = 0.0
            self.grow_units[fi] = 0.0
        else:
            key = (fi, float(c))
            hit = self._queue_memo.get(key)
            if hit is None:
                counts = self.counts[fi]
                t = float(self.t_ave[fi])
                # No credit for in-epoch autoscaling here: it grows a planned container only while
                # its node has unallocated cores, which the plan (and other functions) may not leave;
                # a plan must carry its functions on its own.
                drops, extra = queue_drops(
                    counts, t, float(c), self.params.laxity, self.minute_s, float(self.spu), self._windows, 0.0
                )
                cores_row = busy_cores(np.maximum(counts - drops, 0.0), t, self.params.request_cpu_cores, self.minute_s)
                hit = self._queue_memo[key] = (float(drops.sum()), extra / self.spu, cores_row)
            self.q_v[fi], self.grow_units[fi], cores = hit
            contrib = {n: cores * (s / c) for n, s in _count_slots(layout, self.spu).items()}
            for n, row in contrib.items():
                if undo is not None and n not in undo.busy:
                    undo.busy[n] = self.busy[n].copy()
                self.busy[n] += row
            self.contrib[fi] = contrib
        self.sl_planned_sum += self._sl_of(fi) - before

    def _recompute_cold(self, fi: int) -> None:
        """Drops of an all-new function while its nodes' image transfers run (eq. 8)."""
        before = self._sl_of(fi)
        layout = self.layout.get(fi, ())
        if not layout or self.warm_slots[fi] > 0 or self.totals[fi] <= 0:
            self.cold_v[fi] = 0.0
        else:
            wake_s = self._wake_s()
            t_cold = min(
                t_cold_s(
                    float(self.n_new[n]) * self.params.image_mb,
                    self.cluster.image_bandwidth_mb_per_s,
                    float(self.hops[n]),
                    self.cluster.switch_delay_s,
                )
                + float(wake_s[n])
                for n, _ in layout
            )
            x_min = (t_cold - float(self.budget_s[fi])) / self.minute_s
            if x_min <= 0:
                self.cold_v[fi] = 0.0
            else:
                m = int(x_min)
                if m >= self.counts.shape[1]:
                    arrived = float(self.totals[fi])
                else:
                    arrived = float(self.cum_counts[fi, m] + self.counts[fi, m] * (x_min - m))
                self.cold_v[fi] = min(arrived, float(self.totals[fi]) - float(self.q_v[fi]))
        self.sl_planned_sum += self._sl_of(fi) - before

    def _on_demand_base(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Per function and minute if it had no container (scale from zero): expected cold starts,
        expected share of the minute it holds a container, and its local request rate (1/s)."""
        p = self.params
        # A container lives keep_s = keepalive_s (+ half an autoscaling window, when idle ones
        # are reaped) after its last request. Arrivals are uniform within minutes, so the first
        # request of minute m (at about 60/(c_m + 1) s) finds its container gone unless a
        # request came in the keep_s before it, i.e. in the end of minute m−1 (and m−2):
        # P(cold) = exp(−expected requests in that look-back). Later requests of the minute
        # follow gaps shorter than a minute, so they are cold only with P = exp(−c_m·keep_s/60).
        keep_s = p.keepalive_s + p.autoscale_interval_s / 2.0
        c = self.counts
        m_s = self.minute_s
        c1 = np.concatenate([np.zeros((c.shape[0], 1)), c[:, :-1]], axis=1)
        c2 = np.concatenate([np.zeros((c.shape[0], 2)), c[:, :-2]], axis=1)
        lead_s = m_s / (c + 1.0)
        back_s = np.maximum(keep_s - lead_s, 0.0)
        seen = c1 * np.minimum(back_s, m_s) / m_s + c2 * np.clip(back_s - m_s, 0.0, m_s) / m_s
        has = c > 0
        cold = has * np.exp(-seen) + np.maximum(c - 1.0, 0.0) * np.exp(-c * keep_s / m_s)
        base_s = p.image_mb / self.cluster.image_bandwidth_mb_per_s
        # Alive in minute m: it serves requests then, or lingers from minute m−1's last request.
        linger = np.clip((keep_s + base_s - m_s / (c1 + 1.0)) / m_s, 0.0, 1.0) * (c1 > 0)
        alive = np.where(has, 1.0, linger)
        lam = self.counts / self.minute_s
        return (
            np.asarray(cold, dtype=np.float64),
            np.asarray(alive, dtype=np.float64),
            np.asarray(lam, dtype=np.float64),
        )

    def _od_eval(self) -> ScaleFromZero:
        """The functions left to scale from zero, together (cached per unplanned and sleeping set).

        Their cold starts share the image links (eq. 8) of the awake nodes with an unallocated
        unit (where the simulator starts them): with ``r`` starts per node per
        minute each needing ``I/B`` seconds of link, a start takes ``(I/B)/(1 − ρ)`` at link
        utilisation ``ρ = r·(I/B)/60`` and at most ``(I/B)·(1 + r/2)`` when a minute's starts
        all queue at once. Requests arriving while their container is still cold miss their
        deadline if the start outlasts their wait budget.
        """
        p = self.params
        awake = self.asleep < 0.5
        u = np.flatnonzero(self.unplanned)
        cold = self._od_cold[u]
        per_node = self._starts_per_link(cold.sum(axis=0), awake)
        key = self.unplanned.tobytes() + self.asleep.tobytes() + per_node.tobytes()
        hit = self._od_cache.get(key)
        if hit is not None:
            return hit
        counts = self.counts[u]
        base_s = p.image_mb / self.cluster.image_bandwidth_mb_per_s
        # Each node's image link is a fluid queue: a minute's starts (spread over the nodes) add
        # their transfer time; what the minute cannot carry waits into the next (eq. 8's shared
        # link with carry-over). A start waits out the backlog, then shares with its minute's.
        t_od = np.empty(per_node.size)
        backlog_s = 0.0
        for m in range(per_node.size):
            t_od[m] = backlog_s + base_s + max(per_node[m] - 1.0, 0.0) * base_s / 2.0
            backlog_s = max(0.0, backlog_s + per_node[m] * base_s - self.minute_s)
        t_od += float(self.hops[awake].mean() if awake.any() else self.hops.mean()) * self.cluster.switch_delay_s
        x = t_od[None, :] - self.budget_s[u][:, None]
        v = np.minimum(counts, cold * ((x > 0) + self._od_lam[u] * np.maximum(x, 0.0)) + self._od_queue[u])
        v_total = np.clip(v.sum(axis=1) + self.bias_unplanned[u], 0.0, self.totals[u])
        served = counts - v
        totals = self.totals[u][:, None]
        share = served / totals * ((self.totals[u] - v_total) / np.maximum(served.sum(axis=1), EPS_COUNT))[:, None]
        alive_sum = self._od_alive[u].sum(axis=0)
        # each minute's busy cores scaled by the served share of the minute its requests arrived
        # in (the latest minute with requests, for the minutes a long request runs on into)
        ratio = served * self._od_inv[u]
        function_busy = self._od_busy[u] * np.take_along_axis(ratio, self._od_last[u], axis=1)
        busy = function_busy.sum(axis=0)
        starting_core_s = float((cold * t_od[None, :]).sum()) * p.starting_cores
        result = ScaleFromZero(
            functions=u,
            violations=v_total,
            sl_sum=float((v_total / self.totals[u]).sum()),
            served_share=share,
            share_sum=share.sum(axis=0),
            alive=alive_sum,
            busy=busy,
            function_busy=function_busy,
            starting_core_s=starting_core_s,
            grow_units=float(self._od_grow[u].sum()),
            cores=busy + alive_sum * p.idle_cores + starting_core_s / self.epoch_s,
        )
        if len(self._od_cache) > 256:
            self._od_cache.clear()
        self._od_cache[key] = result
        return result

    def _starts_per_link(self, starts: FloatArray, awake: npt.NDArray[np.bool_]) -> FloatArray:
        """Per minute, the starts on demand that share one image link, as a start sees it.

        The simulator starts each on the awake node with the fewest transfers in progress that
        has an unallocated unit, so a minute's ``S`` starts fill the nodes' free units ``f_n``
        level by level up to ``L`` (``Σ min(f_n, L) = S``): a node with little room takes few and
        the others share the rest. A start on a node with ``s`` of them waits for ``(s + 1)/2``
        transfers on average, i.e. ``(r + 1)/2`` with ``r = Σ s_n² / S``, returned (quantised to
        a quarter start, so that plans with nearly the same room share one cached evaluation).
        """
        unit = self.params.base_cpu_cores
        free = np.floor(np.maximum(self.node_cores - self.alloc_units * unit, 0.0) / unit)
        f = np.sort(free[awake & (free > 0)])
        if f.size == 0:  # no room anywhere: the starts that find none drop (φ); share the awake links
            r = starts / max(int(awake.sum()), 1)
        else:
            k = f.size
            before = np.concatenate(([0.0], np.cumsum(f)[:-1]))  # units of the nodes below node i
            squares = np.concatenate(([0.0], np.cumsum(f * f)))
            full = before + f * (k - np.arange(k))  # starts that fill every node to node i's room
            s = np.minimum(starts, full[-1])  # starts beyond every free unit find no room
            i = np.minimum(np.searchsorted(full, s), k - 1)
            level = (s - before[i]) / (k - i)
            r = np.divide(squares[i] + (k - i) * level * level, s, out=np.zeros_like(s), where=s > 0)
        return np.asarray(np.round(r * 4.0) / 4.0, dtype=np.float64)

    # -- aggregates ------------------------------------------------------------------------------
    def _aggregates(self, od: ScaleFromZero, phi: FloatArray) -> tuple[float, float, float, float, float, float]:
        """Writes φ per minute (the share of scale-from-zero containers that find no free unit:
        their requests drop); returns (load, IT energy J, carbon g, energy cost $, cooling J,
        SL share lost to φ). See :func:`~casa_sched.simulator.kernel.predict_aggregates`."""
        return predict_aggregates(
            self.busy, self.node_cores, self.coeffs, self.alloc_units, self.n_containers, self.n_new, self.removed,
            self.asleep, self.hops, self.grow_units, od.grow_units, od.alive, od.cores, od.share_sum, self._scalars,
            self._ci_per_w, self._price_per_w, self._cool_j_per_w, phi,
        )  # fmt: skip


def _count_by_node(layout: Iterable[tuple[int, int]]) -> dict[int, int]:
    out: dict[int, int] = {}
    for n, _ in layout:
        out[n] = out.get(n, 0) + 1
    return out


def _count_slots(layout: Sequence[tuple[int, int]], spu: int) -> dict[int, float]:
    out: dict[int, float] = {}
    for n, k in layout:
        out[n] = out.get(n, 0.0) + k * spu
    return out
