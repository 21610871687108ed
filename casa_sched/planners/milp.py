"""MILP: an exact lower bound on the carbon of any plan that meets Cstr, for small instances (HiGHS).

The bound is taken over a relaxation of the estimator's own model (the one every planner's
plans are predicted with), so "CASA is within X % of the bound" is meaningful:

- each active function picks one capacity level k ∈ {0, 1, …, K_f} units (binary x_fk; k = 0
  scales from zero); its violations and busy cores per minute at each level come from the
  estimator's per-function model with warm containers (no cold start);
- scale from zero (k = 0): violations as if no other function shared the image link (the
  fewest the estimator can give it), busy cores as if every function did (the fewest requests
  served); the estimator's share φ_m of scale-from-zero containers that find no free unit in
  minute m is a variable with the estimator's floor ``φ_m · held_m ≥ held_m − free units``
  (in-epoch growth ignored, which only lowers the floor), and ``w_fm = x_f0 · φ_m`` (exact for
  binary x: w ≤ x, w ≤ φ, w ≥ φ + x − 1) moves the requests it leaves unserved from busy cores
  to violations (an earlier version gave scale-from-zero functions no busy cores at all: the
  bound then served small functions for free, and CASA looked 17-26 % from it);
- SL_ave ≤ Cstr: Σ_fk x_fk · SL_f(k) + Σ_fm share_fm · w_fm ≤ Cstr · (active functions);
- optionally (``per_function=True``, CASA's reading of the constraint "per request type", see
  :mod:`.casa`) each function keeps its own rate within ``max(Cstr, its lowest rate at any
  level)``;
- node power states (with power management, ``cluster.sleep_empty_nodes``): a binary o_n per
  node says it is on for the epoch, as a plan's ``sleeping_nodes`` does; a node that is off
  draws ``sleep_power_w`` all epoch, holds no container and no busy core (U_nm ≤ cores_n · o_n),
  and offers scale-from-zero containers no room; without power management every o_n = 1. Wake
  latency is ignored (it only adds drops). An earlier version let any node draw P_sleep in any
  minute in which it had no busy cores, whether or not its units were needed that epoch;
- capacity: Σ_fk k · x_fk ≤ Σ_n units_n · o_n (packing onto the nodes that are on relaxed to
  their total);
- power: the busy cores B_m of each minute may be spread over the nodes that are on in any way
  (``Σ_n U_nm = B_m``, ``0 ≤ U_nm ≤ cores_n · o_n``; identical nodes ordered by o and by U to
  break symmetry), and an on node's power is a piecewise-linear interpolation of its curve P_n
  (eq. 2) on breakpoints every
  ``PWL_STEP_CORES`` cores, in the incremental form with binaries (segments fill in order),
  each breakpoint lowered by the largest amount the interpolation exceeds P_n on its segments
  (measured on a 0.01-core grid plus the ``max|P''| · h² / 8`` bound between grid points), so
  the interpolation lies below P_n everywhere and within a fraction of a watt of it. Concave
  stretches are modelled as tightly as convex ones (a convex envelope, an LP, would credit
  consolidation up to the chord's worth where the default curve is steepest);
- objective: Σ_m CI_m (1 + E_t) (Σ_n [o_n · P_n(U_nm) + (1 − o_n) · P_sleep] + P_S + P_N) · 60 s
  (idle-container, start and stop overheads of scale-from-zero containers dropped: they only add).

What it is a bound of: the lowest carbon the estimator (:class:`~.estimator.Estimator`, with
every container warm) can predict for any plan on this cluster, with any set of sleeping nodes
under power management, whose predicted SL_ave ≤ Cstr and whose busy cores stay within the
cores of its awake nodes in every minute (a minute beyond that runs
every node flat out and is outside the bound). It is not a bound on simulated carbon: the
simulator's numbers differ from the estimator's by its measured error. Every relaxation above
can only lower carbon or SL, so the optimum is a lower bound on the carbon of the best plan
under the estimator. The bound reported is HiGHS's proven dual bound: within ``MIP_REL_GAP``
of the optimum when it solves, looser when it stops at its time limit (``optimal`` False). The plan returned realises the chosen levels first-fit on the nodes that are on and names the
others as its ``sleeping_nodes``;
instances above ``MAX_FUNCTIONS`` active functions or ``MAX_NODES`` nodes are refused.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from casa_sched._typing import FloatArray
from casa_sched.contract.forecast import EpochSignals, Forecast
from casa_sched.contract.plan import Plan, PredictedMetrics
from casa_sched.contract.snapshot import ClusterSnapshot, PlannerConfig
from casa_sched.models.power import PowerCurve
from casa_sched.planners._common import first_fit, free_units, split_units, to_plan
from casa_sched.planners.base import PlannerBase, PlannerError
from casa_sched.simulator.estimator import Estimator
from casa_sched.simulator.kernel import queue_drops

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


def solve(
    snapshot: ClusterSnapshot,
    forecast: Forecast,
    signals: EpochSignals,
    config: PlannerConfig,
    per_function: bool = False,
) -> MilpResult:
    import highspy

    p = snapshot.params
    active = np.flatnonzero(forecast.active())
    if active.size > MAX_FUNCTIONS or len(snapshot.cluster.nodes) > MAX_NODES:
        raise PlannerError(
            f"MILP bound is for small instances: {active.size} active functions (max {MAX_FUNCTIONS}), "
            f"{len(snapshot.cluster.nodes)} nodes (max {MAX_NODES})"
        )
    est = Estimator(snapshot.cluster, p, forecast, signals, None, snapshot.water)
    est.load(Plan(epoch=forecast.epoch, containers={}))
    crowded = est.scale_from_zero_all()  # every function scales from zero: the most image-link sharing
    od_rows = {int(f): i for i, f in enumerate(crowded.functions)}
    minutes = forecast.minutes
    windows = max(1, round(forecast.minute_s / p.autoscale_interval_s))  # as the estimator
    node_units = free_units(snapshot.cluster, p)
    cap_units = sum(node_units)
    # per (function, level): SL and busy cores per minute
    options: list[tuple[int, int, float, FloatArray]] = []
    # per scale-from-zero option: served share and containers held per minute (for φ)
    od_share: dict[int, FloatArray] = {}
    od_alive: dict[int, FloatArray] = {}
    for f in active.tolist():
        total = float(forecast.totals[f])
        t = float(forecast.t_ave_s[f])
        alone = est.scale_from_zero_alone(f)
        od_share[f], od_alive[f] = alone.served_share[0], alone.alive
        # SL at its lowest (no other start on the link); busy cores at their lowest (every other
        # start on the link, so the fewest requests served): both under-estimate the estimator.
        if p.utilisation == "allocated":
            od_busy = od_alive[f] * p.base_cpu_cores
        else:
            od_busy = crowded.served_share[od_rows[f]] * total * t * p.request_cpu_cores / forecast.minute_s
        options.append((f, 0, float(alone.violations[0]) / total, od_busy))
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
                busy = served * t * p.request_cpu_cores / forecast.minute_s + p.idle_cores * len(split_units(k, p))
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
    nodes = snapshot.cluster.nodes
    managed = snapshot.cluster.sleep_empty_nodes
    sleep_w = snapshot.cluster.sleep_power_w
    busy = np.array([o[3] for o in options])  # (n_opt, minutes)
    most_busy = float(sum(max(float(o[3].max()) for o in options if o[0] == f) for f in active.tolist()))
    pwl = [pwl_below(n.curve, most_busy) for n in nodes]
    with _quiet_stdout():
        h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    time_limit_s = max(config.budget_s(snapshot, forecast), 5.0)
    h.setOptionValue("time_limit", time_limit_s)
    h.setOptionValue("mip_rel_gap", MIP_REL_GAP)
    inf = highspy.kHighsInf
    n_opt = len(options)
    # Scale-from-zero options: a share φ_m of their containers finds no free unit in minute m
    # (the estimator's φ); w_om = x_o · φ_m, exact for binary x_o (w ≤ x, w ≤ φ, w ≥ φ + x − 1).
    # φ_m only has a floor (capacity), so the bound may also take it higher: still a relaxation.
    zero = [j for j, o in enumerate(options) if o[1] == 0]
    # columns: x (n_opt, binary) | φ (minutes) | w (zero × minutes) | per (minute, node), the
    # incremental (locally ideal) piecewise-linear form: δ_s ∈ [0, 1], the filled share of
    # segment s, then y_s ∈ {0, 1} with δ_{s+1} ≤ y_s ≤ δ_s (segments fill in order) | with
    # power management, o_n ∈ {0, 1} per node (on for the epoch)
    PHI = n_opt
    W = PHI + minutes

    def w_col(i: int, m: int) -> int:
        return W + i * minutes + m

    blocks: list[tuple[int, int, int]] = []  # (minute, node, first δ column)
    col = W + len(zero) * minutes
    for m in range(minutes):
        for n in range(len(nodes)):
            blocks.append((m, n, col))
            col += 2 * (pwl[n][0].size - 1) - 1
    ON = col
    if managed:
        col += len(nodes)
    lower, upper, cost = np.zeros(col), np.ones(col), np.zeros(col)
    integer = list(range(n_opt))
    base_g = 0.0  # what is always paid: each node's P at its first breakpoint, or asleep P_sleep
    for m, n, c0 in blocks:
        u_n, w_n = pwl[n]
        n_seg = u_n.size - 1
        cost[c0 : c0 + n_seg] = coef[m] * np.diff(w_n)
        if managed:  # o_n · P_n(0) + (1 − o_n) · P_sleep
            base_g += coef[m] * sleep_w
            cost[ON + n] += coef[m] * (w_n[0] - sleep_w)
        else:
            base_g += coef[m] * w_n[0]
        integer.extend(range(c0 + n_seg, c0 + 2 * n_seg - 1))
    if managed:
        integer.extend(range(ON, ON + len(nodes)))
    h.addVars(col, lower, upper)
    h.changeColsCost(col, np.arange(col), cost)
    h.changeColsIntegrality(len(integer), np.array(integer), np.array([highspy.HighsVarType.kInteger] * len(integer)))
    # one level per function
    for f in active.tolist():
        idx = np.array([j for j, o in enumerate(options) if o[0] == f])
        h.addRow(1.0, 1.0, idx.size, idx, np.ones(idx.size))
    # SL: each option's own violations plus, scaling from zero, the requests φ leaves unserved
    lost = {i: od_share[options[j][0]] for i, j in enumerate(zero)}
    w_all = np.array([w_col(i, m) for i in range(len(zero)) for m in range(minutes)], dtype=np.int64)
    w_lost = np.concatenate([lost[i] for i in range(len(zero))]) if zero else np.zeros(0)
    h.addRow(
        -inf, config.cstr * active.size, n_opt + w_all.size,
        np.concatenate([np.arange(n_opt), w_all]), np.concatenate([[o[2] for o in options], w_lost]),
    )  # fmt: skip
    if per_function:
        for i, j in enumerate(zero):
            f = options[j][0]
            own = [jj for jj, o in enumerate(options) if o[0] == f]
            limit = max(config.cstr, lowest[f])
            ws = np.array([w_col(i, m) for m in range(minutes)])
            h.addRow(
                -inf, limit + 1e-12, len(own) + minutes, np.concatenate([own, ws]),
                np.concatenate([[options[jj][2] for jj in own], lost[i]]),
            )  # fmt: skip
    # capacity in units: Σ k · x ≤ Σ units_n · o_n (every node's units without power management)
    units_of = np.array([float(o[1]) for o in options])
    if managed:
        h.addRow(-inf, 0.0, n_opt + len(nodes), np.concatenate([np.arange(n_opt), ON + np.arange(len(nodes))]),
                 np.concatenate([units_of, -np.array(node_units, dtype=np.float64)]))  # fmt: skip
    else:
        h.addRow(-inf, float(cap_units), n_opt, np.arange(n_opt), units_of)
    for i, j in enumerate(zero):
        for m in range(minutes):
            wc = w_col(i, m)
            h.addRow(-inf, 0.0, 2, np.array([wc, j]), np.array([1.0, -1.0]))  # w ≤ x
            h.addRow(-inf, 0.0, 2, np.array([wc, PHI + m]), np.array([1.0, -1.0]))  # w ≤ φ
            h.addRow(-1.0, inf, 3, np.array([wc, PHI + m, j]), np.array([1.0, -1.0, -1.0]))  # w ≥ φ + x − 1
    for m in range(minutes):
        # φ_m · (containers held) ≥ held − free units: Σ alive·w − Σ alive·x_0 − Σ k·x_k ≥ −cap,
        # the free units those of the nodes that are on (a sleeping node takes no such container)
        alive = np.array([od_alive[options[j][0]][m] for j in zero])
        idx_m = np.concatenate([[w_col(i, m) for i in range(len(zero))], zero, np.arange(n_opt)]).astype(np.int64)
        val_m = np.concatenate([alive, -alive, -units_of])
        if managed:
            idx_m = np.concatenate([idx_m, ON + np.arange(len(nodes))])
            val_m = np.concatenate([val_m, np.array(node_units, dtype=np.float64)])
            h.addRow(0.0, inf, idx_m.size, idx_m, val_m)
        else:
            h.addRow(-float(cap_units), inf, idx_m.size, idx_m, val_m)
        # Σ_n U_nm − Σ_o busy_om x_o + Σ_o0 busy_o0m w_o0m = 0, with U_nm = Σ_s δ_s · (segment s's cores)
        cols = [np.arange(n_opt), np.array([w_col(i, m) for i in range(len(zero))], dtype=np.int64)]
        vals = [-busy[:, m], busy[zero, m]]
        for mm, n, c0 in blocks:
            if mm == m:
                cols.append(np.arange(c0, c0 + pwl[n][0].size - 1))
                vals.append(np.diff(pwl[n][0]))
        h.addRow(0.0, 0.0, sum(c.size for c in cols), np.concatenate(cols), np.concatenate(vals))
    # identical nodes are interchangeable: order their busy cores (U_nm ≥ U_{n+1,m}) so the
    # search does not revisit mirror images
    first = {(m, n): c0 for m, n, c0 in blocks}
    identical = [
        nodes[n].cores == nodes[n + 1].cores and nodes[n].curve.coeffs == nodes[n + 1].curve.coeffs
        for n in range(len(nodes) - 1)
    ]
    if managed:
        for n in range(len(nodes) - 1):
            if identical[n]:  # the nodes that are on come first: o_n ≥ o_{n+1}
                h.addRow(0.0, inf, 2, np.array([ON + n, ON + n + 1]), np.array([1.0, -1.0]))
        for _, n, c0 in blocks:  # an off node has no busy cores: δ_0 ≤ o_n (the others fill after it)
            h.addRow(-inf, 0.0, 2, np.array([c0, ON + n]), np.array([1.0, -1.0]))
    for m in range(minutes):
        for n in range(len(nodes) - 1):
            if not identical[n]:
                continue
            ca, cb, k = first[(m, n)], first[(m, n + 1)], pwl[n][0].size - 1
            du = np.diff(pwl[n][0])
            h.addRow(0.0, inf, 2 * k, np.concatenate([np.arange(ca, ca + k), np.arange(cb, cb + k)]), np.concatenate([du, -du]))
    for _, n, c0 in blocks:
        n_seg = pwl[n][0].size - 1
        for j in range(n_seg - 1):
            y = c0 + n_seg + j
            h.addRow(-inf, 0.0, 2, np.array([y, c0 + j]), np.array([1.0, -1.0]))  # y_j ≤ δ_j
            h.addRow(-inf, 0.0, 2, np.array([c0 + j + 1, y]), np.array([1.0, -1.0]))  # δ_{j+1} ≤ y_j
    # A first plan, so the search has an incumbent at once: every function at its lowest-SL
    # level (its largest), when those fit the cluster and meet Cstr; HiGHS completes the rest.
    top: dict[int, int] = {}
    for j, o in enumerate(options):
        if o[0] not in top or o[2] < options[top[o[0]]][2] - 1e-12:
            top[o[0]] = j
    chosen = list(top.values())
    if sum(options[j][1] for j in chosen) <= cap_units and sum(options[j][2] for j in chosen) <= config.cstr * active.size:
        start = np.zeros(n_opt + minutes + len(zero) * minutes)
        start[chosen] = 1.0
        index = np.arange(start.size, dtype=np.int32)
        if managed:  # every node on
            index = np.concatenate([index, ON + np.arange(len(nodes), dtype=np.int32)])
            start = np.concatenate([start, np.ones(len(nodes))])
        h.setSolution(start.size, index, start)
    # the constant part in the objective, so that the MIP gap is relative to the whole carbon
    h.changeObjectiveOffset(base_g + float(coef.sum() * fixed_w))
    h.run()
    status = str(h.getModelStatus())
    if h.getModelStatus() == highspy.HighsModelStatus.kInfeasible:
        raise PlannerError(
            "MILP infeasible: no capacity levels meet Cstr within the cluster's units and cores "
            f"(Cstr {config.cstr}, {cap_units} units, {sum(n.cores for n in nodes)} cores)"
        )
    optimal = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    if not optimal and h.getModelStatus() != highspy.HighsModelStatus.kTimeLimit:
        raise PlannerError(f"MILP not solved: {status}")
    solution = h.getSolution()
    if not solution.value_valid:
        raise PlannerError(f"MILP found no plan within {time_limit_s:g} s: {status}")
    sol = np.asarray(solution.col_value)
    levels: dict[str, int] = {}
    sl = 0.0
    for j, (f, k, sl_fk, _) in enumerate(options):
        if sol[j] > 0.5:
            levels[forecast.function_ids[f]] = k
            sl += sl_fk
    bound = float(h.getInfo().mip_dual_bound)  # proven: within MIP_REL_GAP of the optimum when optimal
    off = tuple(nodes[n].name for n in range(len(nodes)) if managed and sol[ON + n] < 0.5)
    return MilpResult(bound, sl / max(active.size, 1), levels, status, optimal, off)


class MilpPlanner(PlannerBase):
    name = "milp"
    plans_node_power = True  # with power management its plans name the sleeping nodes

    def __init__(self, config: PlannerConfig) -> None:
        super().__init__(config)
        self.last: MilpResult | None = None

    def plan(self, snapshot: ClusterSnapshot, forecast: Forecast, signals: EpochSignals) -> Plan:
        res = solve(snapshot, forecast, signals, self.config)
        self.last = res
        room = [0 if n.name in res.sleeping_nodes else units
                for n, units in zip(snapshot.cluster.nodes, free_units(snapshot.cluster, snapshot.params), strict=True)]  # fmt: skip
        by_level = sorted(res.levels.items(), key=lambda kv: -kv[1])  # largest level first
        items = [(size, fid) for fid, k in by_level for size in split_units(k, snapshot.params)]
        layout: dict[str, list[tuple[int, int]]] = {}
        for fid, n, size in first_fit(items, room):
            layout.setdefault(fid, []).append((n, size))
        predicted = PredictedMetrics(res.carbon_bound_g, math.nan, math.nan, res.sl_ave, math.nan)
        return to_plan(self.name, snapshot, forecast, signals, layout, predicted, res.sleeping_nodes)
