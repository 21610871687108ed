"""MILP: an exact lower bound on the carbon of any plan that meets Cstr, for small instances (HiGHS).

The bound is taken over a relaxation of the estimator's own model (the one every planner's
plans are predicted with), so "CASA is within X % of the bound" is meaningful:

- each active function picks one capacity level k ∈ {0, 1, …, K_f} units (binary x_fk; k = 0
  scales from zero); its violations and busy cores per minute at each level come from the
  estimator's per-function model with warm containers (no cold start; scale from zero without
  image-link sharing or capacity shortage);
- SL_ave ≤ Cstr: Σ_fk x_fk · SL_f(k) ≤ Cstr · (active functions);
- capacity: Σ_fk k · x_fk ≤ the cluster's units (packing onto nodes relaxed to the total);
- power: the busy cores B_m of each minute may be spread over the nodes in any way
  (``Σ_n U_nm = B_m``, ``0 ≤ U_nm ≤ cores_n``), and each node's power is taken at the lower
  convex envelope of its curve P_n (eq. 2; with ``sleep_empty_nodes`` the point (0, P_sleep) is
  included): at most ``ENVELOPE_LINES`` of its supporting lines, each shifted down by the
  sampling error bound ``max|P''| · h² / 8`` of the 0.01-core grid it was built on, so every
  line lies below P_n everywhere on [0, cores_n]. Convex envelopes make the power part a pure
  LP (no binaries) and a valid under-estimate of the estimator's ``Σ_n P_n(U_n)`` for every
  placement; the price is looseness where P_n is concave (the default curve is steepest near
  idle, so the bound credits consolidation at most the chord's worth);
- scale-from-zero functions (level 0) get the estimator's own violations without capacity
  shortage (its share φ of containers finding no free cores is taken as 0, which only lowers
  SL) and no busy cores (the estimator scales their cores by 1 − φ, unknown here; 0 is below);
- objective: Σ_m CI_m (1 + E_t) (Σ_n P_n + P_S + P_N) · 60 s (start/stop overheads dropped:
  they only add).

What it is a bound of: the lowest carbon the estimator (:class:`~.estimator.Estimator`, with
every container warm) can predict for any plan on this cluster whose predicted SL_ave ≤ Cstr
and whose busy cores stay within the cluster's cores in every minute (a minute beyond that runs
every node flat out and is outside the bound). It is not a bound on simulated carbon: the
simulator's numbers differ from the estimator's by its measured error. Every relaxation above
can only lower carbon or SL, so the optimum is a lower bound on the carbon of the best plan
under the estimator. The plan returned realises the chosen levels first-fit;
instances above ``MAX_FUNCTIONS`` active functions or ``MAX_NODES`` nodes are refused.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from casa_sched.models.power import PowerCurve
from casa_sched.plan import Plan, PlanInputs, PredictedMetrics
from casa_sched.planners.base import ClusterSnapshot, PlannerConfig, PlannerError, register
from casa_sched.planners.common import free_units, split_units, to_plan
from casa_sched.simulator.estimator import Estimator
from casa_sched.simulator.forecast import EpochSignals, Forecast
from casa_sched.simulator.kernel import queue_drops
from casa_sched.simulator.results import EpochResult

MAX_FUNCTIONS = 60
MAX_NODES = 8
ENVELOPE_LINES = 24  # supporting lines kept per node curve (fewer lines: still a lower bound)
ENVELOPE_STEP_CORES = 0.01
FloatArray = npt.NDArray[np.float64]


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


def envelope_lines(curve: PowerCurve, floor_w: float | None = None) -> tuple[FloatArray, FloatArray]:
    """Intercepts (W) and slopes (W/core) of lines below ``curve`` on ``[0, cores]`` whose maximum is
    its lower convex envelope (up to the shifted sampling error); ``floor_w`` replaces P(0) if lower."""
    h = ENVELOPE_STEP_CORES
    u = np.linspace(0.0, float(curve.cores), round(curve.cores / h) + 1)
    w = curve.power_w_array(u)
    if floor_w is not None:
        w[0] = min(w[0], floor_w)
    hull: list[int] = []  # lower convex hull (monotone chain)
    for i in range(u.size):
        while len(hull) >= 2:
            i0, i1 = hull[-2], hull[-1]
            if (w[i1] - w[i0]) * (u[i] - u[i0]) >= (w[i] - w[i0]) * (u[i1] - u[i0]):
                hull.pop()
            else:
                break
        hull.append(i)
    idx = np.asarray(hull)
    edges = np.arange(idx.size - 1)  # supporting lines are hull *edges* (chords would lie above)
    if edges.size > ENVELOPE_LINES:
        edges = np.unique(np.round(np.linspace(0, edges.size - 1, ENVELOPE_LINES)).astype(int))
    left, right = idx[edges], idx[edges + 1]
    slopes = (w[right] - w[left]) / (u[right] - u[left])
    intercepts = w[left] - slopes * u[left]
    second = np.abs(np.diff(w[1:] if floor_w is not None else w, 2)) / h**2  # |P''| on the grid
    margin = 1.1 * float(second.max(initial=0.0)) * h * h / 8.0 + 1e-9
    return intercepts - margin, slopes


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
    windows = max(1, round(forecast.minute_s / p.autoscale_interval_s))  # as the estimator
    cap_units = sum(free_units(snapshot.cluster, p))
    # per (function, level): SL and busy cores per minute
    options: list[tuple[int, int, float, FloatArray]] = []
    for f in active.tolist():
        total = float(forecast.totals[f])
        t = float(forecast.t_ave_s[f])
        i = od_rows[f]
        od_v = float(od.violations[i])
        options.append((f, 0, od_v / total, np.zeros(minutes)))  # busy × (1 − φ) ≥ 0
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
    coef = signals.ci_g_per_kwh * (1.0 + signals.cooling_factor) * forecast.minute_s / 3.6e6
    fixed_w = snapshot.cluster.storage_power_w + snapshot.cluster.network_power_w
    nodes = snapshot.cluster.nodes
    sleep_w = snapshot.cluster.sleep_power_w if snapshot.cluster.sleep_empty_nodes else None
    lines = [envelope_lines(n.curve, sleep_w) for n in nodes]
    with _quiet_stdout():
        h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", max(config.time_budget_s, 5.0))
    inf = highspy.kHighsInf
    n_opt, N = len(options), len(nodes)
    # columns: x (n_opt, binary) | U (minutes × N, [0, cores]) | y (minutes × N, node watts)
    n_cols = n_opt + 2 * minutes * N
    lower = np.zeros(n_cols)
    upper = np.ones(n_cols)
    cost = np.zeros(n_cols)
    U0, Y0 = n_opt, n_opt + minutes * N
    for m in range(minutes):
        upper[U0 + m * N : U0 + (m + 1) * N] = [float(n.cores) for n in nodes]
        upper[Y0 + m * N : Y0 + (m + 1) * N] = inf
        lower[Y0 + m * N : Y0 + (m + 1) * N] = -inf
        cost[Y0 + m * N : Y0 + (m + 1) * N] = coef[m]
    h.addVars(n_cols, lower, upper)
    h.changeColsCost(n_cols, np.arange(n_cols), cost)
    h.changeColsIntegrality(n_opt, np.arange(n_opt), np.array([highspy.HighsVarType.kInteger] * n_opt))
    # one level per function
    for f in active.tolist():
        idx = np.array([j for j, o in enumerate(options) if o[0] == f])
        h.addRow(1.0, 1.0, idx.size, idx, np.ones(idx.size))
    # SL_ave ≤ Cstr
    h.addRow(-inf, config.cstr * active.size, n_opt, np.arange(n_opt), np.array([o[2] for o in options]))
    # capacity in units
    h.addRow(-inf, float(cap_units), n_opt, np.arange(n_opt), np.array([float(o[1]) for o in options]))
    busy = np.array([o[3] for o in options])  # (n_opt, minutes)
    for m in range(minutes):
        us = U0 + m * N + np.arange(N)
        # Σ_n U_nm − Σ_o busy_om x_o = 0
        h.addRow(0.0, 0.0, N + n_opt, np.concatenate([us, np.arange(n_opt)]), np.concatenate([np.ones(N), -busy[:, m]]))
        for n, (icpt, slope) in enumerate(lines):
            for a_w, b_w in zip(icpt.tolist(), slope.tolist(), strict=True):  # y ≥ a + b·U
                h.addRow(a_w, inf, 2, np.array([Y0 + m * N + n, us[n]]), np.array([1.0, -b_w]))
    h.run()
    status = str(h.getModelStatus())
    if h.getModelStatus() == highspy.HighsModelStatus.kInfeasible:
        raise PlannerError(
            "MILP infeasible: no capacity levels meet Cstr within the cluster's units and cores "
            f"(Cstr {config.cstr}, {cap_units} units, {sum(n.cores for n in nodes)} cores)"
        )
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise PlannerError(f"MILP not solved to optimality within {max(config.time_budget_s, 5.0)} s: {status}")
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
