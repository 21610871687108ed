"""What a planner is given besides the forecast: the cluster snapshot and the shared knobs.

Part of the planner contract (paper §V: the planner sees the cluster, the previous epoch's plan
D_{e-1}, the forecast and the signals; §VI.A for the knobs).
"""

from __future__ import annotations

from dataclasses import dataclass

from casa_sched.contract._defaults import setting_default
from casa_sched.contract.cluster import ClusterSpec, SimParams
from casa_sched.contract.plan import Plan
from casa_sched.models.accounting import NO_WATER, WaterFactors
from casa_sched.settings import CasaSettings, PlannerSettings, SLOSettings


@dataclass(frozen=True)
class ClusterSnapshot:
    """The cluster as the planner sees it: nodes and power models, model parameters, D_{e-1}."""

    cluster: ClusterSpec
    params: SimParams
    previous: Plan | None = None
    water: WaterFactors = NO_WATER


def site_water(settings: CasaSettings) -> WaterFactors:
    """The site's water factors (eqs. 4-5's water terms) from ``settings.accounting``."""
    acc = settings.accounting
    return WaterFactors(acc.water_l_per_cooling_kwh, acc.water_ci_g_per_l, acc.water_price_usd_per_l)


@dataclass(frozen=True)
class PlannerConfig:
    """Knobs shared by all policies (paper §V, §VI.A); defaults are the settings' (``slo`` and
    ``planner`` sections), read from the field definitions, not restated."""

    cstr: float = setting_default(SLOSettings, "cstr")  # SLO constraint on SL_ave
    max_drop_share: float = setting_default(SLOSettings, "max_drop_share")  # CASA: bound on requests dropped
    k: int = setting_default(PlannerSettings, "k")  # failed local searches before a function is blacklisted
    gen: int = setting_default(PlannerSettings, "gen")  # iteration ceiling
    time_budget_s: float = setting_default(PlannerSettings, "time_budget_s")  # wall-clock budget per epoch
    seed: int = setting_default(PlannerSettings, "seed")

    @classmethod
    def from_settings(cls, settings: CasaSettings) -> PlannerConfig:
        p = settings.planner
        return cls(
            cstr=settings.slo.cstr,
            max_drop_share=settings.slo.max_drop_share,
            k=p.k,
            gen=p.gen,
            time_budget_s=p.time_budget_s,
            seed=p.seed,
        )
