"""MILP: an exact lower bound on the carbon of any plan CASA may return, for small instances (HiGHS).

The bound is taken over a relaxation of the estimator's own model (the one every planner's
plans are predicted with) and CASA's own feasibility (:func:`.casa._key`: SL_ave ≤ Cstr and
at most ``max_drop_share`` of the requests dropped), so "CASA is within X % of the bound" is
meaningful. Every row below mirrors an estimator term exactly or under-estimates it:

- each active function picks one capacity level k ∈ {0, 1, …, K_f} units (binary x_fk; k = 0
  scales from zero); its violations and busy cores per minute at each level come from the
  estimator's per-function model with warm containers (no cold start: a cold one only adds
  violations and start-up cores), at least ``ceil(k / max_container_size)`` containers' idle cores;
- scale from zero (k = 0): violations as few as the estimator can give it (no other function on
  the image links, and the awake links those with the fewest starts and hops, eq. 8), busy
  cores as few as it can (every function scaling from zero on the fewest awake links: one node
  with power management, where a plan keeps one awake, else all), see
  :func:`_scale_from_zero_extremes` (an earlier version took the fewest served with every node
  awake, which over-states them when nodes sleep); the estimator's share φ_m of scale-from-zero
  containers that find no free unit in minute m is a variable with the estimator's floor
  ``φ_m · held_m ≥ held_m − free units``, the free units less the units the scale-from-zero
  functions' in-epoch growth takes (``predict_aggregates``' ``od_grow_units``; an earlier
  version left that out, 11.4 of a node's 64 units on the 60-function instance), and
  ``w_fm = x_f0 · φ_m`` (exact for binary x: w ≤ x, w ≤ φ, w ≥ φ + x − 1) moves the requests it
  leaves unserved from busy cores to violations;
- SL_ave ≤ Cstr: Σ_fk x_fk · SL_f(k) + Σ_fm share_fm · w_fm ≤ Cstr · (active functions);
- requests dropped ≤ ``max_drop_share`` of all (CASA's setting): the same violations weighted
  by each function's requests;
- optionally (``per_function=True``, CASA's reading of the constraint "per request type", see
  :mod:`.casa`) each function keeps its own rate within ``max(Cstr, its lowest rate at any
  level)``;
- node power states (with power management, ``cluster.sleep_empty_nodes``): a binary o_n per
  node says it is on for the epoch, as a plan's ``sleeping_nodes`` does; a node that is off
  draws ``sleep_power_w`` all epoch, holds no container and no busy core, and offers
  scale-from-zero containers no room; without power management every o_n = 1. Wake latency is
  ignored (it only adds drops). The count of awake nodes a = Σ o_n is fixed per solve and the
  solves run for a = 1, 2, … until a nodes' idle power alone reaches the bound so far (HiGHS
  branching on the o_n proved neither side on 8 nodes in a minute; each count alone solves in
  seconds). Nodes with the same cores and curve are interchangeable in the bound (their hops
  only enter the scale-from-zero extremes), so within such a group o_n ≥ o_{n+1};
- capacity: Σ_fk k · x_fk ≤ Σ_n units_n · o_n (packing onto the nodes that are on relaxed to
  their total);
- power: per group of identical nodes and minute, the group's busy cores B_gm (at most its
  awake nodes' cores; Σ_g B_gm is the minute's busy cores) cost the cheapest split of B_gm over
  the group's nodes (:func:`group_pwl_below`, a lower bound for any split, over awake nodes or
  not), each node's power a piecewise-linear interpolation of its curve P_n (eq. 2) on
  breakpoints every ``PWL_STEP_CORES`` cores, each breakpoint lowered by the largest amount the
  interpolation exceeds P_n on its segments (:func:`pwl_below`), in the incremental form with
  binaries (segments fill in order: concave stretches are modelled as tightly as convex ones;
  a convex envelope would credit consolidation up to the chord's worth). On the default curve
  the cheapest split fills one node at a time, so this is exact for any count of awake nodes.
  (Per-node busy cores with ordered loads, the earlier form, had 8× the binaries.)
- objective: Σ_m CI_m (1 + E_t) (Σ_n [o_n · P_n(0) + (1 − o_n) · P_sleep] + Σ_g D_g(B_gm) + P_S + P_N) · 60 s
  (idle-container, start and stop overheads of scale-from-zero containers dropped: they only add).

What it is a bound of: the lowest carbon the estimator (:class:`~.estimator.Estimator`, with
every container warm) can predict for any plan on this cluster, with any set of sleeping nodes
under power management, that CASA's order counts feasible (SL_ave ≤ Cstr, drops within
``max_drop_share``) and whose awake nodes' predicted cores stay within their cores in every
minute (the estimator clips a node's cores there, which the bound does not model: at the
benchmark's loads no plan comes near it). One corner is not covered: the estimator caps the
starts sharing the links at the awake nodes' free units, so on a cluster of one awake node a
plan leaving a single free unit shares less than a function with more than one cold start per
minute meets alone (at most a quarter start's wait more in the bound's fewest violations). It is not a bound on simulated carbon: the
simulator's numbers differ from the estimator's by its measured error. Still loose: a
scale-from-zero function's violations are taken as if it were alone on the image links; on the
real sample's 60-function instance (``benchmarks/planner_bench.py --milp-only``) the bound's
optimum leaves 51 functions to scale from zero on one node, which the estimator predicts at
SL_ave 7.1 % and 7.4 % of requests dropped (docs/results/power-states.md).
The bound reported is HiGHS's proven dual bound, the lowest over the counts of awake nodes: within
``MIP_REL_GAP`` of the optimum when every count solves, looser when one stops at its time limit
(``optimal`` False). The plan returned realises the chosen levels first-fit on the nodes that
are on and names the others as its ``sleeping_nodes``; instances above ``MAX_FUNCTIONS`` active
functions or ``MAX_NODES`` nodes are refused.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from casa_sched._typing import FloatArray
from casa_sched.contract.cluster import NodeSpec
from casa_sched.contract.forecast import EpochSignals, Forecast
from casa_sched.contract.plan import Plan, PredictedMetrics
from casa_sched.contract.snapshot import ClusterSnapshot, PlannerConfig
from casa_sched.models.power import PowerCurve
from casa_sched.planners._common import first_fit, free_units, split_units, to_plan
from casa_sched.planners.base import PlannerBase, PlannerError
from casa_sched.simulator.estimator import Estimator, ScaleFromZero
from casa_sched.simulator.kernel import busy_cores, queue_drops

MAX_FUNCTIONS = 60
MAX_NODES = 8
PWL_STEP_CORES = 2.0  # breakpoint spacing; |P''| ≤ 0.23 W/core² on the default curve -> ≤ 0.12 W off
_GRID_CORES = 0.01  # grid on which the interpolation's excess over the curve is measured
# HiGHS stops once its incumbent is within this of its proven bound; the bound reported is the
# proven one (HiGHS's dual bound), so stopping early loosens it by at most this much.
MIP_REL_GAP = 0.01


@dataclass(frozen=True)
class MilpResult:
    carbon_bound_g: float
    sl_ave: float
    levels: dict[str, int]
    status: str
    optimal: bool = True  # False: HiGHS hit its time limit before MIP_REL_GAP (the bound is looser)
    sleeping_nodes: tuple[str, ...] = ()  # nodes off in the solution (power management only)
    solve_s: float = 0.0  # HiGHS's run time


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """HiGHS prints a banner from C++ when created; keep stdout clean (``--json``)."""
    fd = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(fd, 1)
        os.close(fd)


def pwl_below(curve: PowerCurve, max_cores: float) -> tuple[FloatArray, FloatArray]:
    """Breakpoints (cores) and values (W) on ``[0, max_cores]`` whose linear interpolation lies
    below ``curve`` there."""
    top = min(float(curve.cores), max(max_cores, 0.0))
    n_seg = max(1, math.ceil(top / PWL_STEP_CORES - 1e-9))
    u = np.linspace(0.0, top, n_seg + 1)
    w = curve.power_w_array(u)
    grid = np.linspace(0.0, top, max(2, round(top / _GRID_CORES) + 1))
    actual = curve.power_w_array(grid)
    chord = np.interp(grid, u, w)
    seg = np.minimum(np.searchsorted(u, grid, side="right") - 1, n_seg - 1)
    excess = np.zeros(n_seg)
    np.maximum.at(excess, seg, chord - actual)
    h = grid[1] - grid[0]
    second = np.abs(np.diff(curve.power_w_array(grid), 2)).max(initial=0.0) / h**2
    excess = np.maximum(excess, 0.0) + 1.1 * second * h * h / 8.0 + 1e-9
    drop = np.maximum(np.concatenate([[0.0], excess]), np.concatenate([excess, [0.0]]))
    return u, w - drop


def group_pwl_below(curve: PowerCurve, size: int, max_cores: float) -> tuple[FloatArray, FloatArray]:
    """Breakpoints (total busy cores B of a group of ``size`` identical nodes, at most
    ``max_cores``) and values (W above the group's ``size · L(0)``) whose linear interpolation lies
    below the cheapest split of B over the group's nodes, each node at :func:`pwl_below`'s ``L``.

    The split is exact at the breakpoints, which lie on ``L``'s own grid of spacing h: for a fixed
    choice of segment per node, the cheapest split is a linear programme with one equality, whose
    optimum has at most one node strictly inside its segment, so with B on the grid every node sits
    on a breakpoint (a min-plus convolution over the grid, computed exactly). Between two grid
    points the cheapest split is the minimum of linear functions of B (one free node moving along
    one segment), so it is concave there and the chord lies below it."""
    u, w = pwl_below(curve, max_cores)
    d1 = w - w[0]
    n_seg = u.size - 1
    h = float(u[1] - u[0])
    steps = min(size * n_seg, max(1, math.ceil(max_cores / h - 1e-9)))
    best = np.full(steps + 1, np.inf)
    best[: min(n_seg, steps) + 1] = d1[: min(n_seg, steps) + 1]
    for _ in range(size - 1):
        nxt = best.copy()
        for t in range(1, n_seg + 1):
            if t > steps:
                break
            nxt[t:] = np.minimum(nxt[t:], best[: steps + 1 - t] + d1[t])
        best = nxt
    return np.asarray(h * np.arange(steps + 1), dtype=np.float64), best


def _node_groups(nodes: tuple[NodeSpec, ...]) -> list[list[int]]:
    """Nodes with the same cores and power curve, in order of first appearance: interchangeable
    in the bound (their switch hops only enter the scale-from-zero model, taken at its extremes)."""
    groups: dict[tuple[int, tuple[float, ...]], list[int]] = {}
    for i, n in enumerate(nodes):
        groups.setdefault((n.cores, n.curve.coeffs), []).append(i)
    return list(groups.values())


def _scale_from_zero_extremes(
    est: Estimator, active: list[int], managed: bool
) -> tuple[dict[int, ScaleFromZero], ScaleFromZero, dict[int, float]]:
    """Per function, its scale-from-zero model with the fewest violations the estimator can give
    it, every function's together with the fewest requests served, and per function the fewest
    core-seconds its cold starts burn (its starts at their quickest).

    Fewest violations: no other function shares the image links, and the awake nodes the ``j``
    with the fewest switch hops for the ``j`` (1..N with power management, else N) whose start
    time is lowest: a start's time grows with the starts per awake link and with the awake links'
    mean hops (eq. 8), and for a given count the lowest-hop nodes minimise the mean. Fewest
    served: every function scales from zero onto the fewest awake links, one node (the one with
    the most hops) with power management (a plan keeps at least one awake), else every node."""
    nodes = est.cluster.nodes
    names = [n.name for n in nodes]
    by_hops = sorted(range(len(nodes)), key=lambda n: (nodes[n].switch_hops, n))

    def awake(keep: list[int]) -> None:
        est.load(Plan(epoch=est.forecast.epoch, containers={}, sleeping_nodes=tuple(names[n] for n in range(len(nodes)) if n not in keep)))

    counts = range(1, len(nodes) + 1) if managed and len(set(n.switch_hops for n in nodes)) > 1 else [len(nodes)]
    alone: dict[int, ScaleFromZero] = {}
    starting: dict[int, float] = {}
    for j in counts:
        awake(by_hops[:j])
        for f in active:
            cand = est.scale_from_zero_alone(f)
            if f not in alone or float(cand.violations[0]) < float(alone[f].violations[0]):
                alone[f] = cand
            starting[f] = min(starting.get(f, math.inf), cand.starting_core_s)
    awake(by_hops[-1:] if managed else by_hops)
    crowded = est.scale_from_zero_all()
    est.load(Plan(epoch=est.forecast.epoch, containers={}))
    return alone, crowded, starting


class _Rows:
    """Constraint rows collected for one ``addRows`` call."""

    def __init__(self) -> None:
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.starts: list[int] = []
        self.index: list[npt.NDArray[np.int64]] = []
        self.value: list[npt.NDArray[np.float64]] = []
        self.nnz = 0

    def add(self, lower: float, upper: float, index: npt.ArrayLike, value: npt.ArrayLike) -> None:
        raw = np.asarray(index, dtype=np.int64).ravel()
        idx, where = np.unique(raw, return_inverse=True)  # a column named twice: its coefficients add
        val = np.bincount(where, np.broadcast_to(np.asarray(value, dtype=np.float64).ravel(), raw.shape), idx.size)
        keep = np.abs(val) > 1e-9  # HiGHS ignores smaller entries (its small_matrix_value)
        idx, val = idx[keep], val[keep]
        self.lower.append(lower)
        self.upper.append(upper)
        self.starts.append(self.nnz)
        self.index.append(idx)
        self.value.append(np.asarray(val, dtype=np.float64))
        self.nnz += idx.size

    def into(self, h: Any) -> None:
        if not self.lower:
            return
        status = h.addRows(
            len(self.lower), np.array(self.lower), np.array(self.upper), self.nnz, np.array(self.starts, dtype=np.int32),
            np.concatenate(self.index).astype(np.int32), np.concatenate(self.value),
        )  # fmt: skip
        if status != type(status).kOk:
            raise PlannerError(f"MILP rows rejected by HiGHS: {status}")


def solve(
    snapshot: ClusterSnapshot,
    forecast: Forecast,
    signals: EpochSignals,
    config: PlannerConfig,
    per_function: bool = False,
    time_limit_s: float | None = None,
) -> MilpResult:
    import highspy

    p = snapshot.params
    active = np.flatnonzero(forecast.active())
    nodes = snapshot.cluster.nodes
    if active.size > MAX_FUNCTIONS or len(nodes) > MAX_NODES:
        raise PlannerError(
            f"MILP bound is for small instances: {active.size} active functions (max {MAX_FUNCTIONS}), "
            f"{len(nodes)} nodes (max {MAX_NODES})"
        )
    managed = snapshot.cluster.sleep_empty_nodes
    est = Estimator(snapshot.cluster, p, forecast, signals, None, snapshot.water)
    alone, crowded, starting = _scale_from_zero_extremes(est, active.tolist(), managed)
    epoch_s = forecast.minute_s * forecast.minutes
    od_rows = {int(f): i for i, f in enumerate(crowded.functions)}
    minutes = forecast.minutes
    windows = max(1, round(forecast.minute_s / p.autoscale_interval_s))  # as the estimator
    node_units = np.array(free_units(snapshot.cluster, p), dtype=np.float64)
    cap_units = int(node_units.sum())
    totals = np.asarray(forecast.totals, dtype=np.float64)
    # per (function, level): SL and busy cores per minute
    options: list[tuple[int, int, float, FloatArray]] = []
    for f in active.tolist():
        total = float(totals[f])
        t = float(forecast.t_ave_s[f])
        # SL at its lowest (alone on the fastest links); busy cores at their lowest (every
        # function on the fewest links, so the fewest requests served): both under-estimate it.
        if p.utilisation == "allocated":
            od_busy = alone[f].alive * p.base_cpu_cores
        else:
            # plus the estimator's overheads of its container (ScaleFromZero.cores): idle while
            # held, and starting for as long as its starts take at their quickest, over the epoch
            od_busy = crowded.function_busy[od_rows[f]] + alone[f].alive * p.idle_cores + starting[f] / epoch_s
        options.append((f, 0, float(alone[f].violations[0]) / total, od_busy))
        # Levels up to the first without drops (more units only add idle cores), or the cluster's.
        for k in range(1, cap_units + 1):
            drops, _ = queue_drops(
                forecast.counts[f], t, float(k * p.slots_per_unit), p.laxity, forecast.minute_s,
                float(p.slots_per_unit), windows, 0.0,
            )  # fmt: skip
            if p.utilisation == "allocated":
                busy = np.full(minutes, k * p.base_cpu_cores)
            else:
                served = np.maximum(forecast.counts[f] - drops, 0.0)
                busy = busy_cores(served, t, p.request_cpu_cores, forecast.minute_s) + p.idle_cores * len(split_units(k, p))
            options.append((f, k, float(drops.sum()) / total, busy))
            if float(drops.sum()) <= 1e-12:
                break
    lowest: dict[int, float] = {}
    if per_function:
        for f, _, sl_fk, _ in options:
            lowest[f] = min(lowest.get(f, 1.0), sl_fk)
        options = [o for o in options if o[2] <= max(config.cstr, lowest[o[0]]) + 1e-12]
    coef = signals.ci_g_per_kwh * (1.0 + signals.cooling_factor) * forecast.minute_s / 3.6e6
    fixed_w = snapshot.cluster.storage_power_w + snapshot.cluster.network_power_w
    sleep_w = snapshot.cluster.sleep_power_w
    busy = np.array([o[3] for o in options])  # (n_opt, minutes)
    most_busy = float(sum(max(float(o[3].max()) for o in options if o[0] == f) for f in active.tolist()))
    groups = _node_groups(nodes)
    pwl = [group_pwl_below(nodes[g[0]].curve, len(g), most_busy) for g in groups]
    idle_w = [float(pwl_below(nodes[g[0]].curve, most_busy)[1][0]) for g in groups]  # L(0), below P(0)
    with _quiet_stdout():
        h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    if time_limit_s is None:
        time_limit_s = max(config.budget_s(snapshot, forecast), 5.0)
    h.setOptionValue("mip_rel_gap", MIP_REL_GAP)
    inf = highspy.kHighsInf
    n_opt = len(options)
    zero = [j for j, o in enumerate(options) if o[1] == 0]
    z_f = [options[j][0] for j in zero]
    # Columns: x (n_opt, binary) | φ (minutes) | w (zero × minutes) | per (group, minute) the
    # incremental piecewise-linear form of the group's power: δ_s ∈ [0, 1], the filled share of
    # segment s, then y_s ∈ {0, 1} with δ_{s+1} ≤ y_s ≤ δ_s (segments fill in order) | o_n ∈ {0, 1}
    # per node (on for the epoch; fixed at 1 without power management).
    PHI = n_opt
    W = PHI + minutes

    def w_col(i: int, m: int) -> int:
        return W + i * minutes + m

    blocks: list[tuple[int, int, int]] = []  # (minute, group, first δ column)
    col = W + len(zero) * minutes
    for m in range(minutes):
        for g in range(len(groups)):
            blocks.append((m, g, col))
            col += 2 * (pwl[g][0].size - 1) - 1
    ON = col
    col += len(nodes)
    lower, upper, cost = np.zeros(col), np.ones(col), np.zeros(col)
    if not managed:
        lower[ON:] = 1.0
    integer = list(range(n_opt)) + list(range(ON, ON + len(nodes)))
    base_g = 0.0  # what is always paid: a sleeping node's P_sleep (an awake one's L(0) is on o_n)
    for gi, members in enumerate(groups):
        for n in members:
            base_g += float(coef.sum()) * sleep_w
            cost[ON + n] = float(coef.sum()) * (idle_w[gi] - sleep_w)
    for m, g, c0 in blocks:
        n_seg = pwl[g][0].size - 1
        cost[c0 : c0 + n_seg] = coef[m] * np.diff(pwl[g][1])
        integer.extend(range(c0 + n_seg, c0 + 2 * n_seg - 1))
    h.addVars(col, lower, upper)
    h.changeColsCost(col, np.arange(col), cost)
    h.changeColsIntegrality(len(integer), np.array(integer), np.array([highspy.HighsVarType.kInteger] * len(integer)))
    rows = _Rows()
    # one level per function
    for f in active.tolist():
        rows.add(1.0, 1.0, [j for j, o in enumerate(options) if o[0] == f], 1.0)
    # Violations: each option's own plus, scaling from zero, the requests φ leaves unserved
    # (the estimator's Σ_m share_fm · φ_m, with w_fm = x_f0 · φ_m).
    lost = {i: alone[options[j][0]].served_share[0] for i, j in enumerate(zero)}
    w_all = np.array([w_col(i, m) for i in range(len(zero)) for m in range(minutes)], dtype=np.int64)
    w_lost = np.concatenate([lost[i] for i in range(len(zero))]) if zero else np.zeros(0)
    sl_of = np.array([o[2] for o in options])
    # SL_ave ≤ Cstr (eq. 7 averaged over the active functions)
    rows.add(-inf, config.cstr * active.size, np.concatenate([np.arange(n_opt), w_all]), np.concatenate([sl_of, w_lost]))
    # CASA's bound on the share of all requests dropped (planner setting max_drop_share; a plan
    # above it is infeasible in CASA's order, casa._key): the same violations weighted by requests.
    if config.max_drop_share < 1.0:
        weight = np.array([totals[o[0]] for o in options])
        w_weight = np.concatenate([np.full(minutes, totals[f]) for f in z_f]) if zero else np.zeros(0)
        rows.add(
            -inf, config.max_drop_share * float(totals[active].sum()), np.concatenate([np.arange(n_opt), w_all]),
            np.concatenate([sl_of * weight, w_lost * w_weight]),
        )  # fmt: skip
    if per_function:
        for i, j in enumerate(zero):
            f = options[j][0]
            own = [jj for jj, o in enumerate(options) if o[0] == f]
            rows.add(
                -inf, max(config.cstr, lowest[f]) + 1e-12, own + [w_col(i, m) for m in range(minutes)],
                np.concatenate([[options[jj][2] for jj in own], lost[i]]),
            )  # fmt: skip
    units_of = np.array([float(o[1]) for o in options])
    on_cols = ON + np.arange(len(nodes))
    # capacity in units: Σ k · x ≤ Σ units_n · o_n (packing onto the awake nodes relaxed to their total)
    rows.add(-inf, 0.0, np.concatenate([np.arange(n_opt), on_cols]), np.concatenate([units_of, -node_units]))
    for i, j in enumerate(zero):
        for m in range(minutes):
            wc = w_col(i, m)
            rows.add(-inf, 0.0, [wc, j], [1.0, -1.0])  # w ≤ x
            rows.add(-inf, 0.0, [wc, PHI + m], [1.0, -1.0])  # w ≤ φ
            rows.add(-1.0, inf, [wc, PHI + m, j], [1.0, -1.0, -1.0])  # w ≥ φ + x − 1
    grow = np.array([alone[f].grow_units for f in z_f])  # the estimator's od_grow_units, per function
    by_minute: dict[int, list[tuple[int, int]]] = {}
    for m, g, c0 in blocks:
        by_minute.setdefault(m, []).append((g, c0))
    for m in range(minutes):
        # The estimator's φ_m = max(0, 1 − free/held_m), free = Σ_awake (units_n − allocated) less
        # the units the in-epoch growth of scale-from-zero functions takes (predict_aggregates):
        # φ_m · held_m ≥ held_m − free, i.e. Σ alive·w − Σ alive·x_0 − Σ grow·x_0 − Σ k·x + Σ units_n·o_n ≥ 0.
        alive = np.array([alone[f].alive[m] for f in z_f])
        rows.add(
            0.0, inf, np.concatenate([[w_col(i, m) for i in range(len(zero))], zero, zero, np.arange(n_opt), on_cols]),
            np.concatenate([alive, -alive, -grow, -units_of, node_units]),
        )  # fmt: skip
        # Σ_g B_gm = Σ_o busy_om x_o − Σ_o0 busy_o0m w_o0m (the scale-from-zero cores that find room)
        cols = [np.arange(n_opt), np.array([w_col(i, m) for i in range(len(zero))], dtype=np.int64)]
        vals = [-busy[:, m], busy[zero, m]]
        for g, c0 in by_minute[m]:
            cols.append(np.arange(c0, c0 + pwl[g][0].size - 1))
            vals.append(np.diff(pwl[g][0]))
            # a group's busy cores fit its awake nodes: B_gm ≤ cores · Σ_{n∈g} o_n
            rows.add(
                -inf, 0.0, np.concatenate([np.arange(c0, c0 + pwl[g][0].size - 1), ON + np.array(groups[g])]),
                np.concatenate([np.diff(pwl[g][0]), np.full(len(groups[g]), -float(nodes[groups[g][0]].cores))]),
            )  # fmt: skip
        rows.add(0.0, 0.0, np.concatenate(cols), np.concatenate(vals))
    for _, g, c0 in blocks:
        n_seg = pwl[g][0].size - 1
        for j in range(n_seg - 1):
            y = c0 + n_seg + j
            rows.add(-inf, 0.0, [y, c0 + j], [1.0, -1.0])  # y_j ≤ δ_j
            rows.add(-inf, 0.0, [c0 + j + 1, y], [1.0, -1.0])  # δ_{j+1} ≤ y_j
    if managed:
        # The nodes of a group are interchangeable in the bound, so the awake ones come first:
        # o_n ≥ o_{n+1} (symmetry breaking; every set of awake nodes has a mirror image of this form).
        for members in groups:
            for n_a, n_b in itertools.pairwise(members):
                rows.add(0.0, inf, [ON + n_a, ON + n_b], [1.0, -1.0])
    # How many nodes are awake is fixed per solve, Σ_n o_n = a (the row's bounds, set below):
    # HiGHS's branching on o alone proved neither side on 8 nodes within a minute, while each count
    # on its own solves in seconds. a ≥ 1: CASA keeps one node awake (casa.py); with none, every
    # request drops.
    count_row = len(rows.lower)
    rows.add(1.0, float(len(nodes)), on_cols, 1.0)
    rows.into(h)
    # the constant part in the objective, so that the MIP gap is relative to the whole carbon
    offset = base_g + float(coef.sum() * fixed_w)
    h.changeObjectiveOffset(offset)
    # A first plan per count, so the search has an incumbent at once: every function at its
    # lowest-SL level (its largest), when those fit the awake nodes and meet Cstr; HiGHS completes it.
    top: dict[int, int] = {}
    for j, o in enumerate(options):
        if o[0] not in top or o[2] < options[top[o[0]]][2] - 1e-12:
            top[o[0]] = j
    chosen = list(top.values())
    first_units = sum(options[j][1] for j in chosen)
    first_ok = sum(options[j][2] for j in chosen) <= config.cstr * active.size
    # what a awake nodes cost whatever they run: the a cheapest nodes' L(0) − P_sleep, plus the rest
    idle_of = sorted(float(cost[ON + n]) for n in range(len(nodes)))
    counts = list(range(1, len(nodes) + 1)) if managed else [len(nodes)]
    deadline = time.perf_counter() + time_limit_s
    bound = math.inf  # min over the counts of each count's proven (dual) bound
    optimal = True
    best: tuple[float, FloatArray, str] | None = None  # the lowest-carbon plan found: value, columns, status
    statuses: list[str] = []
    for a in counts:
        floor_g = offset + sum(idle_of[:a])
        if floor_g >= bound:
            continue  # a awake nodes alone cost more than a bound already proven for fewer
        left = deadline - time.perf_counter()
        if left <= 0.0:
            optimal = False  # not solved: only its floor is proven
            bound = min(bound, floor_g)
            continue
        # three quarters of the time left while larger counts may follow (the fewest awake is the
        # hardest count and the one the bound usually sits on; unused time carries on), else all of it
        last = not any(b > a and offset + sum(idle_of[:b]) < bound for b in counts)
        h.changeRowBounds(count_row, float(a), float(a))
        h.setOptionValue("time_limit", left if last else 0.75 * left)
        if first_ok and first_units <= float(node_units[np.argsort(-node_units)[:a]].sum()):
            start = np.zeros(n_opt + minutes + len(zero) * minutes)
            start[chosen] = 1.0
            index = np.arange(start.size)
            if len(groups) == 1:  # the first a nodes awake (the symmetry rows' order)
                index = np.concatenate([index, on_cols])
                start = np.concatenate([start, (np.arange(len(nodes)) < a).astype(np.float64)])
            h.setSolution(index.size, index.astype(np.int32), start)
        h.run()
        model_status = h.getModelStatus()
        statuses.append(f"{a} awake: {model_status}")
        if model_status == highspy.HighsModelStatus.kInfeasible:
            continue
        if model_status not in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kTimeLimit):
            raise PlannerError(f"MILP not solved: {model_status}")
        optimal = optimal and model_status == highspy.HighsModelStatus.kOptimal
        bound = min(bound, max(float(h.getInfo().mip_dual_bound), floor_g))
        solution = h.getSolution()
        value = float(h.getInfo().objective_function_value)
        if solution.value_valid and (best is None or value < best[0]):
            best = (value, np.asarray(solution.col_value), str(model_status))
    if best is None and optimal:
        raise PlannerError(
            "MILP infeasible: no capacity levels meet Cstr within the cluster's units and cores "
            f"(Cstr {config.cstr}, {cap_units} units, {sum(n.cores for n in nodes)} cores)"
        )
    solve_s = time_limit_s - max(deadline - time.perf_counter(), 0.0)
    if best is None:  # the bound stands (each count's dual bound or floor), but no plan was found
        return MilpResult(bound, math.nan, {}, "; ".join(statuses), False, (), solve_s)
    sol = best[1]
    levels: dict[str, int] = {}
    sl = 0.0
    for j, (f, k, sl_fk, _) in enumerate(options):
        if sol[j] > 0.5:
            levels[forecast.function_ids[f]] = k
            sl += sl_fk
    off = tuple(nodes[n].name for n in range(len(nodes)) if managed and sol[ON + n] < 0.5)
    return MilpResult(bound, sl / max(active.size, 1), levels, "; ".join(statuses), optimal, off, solve_s)


class MilpPlanner(PlannerBase):
    name = "milp"
    plans_node_power = True  # with power management its plans name the sleeping nodes

    def __init__(self, config: PlannerConfig) -> None:
        super().__init__(config)
        self.last: MilpResult | None = None

    def plan(self, snapshot: ClusterSnapshot, forecast: Forecast, signals: EpochSignals) -> Plan:
        res = solve(snapshot, forecast, signals, self.config)
        self.last = res
        if not res.levels:
            raise PlannerError(f"MILP found no plan within its time limit ({res.status})")
        room = [0 if n.name in res.sleeping_nodes else units
                for n, units in zip(snapshot.cluster.nodes, free_units(snapshot.cluster, snapshot.params), strict=True)]  # fmt: skip
        by_level = sorted(res.levels.items(), key=lambda kv: -kv[1])  # largest level first
        items = [(size, fid) for fid, k in by_level for size in split_units(k, snapshot.params)]
        layout: dict[str, list[tuple[int, int]]] = {}
        for fid, n, size in first_fit(items, room):
            layout.setdefault(fid, []).append((n, size))
        predicted = PredictedMetrics(res.carbon_bound_g, math.nan, math.nan, res.sl_ave, math.nan)
        return to_plan(self.name, snapshot, forecast, signals, layout, predicted, res.sleeping_nodes)
