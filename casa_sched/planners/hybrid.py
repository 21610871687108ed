"""Hybrid: GOLGI-style overcommitted and non-overcommitted instances (CASA's baseline [13]).

GOLGI (S. Li et al., SoCC 2023) keeps two kinds of instance per function: non-overcommitted
ones with the requested resources and overcommitted ones sized ``0.3 × requested + 0.7 ×
actually used``; it routes to overcommitted instances while the function meets its SLO and to
non-overcommitted ones otherwise, and adjusts each overcommitted instance's concurrency limit
(start 4; −1 when its violation ratio exceeds 5 %, +1 below 3 %). Per-epoch translation here:

- a function that met its SLO last epoch (violation ratio ≤ Cstr) gets overcommitted capacity:
  ``0.3 · peak + 0.7 · mean`` concurrent requests (its forecast), grown by ``4 / limit`` as its
  concurrency limit falls; a function that did not (or has no history) gets non-overcommitted
  capacity for its peak;
- instances are one unit each (our smallest container), placed first-fit in node order, as
  GOLGI places new instances.

Stated deviations: the Mondrian-forest request router is not modelled (requests of a function
share its containers FIFO), and since our simulator's service time does not grow with
contention, overcommitting only trades capacity against queueing, not against slowdown; CASA
describes [13] as mixing containers and VMs, which GOLGI itself does not.
"""

from __future__ import annotations

import math

import numpy as np

from casa_sched.plan import Plan
from casa_sched.planners.base import ClusterSnapshot, PlannerConfig, register
from casa_sched.planners.common import free_units, peak_concurrency, to_plan
from casa_sched.simulator.forecast import EpochSignals, Forecast
from casa_sched.simulator.results import EpochResult

START_LIMIT = 4
RAISE_BELOW, LOWER_ABOVE = 0.03, 0.05


def adjust_limit(limit: int, violation_rate: float, max_limit: int) -> int:
    """GOLGI's vertical scaling rule: −1 above 5 % violations, +1 below 3 %, within 1..max_limit."""
    if violation_rate > LOWER_ABOVE:
        return max(1, limit - 1)
    if violation_rate < RAISE_BELOW:
        return min(max_limit, limit + 1)
    return limit


@register("hybrid")
class HybridPlanner:
    name = "hybrid"

    def __init__(self) -> None:
        self.limit: dict[str, int] = {}
        self.safe: dict[str, bool] = {}
        self.cstr = 0.05

    def observe(self, result: EpochResult) -> None:
        for f, stats in result.functions.items():
            rate = stats.violation_rate
            self.limit[f] = adjust_limit(self.limit.get(f, START_LIMIT), rate, 20)
            self.safe[f] = rate <= self.cstr

    def plan(self, snapshot: ClusterSnapshot, forecast: Forecast, signals: EpochSignals, config: PlannerConfig) -> Plan:
        self.cstr = config.cstr
        p = snapshot.params
        peak = peak_concurrency(forecast)
        mean = forecast.counts.mean(axis=1) * forecast.t_ave_s / forecast.minute_s
        room = free_units(snapshot.cluster, p)
        layout: dict[str, list[tuple[int, int]]] = {}
        for f in np.argsort(-peak, kind="stable").tolist():
            if forecast.totals[f] <= 0:
                continue
            fid = forecast.function_ids[f]
            if self.safe.get(fid, False):
                want = (0.3 * peak[f] + 0.7 * mean[f]) * START_LIMIT / self.limit.get(fid, START_LIMIT)
            else:
                want = peak[f]
            for _ in range(max(1, math.ceil(want / p.slots_per_unit - 1e-9))):
                n = next((i for i, r in enumerate(room) if r >= 1), None)
                if n is None:
                    break
                room[n] -= 1
                layout.setdefault(fid, []).append((n, 1))
        return to_plan(forecast.epoch, snapshot.cluster, layout, snapshot.previous)
