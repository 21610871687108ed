"""The planner interface (paper §V) and the registry policies are found by name.

A planner sees only a :class:`~casa_sched.contract.snapshot.ClusterSnapshot`, a
:class:`~casa_sched.contract.forecast.Forecast` and
:class:`~casa_sched.contract.forecast.EpochSignals`, and returns a
:class:`~casa_sched.contract.plan.Plan` (all in :mod:`casa_sched.contract`). It never imports Kubernetes, Prometheus or HTTP code (checked by
the import contract), so the same planner runs in the live autoscaler and in ``casa simulate``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Protocol

from casa_sched.contract.forecast import EpochSignals, Forecast
from casa_sched.contract.plan import Plan
from casa_sched.contract.results import EpochResult
from casa_sched.contract.snapshot import ClusterSnapshot, PlannerConfig


class PlannerError(ValueError):
    """A planner that cannot be built or run with the given inputs."""


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
