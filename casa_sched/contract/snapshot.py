"""What a planner is given besides the forecast: the cluster snapshot and the shared knobs.

Part of the planner contract (paper §V: the planner sees the cluster, the previous epoch's plan
D_{e-1}, the forecast and the signals; §VI.A for the knobs).
"""

from __future__ import annotations

from dataclasses import dataclass

from casa_sched.contract._defaults import setting_default
from casa_sched.contract.cluster import ClusterSpec, SimParams
from casa_sched.contract.forecast import Forecast
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
    time_budget_s: float | None = setting_default(PlannerSettings, "time_budget_s")  # per epoch; None: derived
    seed: int = setting_default(PlannerSettings, "seed")

    def budget_s(self, snapshot: ClusterSnapshot, forecast: Forecast) -> float:
        """This epoch's wall-clock budget: ``time_budget_s`` when set, else :func:`derived_budget_s`."""
        if self.time_budget_s is not None:
            return self.time_budget_s
        functions = int((forecast.counts.sum(axis=1) > 0).sum())
        return derived_budget_s(len(snapshot.cluster.nodes), functions, forecast.minutes * forecast.minute_s)

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


#: The derived budget (``planner.time_budget_s`` unset): seconds per 32 nodes and per 1000 functions
#: forecast to run, its floor, and its ceiling as a share of the epoch (README, "The planning budget").
BUDGET_S_PER_32_NODES = 2.0
BUDGET_S_PER_1000_FUNCTIONS = 2.0
BUDGET_FLOOR_S = 2.0
BUDGET_EPOCH_SHARE = 0.10


def derived_budget_s(nodes: int, functions: int, epoch_s: float) -> float:
    """``min(10 % of the epoch, max(2 s, 2 s · nodes / 32 + 2 s · functions / 1000))``.

    A search step's neighbourhoods and the estimator's per-node arrays grow with the nodes, the
    safe start and the carbon optimizer's sweep over functions with the functions: on the 2-core
    reference machine 2 s lets the search end by ``planner.gen`` or its blacklists at N = 32 with
    ~300 active functions, so the budget keeps that per node and per function. The ceiling keeps
    planning a small share of the epoch it plans; the floor is the paper-sized default."""
    size_s = BUDGET_S_PER_32_NODES * nodes / 32.0 + BUDGET_S_PER_1000_FUNCTIONS * functions / 1000.0
    return min(BUDGET_EPOCH_SHARE * epoch_s, max(BUDGET_FLOOR_S, size_s))
