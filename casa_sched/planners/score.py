"""Score: Kubernetes' default scheduler placing Knative-KPA-sized replica sets (CASA's baseline [29]).

Replicas (Knative Pod Autoscaler, knative/serving pkg/autoscaler/scaling): the hard concurrency
limit (containerConcurrency) is one size-1 container's slots (20 requests on one 2-core unit),
so the target per pod is 0.7 × 20 = 14 and desired = ``ceil(concurrency / 14)``. Which
concurrency: KPA averages observed concurrency over its 60 s stable window and re-decides every
2 s, so over an epoch it follows the busiest minute; a static per-epoch plan must hold that
many pods all epoch, hence the forecast's per-minute peak ``max_m count_m · T_ave / 60`` (the
epoch mean would under-provision every burst and leave it to the simulator's reactive in-epoch
growth). Functions with no forecast requests get no pod (scale to zero), all others at least
one (KPA's min-scale while traffic flows). Measured alternative, not used: also leaving
intermittent functions (idle in some minute, which KPA would scale to zero in between) to
on-demand cold starts was worse at 20x on 4 nodes (SL_ave 0.23 → 0.33) because a 2.4 s image
pull misses the deadline of every short function.

Placement (kube-scheduler framework, default plugins and weights): pods one at a time in
creation order (every function's first replica in descending peak, then second replicas, …;
pods already running from the previous epoch stay put and only surplus ones are scaled down);
Filter = NodeResourcesFit (requests of 2 cores and 150 MB per pod must fit); Score =
1 × NodeResourcesFit(LeastAllocated, cpu and memory weight 1 each) + 1 × BalancedAllocation +
2 × PodTopologySpread (system default, maxSkew 3 per hostname; see :mod:`._kpa`), integer
arithmetic as in the scheduler, seeded random tie-break. A pod that fits nowhere stays pending
(its function then scales from zero in the simulator if cores free up). The CASA paper calls
its Score "improved" without saying how; ``score-mostallocated`` swaps in MostAllocated
(bin-packing scoring) as the sensitivity check. Within the epoch the simulator's in-place
autoscaler grows saturated pods for every policy alike (KPA's scale-up analogue).
"""

from __future__ import annotations

from casa_sched.contract.forecast import EpochSignals, Forecast
from casa_sched.contract.plan import Plan
from casa_sched.contract.snapshot import ClusterSnapshot, PlannerConfig
from casa_sched.planners._common import to_plan
from casa_sched.planners._kpa import kpa_score_layout
from casa_sched.planners.base import PlannerBase


class ScorePlanner(PlannerBase):
    """Default kube-scheduler scoring + KPA replica counts."""

    def __init__(self, config: PlannerConfig, strategy: str = "least", name: str = "score") -> None:
        super().__init__(config)
        self.strategy = strategy
        self.name = name

    def plan(self, snapshot: ClusterSnapshot, forecast: Forecast, signals: EpochSignals) -> Plan:
        layout = kpa_score_layout(snapshot, forecast, self.config.seed, self.strategy)
        assert layout is not None  # no deadline
        return to_plan(self.name, snapshot, forecast, signals, layout)
