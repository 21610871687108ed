"""The planner interface (DESIGN §2, §4) and the registry policies are found by name.

A planner sees only a :class:`ClusterSnapshot`, a :class:`~casa_sched.simulator.forecast.Forecast`
and :class:`~casa_sched.simulator.forecast.EpochSignals`, and returns a
:class:`~casa_sched.plan.Plan`. It never imports Kubernetes, Prometheus or HTTP code (checked by
the import contract), so the same planner runs in the live autoscaler and in ``casa simulate``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from casa_sched.models.accounting import WaterFactors
from casa_sched.plan import Plan
from casa_sched.settings import CasaSettings
from casa_sched.simulator.forecast import EpochSignals, Forecast
from casa_sched.simulator.inputs import ClusterSpec, SimParams
from casa_sched.simulator.results import EpochResult


class PlannerError(ValueError):
    """A planner that cannot be built or run with the given inputs."""


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


class Planner(Protocol):
    """One scheduling and autoscaling policy."""

    name: str

    def plan(self, snapshot: ClusterSnapshot, forecast: Forecast, signals: EpochSignals, config: PlannerConfig) -> Plan:
        """The plan for ``forecast.epoch``."""
        ...

    def observe(self, result: EpochResult) -> None:
        """What the epoch it planned turned out to be (learning policies use it; others ignore it)."""
        ...


_REGISTRY: dict[str, Callable[[], Planner]] = {}


def register(name: str) -> Callable[[Callable[[], Planner]], Callable[[], Planner]]:
    """Class or factory decorator: make a policy available as ``name``."""

    def deco(factory: Callable[[], Planner]) -> Callable[[], Planner]:
        if name in _REGISTRY:
            raise PlannerError(f"policy {name!r} registered twice")
        _REGISTRY[name] = factory
        return factory

    return deco


def create(name: str) -> Planner:
    """A fresh planner of policy ``name``; raises :class:`PlannerError` listing the known ones."""
    if name not in _REGISTRY:
        policy_names()  # one module per policy: importing them registers them
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise PlannerError(f"unknown policy {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None
    return factory()


def policy_names() -> tuple[str, ...]:
    """Every registered policy (imports each policy module of this package once)."""
    package = importlib.import_module("casa_sched.planners")
    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _NOT_POLICIES and not info.name.startswith("_"):
            importlib.import_module(f"casa_sched.planners.{info.name}")
    return tuple(sorted(_REGISTRY))


_NOT_POLICIES = frozenset({"base", "common"})
