"""MILP: an exact lower bound on the carbon of any plan that meets Cstr, for small instances (HiGHS).

The bound is taken over a relaxation of the estimator's own model (the one every planner's
plans are predicted with), so "CASA is within X % of the bound" is meaningful:

- each active function picks one capacity level k ∈ {0, 1, …, K_f} units (binary x_fk; k = 0
  scales from zero); its violations and busy cores per minute at each level come from the
  estimator's per-function model with warm containers (no cold start; scale from zero without
  image-link sharing or capacity shortage);
- SL_ave ≤ Cstr: Σ_fk x_fk · SL_f(k) ≤ Cstr · (active functions);
- capacity: Σ_fk k · x_fk ≤ the cluster's units (packing onto nodes relaxed to the total);
- power: the busy cores B_m of each minute are spread over the nodes in the cheapest way,
  g(B) = min Σ_n P_n(U_n) s.t. Σ U_n = B (computed on a grid, then a piecewise-linear
  interpolation with SOS2-style binaries, exact at the breakpoints and an under-estimate
  between them since g is taken at its lower envelope);
- objective: Σ_m CI_m (1 + E_t) g(B_m) · 60 s (start/stop overheads dropped: they only add).

Every relaxation can only lower carbon or SL, so the optimum is a lower bound on the carbon of
the best plan under the estimator. The plan returned realises the chosen levels first-fit;
instances above ``MAX_FUNCTIONS`` active functions or ``MAX_NODES`` nodes are refused.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from casa_sched.plan import Plan, PlanInputs, PredictedMetrics
from casa_sched.planners.base import ClusterSnapshot, PlannerConfig, PlannerError, register
from casa_sched.planners.common import free_units, peak_concurrency, split_units, to_plan, units_for
from casa_sched.simulator.estimator import Estimator
from casa_sched.simulator.forecast import EpochSignals, Forecast
from casa_sched.simulator.kernel import queue_drops
from casa_sched.simulator.results import EpochResult

MAX_FUNCTIONS = 60
MAX_NODES = 8
MAX_LEVEL_HEADROOM = 1.5  # levels up to 1.5 × the peak's units (more only adds carbon)
GRID = 24  # breakpoints of g(B)


@dataclass(frozen=True)
class MilpResult:
    carbon_bound_g: float
    sl_ave: float
    levels: dict[str, int]
    status: str


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


def min_power_curve_w(snapshot: ClusterSnapshot, points: int = GRID) -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints (busy cores, watts) of g(B) = min Σ_n P_n(U_n) with Σ U_n = B, by dynamic
    programming over nodes on a 1-core grid."""
    nodes = snapshot.cluster.nodes
    total = int(sum(n.cores for n in nodes))
    best = np.full(total + 1, np.inf)
    best[0] = 0.0
    used = 0
    for node in nodes:
        p = node.curve.power_w_array(np.arange(node.cores + 1))
        nxt = np.full(total + 1, np.inf)
        for u in range(node.cores + 1):
            nxt[u : used + u + 1] = np.minimum(nxt[u : used + u + 1], best[: used + 1] + p[u])
        best = nxt
        used += node.cores
    xs = np.unique(np.round(np.linspace(0, total, points)).astype(int))
    # lower envelope between breakpoints: take the minimum of g over each segment's right part
    ys = np.array([best[x:].min() for x in xs])
    return xs.astype(np.float64), ys


def solve(snapshot: ClusterSnapshot, forecast: Forecast, signals: EpochSignals, config: PlannerConfig) -> MilpResult:
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
    od = est._od_eval()
    od_rows = {int(f): i for i, f in enumerate(od.functions)}
    minutes = forecast.minutes
    peak = peak_concurrency(forecast)
    cap_units = sum(free_units(snapshot.cluster, p))
    # per (function, level): SL and busy cores per minute
    options: list[tuple[int, int, float, np.ndarray]] = []
    for f in active.tolist():
        total = float(forecast.totals[f])
        t = float(forecast.t_ave_s[f])
        i = od_rows[f]
        od_v = float(od.violations[i])
        od_served = np.maximum(forecast.counts[f] - od_v * forecast.counts[f] / total, 0.0)
        busy0 = od_served * t * p.request_cpu_cores / forecast.minute_s + est._od_alive[f] * p.idle_cores
        options.append((f, 0, od_v / total, busy0))
        top = min(cap_units, max(1, math.ceil(units_for(float(peak[f]), p) * MAX_LEVEL_HEADROOM)))
        for k in range(1, top + 1):
            drops, _ = queue_drops(forecast.counts[f], t, float(k * p.slots_per_unit), p.laxity, forecast.minute_s,
                                   float(p.slots_per_unit), 6, 0.0)  # fmt: skip
            served = np.maximum(forecast.counts[f] - drops, 0.0)
            busy = served * t * p.request_cpu_cores / forecast.minute_s + p.idle_cores * len(split_units(k, p))
            options.append((f, k, float(drops.sum()) / total, busy))
    xs, gs = min_power_curve_w(snapshot)
    coef = signals.ci_g_per_kwh * (1.0 + signals.cooling_factor) * forecast.minute_s / 3.6e6
    fixed_w = snapshot.cluster.storage_power_w + snapshot.cluster.network_power_w
    with _quiet_stdout():
        h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", max(config.time_budget_s, 5.0))
    inf = highspy.kHighsInf
    n_opt = len(options)
    S = xs.size
    # columns: x (n_opt, binary) | lam (minutes × S, [0, 1]) | z (minutes × (S-1), binary)
    n_lam, n_z = minutes * S, minutes * (S - 1)
    n_cols = n_opt + n_lam + n_z
    lower = np.zeros(n_cols)
    upper = np.ones(n_cols)
    cost = np.zeros(n_cols)
    for m in range(minutes):
        cost[n_opt + m * S : n_opt + (m + 1) * S] = coef[m] * gs
    h.addVars(n_cols, lower, upper)
    h.changeColsCost(n_cols, np.arange(n_cols), cost)
    ints = np.concatenate([np.arange(n_opt), np.arange(n_opt + n_lam, n_cols)])
    h.changeColsIntegrality(ints.size, ints, np.array([highspy.HighsVarType.kInteger] * ints.size))
    # one level per function
    for f in active.tolist():
        idx = np.array([j for j, o in enumerate(options) if o[0] == f])
        h.addRow(1.0, 1.0, idx.size, idx, np.ones(idx.size))
    # SL_ave ≤ Cstr
    h.addRow(-inf, config.cstr * active.size, n_opt, np.arange(n_opt), np.array([o[2] for o in options]))
    # capacity in units
    h.addRow(-inf, float(cap_units), n_opt, np.arange(n_opt), np.array([float(o[1]) for o in options]))
    for m in range(minutes):
        lam = n_opt + m * S + np.arange(S)
        z = n_opt + n_lam + m * (S - 1) + np.arange(S - 1)
        h.addRow(1.0, 1.0, S, lam, np.ones(S))  # Σ λ = 1
        h.addRow(1.0, 1.0, S - 1, z, np.ones(S - 1))  # one segment
        # B_m = Σ λ_s xs_s  ⇔  Σ λ xs − Σ busy x = 0
        busy = np.array([o[3][m] for o in options])
        h.addRow(0.0, 0.0, S + n_opt, np.concatenate([lam, np.arange(n_opt)]), np.concatenate([xs, -busy]))
        for s in range(S):  # λ_s ≤ z_{s-1} + z_s (adjacent breakpoints only)
            zs = [z[j] for j in (s - 1, s) if 0 <= j < S - 1]
            h.addRow(-inf, 0.0, 1 + len(zs), np.array([lam[s], *zs]), np.array([1.0] + [-1.0] * len(zs)))
    h.run()
    status = str(h.getModelStatus())
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise PlannerError(f"MILP not solved to optimality: {status}")
    sol = np.asarray(h.getSolution().col_value)
    levels: dict[str, int] = {}
    sl = 0.0
    for j, (f, k, sl_fk, _) in enumerate(options):
        if sol[j] > 0.5:
            levels[forecast.function_ids[f]] = k
            sl += sl_fk
    bound = float(h.getInfo().objective_function_value) + float(coef.sum() * fixed_w)
    return MilpResult(bound, sl / max(active.size, 1), levels, status)


@register("milp")
class MilpPlanner:
    name = "milp"

    def __init__(self) -> None:
        self.last: MilpResult | None = None

    def observe(self, result: EpochResult) -> None:
        """Stateless between epochs."""

    def plan(self, snapshot: ClusterSnapshot, forecast: Forecast, signals: EpochSignals, config: PlannerConfig) -> Plan:
        res = solve(snapshot, forecast, signals, config)
        self.last = res
        room = free_units(snapshot.cluster, snapshot.params)
        layout: dict[str, list[tuple[int, int]]] = {}
        for fid, k in sorted(res.levels.items(), key=lambda kv: -kv[1]):
            for size in split_units(k, snapshot.params):
                n = next((i for i, r in enumerate(room) if r >= size), None)
                if n is None:
                    continue
                room[n] -= size
                layout.setdefault(fid, []).append((n, size))
        plan = to_plan(forecast.epoch, snapshot.cluster, layout, snapshot.previous)
        return Plan(
            epoch=plan.epoch,
            containers=plan.containers,
            inputs=PlanInputs(policy=self.name, ci_g_per_kwh=signals.mean_ci_g_per_kwh),
            predicted=PredictedMetrics(res.carbon_bound_g, math.nan, math.nan, res.sl_ave, math.nan),
        )
