"""What a planner is given besides the forecast: the cluster snapshot and the shared knobs.

Part of the planner contract (paper §V: the planner sees the cluster, the previous epoch's plan
D_{e-1}, the forecast and the signals; §VI.A for the knobs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from casa_sched.contract.cluster import ClusterSpec, SimParams
from casa_sched.contract.plan import Plan
from casa_sched.models.accounting import WaterFactors
from casa_sched.settings import CasaSettings


@dataclass(frozen=True)
class ClusterSnapshot:
    """The cluster as the planner sees it: nodes and power models, model parameters, D_{e-1}."""

    cluster: ClusterSpec
    params: SimParams
    previous: Plan | None = None
    water: WaterFactors = field(default_factory=lambda: WaterFactors(0.0, 0.0, 0.0))


@dataclass(frozen=True)
class PlannerConfig:
    """Knobs shared by all policies (paper §V, §VI.A)."""

    cstr: float = 0.05  # SLO constraint on SL_ave
    k: int = 5  # failed local searches before a function is blacklisted
    gen: int = 2000  # iteration ceiling
    time_budget_s: float = 2.0  # wall-clock budget per epoch
    seed: int = 0

    @classmethod
    def from_settings(cls, settings: CasaSettings) -> PlannerConfig:
        p = settings.planner
        return cls(cstr=settings.slo.cstr, k=p.k, gen=p.gen, time_budget_s=p.time_budget_s, seed=p.seed)
