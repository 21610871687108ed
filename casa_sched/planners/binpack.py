"""Bin-packing: size every function for its forecast peak, pack first-fit decreasing onto the fewest nodes.

Capacity per function: ``ceil(1.2 · peak-minute concurrency / 20)`` units, i.e. 20 % headroom
over the busiest minute's mean concurrency for Poisson bursts within the minute (at the sample's
typical 1-20 concurrent requests per function, one standard deviation of a Poisson count is
22-100 % of the mean, so 20 % covers the minute-scale mean, not every second — the simulator's
in-epoch growth takes the rest). Functions with no forecast requests get none (scale to zero).

When the units wanted exceed the cluster's, plain FFD would place the big functions and leave
the small ones with nothing at all — a straw man under the unweighted SL_ave. Instead every
function keeps at least one unit (in descending peak, while units last) and the larger ones are
cut to a common cap (max-min fair water-filling), then packed. Containers are split at
``max_container_size`` and placed largest first on the first node (in node order) with room;
first-fit decreasing uses at most 11/9·OPT + 6/9 nodes (Dósa 2007), and with this many small
items it is in practice optimal in node count (tested on hand-checked instances).
"""

from __future__ import annotations

from casa_sched.contract.forecast import EpochSignals, Forecast
from casa_sched.contract.plan import Plan
from casa_sched.contract.snapshot import ClusterSnapshot
from casa_sched.planners._common import PEAK_HEADROOM, binpack_layout, to_plan
from casa_sched.planners.base import PlannerBase

HEADROOM = PEAK_HEADROOM


class BinPackPlanner(PlannerBase):
    """Peak-sized capacity, FFD placement."""

    name = "binpack"

    def plan(self, snapshot: ClusterSnapshot, forecast: Forecast, signals: EpochSignals) -> Plan:
        return to_plan(self.name, snapshot, forecast, signals, binpack_layout(snapshot, forecast, HEADROOM))
