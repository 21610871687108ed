"""Hybrid: GOLGI-style overcommitted and non-overcommitted instances (CASA's baseline [13]).

Source: S. Li et al., "Golgi: Performance-Aware, Resource-Efficient Function Scheduling for
Serverless Computing", SoCC 2023. GOLGI keeps two
kinds of instance per function: non-overcommitted ones with the requested resources and
overcommitted ones reserving ``0.3 × requested + 0.7 × actually used``; while the function meets
its SLO (a "safe" flag from its measured tail latency) requests go to overcommitted instances,
otherwise to non-overcommitted ones; each overcommitted instance lowers its concurrency limit
by 1 when its violation ratio exceeds 5 % and raises it by 1 below 3 %, starting at 4. New
instances are placed first-fit.

Per-epoch translation (what is faithful):

- the safe flag per function is last epoch's simulated violation ratio ≤ Cstr (observe());
  a function with no history is not yet known to be safe and gets non-overcommitted capacity;
- non-overcommitted capacity holds the forecast's peak-minute concurrency ``peak`` (the
  requested resources, one slot per concurrent request); overcommitted capacity is GOLGI's
  reservation rule applied to the function's instances: ``n = ceil(peak / c)`` instances of
  concurrency limit ``c`` reserve ``0.3 · c · n`` requested slots plus ``0.7 ×`` the slots
  actually used, the forecast's mean concurrency; capacity is rounded up to whole units (20
  slots), at least one per active function;
- the concurrency limit ``c`` of each function follows GOLGI's vertical rule between epochs on
  the function's simulated violation ratio (:func:`adjust_limit`), within 1..20 (one unit's slots);
- instances are size-1 containers placed first-fit in node order, after keeping the function's
  running containers where they are (GOLGI reuses warm instances); when the cluster cannot hold
  every function's wish, every active function keeps one instance first and the larger wishes
  are cut to a common cap (as :mod:`.binpack`).

Stated deviations: the Mondrian-forest request router is not modelled (requests of a function
share its containers FIFO). Our simulator's service time does not grow with contention, so an
overcommitted instance never slows its requests: overcommitment here only trades reserved
capacity against queueing, which favours Hybrid (its real cost, interference slowdown, is
free), and the concurrency limit, whose purpose in GOLGI is to bound that slowdown, can only
change how the reservation rounds (``c · ceil(peak / c)``), which rarely moves a whole unit.
CASA describes [13] as mixing containers and VMs, which GOLGI itself does not.
"""

from __future__ import annotations

import math

import numpy as np

from casa_sched.contract.forecast import EpochSignals, Forecast
from casa_sched.contract.plan import Plan
from casa_sched.contract.results import EpochResult
from casa_sched.contract.snapshot import ClusterSnapshot, PlannerConfig
from casa_sched.planners._common import fair_caps, free_units, mean_concurrency, peak_concurrency, to_plan
from casa_sched.planners.base import PlannerBase

START_LIMIT = 4  # GOLGI's initial max concurrency of an overcommitted instance
RAISE_BELOW, LOWER_ABOVE = 0.03, 0.05  # GOLGI's violation-ratio thresholds
REQUESTED_SHARE, USED_SHARE = 0.3, 0.7  # overcommitted reservation = 0.3 requested + 0.7 used


def adjust_limit(limit: int, violation_rate: float, max_limit: int) -> int:
    """GOLGI's vertical scaling rule: −1 above 5 % violations, +1 below 3 %, within 1..max_limit."""
    if violation_rate > LOWER_ABOVE:
        return max(1, limit - 1)
    if violation_rate < RAISE_BELOW:
        return min(max_limit, limit + 1)
    return limit


def overcommitted_slots(peak: float, mean: float, limit: int) -> float:
    """Slots reserved by ``ceil(peak / limit)`` overcommitted instances of concurrency ``limit``:
    ``0.3 · limit · ceil(peak / limit) + 0.7 · mean`` (requested for the peak, used on average)."""
    if peak <= 0:
        return 0.0
    instances = math.ceil(peak / limit - 1e-9)
    return REQUESTED_SHARE * limit * instances + USED_SHARE * mean


class HybridPlanner(PlannerBase):
    """GOLGI's two instance kinds and vertical concurrency rule, per epoch."""

    name = "hybrid"

    def __init__(self, config: PlannerConfig) -> None:
        super().__init__(config)
        self.limit: dict[str, int] = {}
        self.safe: dict[str, bool] = {}
        self.max_limit: int | None = None  # one unit's slots, from the snapshot plan() saw (none before)

    def observe(self, result: EpochResult) -> None:
        for f, stats in result.functions.items():
            if stats.requests == 0:
                continue  # no evidence either way: keep the flag and the limit
            rate = stats.violation_rate
            limit = self.limit.get(f, START_LIMIT)
            self.limit[f] = adjust_limit(limit, rate, self.max_limit if self.max_limit is not None else limit + 1)
            self.safe[f] = rate <= self.config.cstr

    def plan(self, snapshot: ClusterSnapshot, forecast: Forecast, signals: EpochSignals) -> Plan:
        p = snapshot.params
        self.max_limit = p.slots_per_unit
        peak = peak_concurrency(forecast)
        mean = mean_concurrency(forecast)
        totals = forecast.totals  # sums the counts: once, not per function
        active = [f for f in np.argsort(-peak, kind="stable").tolist() if totals[f] > 0]
        wanted: list[int] = []
        for f in active:
            fid = forecast.function_ids[f]
            if self.safe.get(fid, False):
                slots = overcommitted_slots(float(peak[f]), float(mean[f]), self.limit.get(fid, START_LIMIT))
            else:
                slots = float(peak[f])
            wanted.append(max(1, math.ceil(slots / p.slots_per_unit - 1e-9)))
        room = free_units(snapshot.cluster, p)
        caps = fair_caps(wanted, sum(room))
        index = {name: i for i, name in enumerate(snapshot.cluster.node_names)}
        layout: dict[str, list[tuple[int, int]]] = {}
        todo: list[tuple[str, int]] = []
        for f, cap in zip(active, caps, strict=True):
            fid = forecast.function_ids[f]
            units = cap
            running = snapshot.previous.containers_of(fid) if snapshot.previous else ()
            for c in running:  # warm instances stay where they run (one unit each)
                n = index.get(c.node)
                if units == 0 or n is None or room[n] < 1:
                    continue
                room[n] -= 1
                units -= 1
                layout.setdefault(fid, []).append((n, 1))
            todo.append((fid, units))
        for fid, units in todo:  # new instances first-fit
            for _ in range(units):
                n = next((i for i, r in enumerate(room) if r >= 1), None)
                if n is None:
                    break
                room[n] -= 1
                layout.setdefault(fid, []).append((n, 1))
        return to_plan(self.name, snapshot, forecast, signals, layout)
