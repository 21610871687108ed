"""Bin-packing: size every function for its forecast peak, pack first-fit decreasing onto the fewest nodes.

Capacity per function: ``ceil(1.2 · peak-minute concurrency / 20)`` units (20 % headroom for
within-minute bursts), split into containers of at most ``max_container_size`` units; functions
with no forecast requests get none (scale to zero). Containers are placed largest first on the
first node (in node order) with room; one that fits nowhere is left out.
"""

from __future__ import annotations

import numpy as np

from casa_sched.plan import Plan
from casa_sched.planners.base import ClusterSnapshot, PlannerConfig, register
from casa_sched.planners.common import free_units, peak_concurrency, split_units, to_plan, units_for
from casa_sched.simulator.forecast import EpochSignals, Forecast
from casa_sched.simulator.results import EpochResult

HEADROOM = 1.2


@register("binpack")
class BinPackPlanner:
    name = "binpack"

    def observe(self, result: EpochResult) -> None:
        """Stateless between epochs."""

    def plan(self, snapshot: ClusterSnapshot, forecast: Forecast, signals: EpochSignals, config: PlannerConfig) -> Plan:
        p = snapshot.params
        conc = peak_concurrency(forecast)
        items: list[tuple[int, int]] = []  # (size, function)
        for f in np.flatnonzero(forecast.active()).tolist():
            for size in split_units(units_for(float(conc[f]), p, HEADROOM), p):
                items.append((size, f))
        items.sort(key=lambda x: (-x[0], x[1]))
        room = free_units(snapshot.cluster, p)
        layout: dict[str, list[tuple[int, int]]] = {}
        for size, fn in items:
            for n, free in enumerate(room):
                if free >= size:
                    room[n] -= size
                    layout.setdefault(forecast.function_ids[fn], []).append((n, size))
                    break
        return to_plan(forecast.epoch, snapshot.cluster, layout, snapshot.previous)
