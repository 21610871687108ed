"""The planner interface (paper §V): what every policy is given, returns and may optionally do.

A planner is built with the shared :class:`~casa_sched.contract.snapshot.PlannerConfig` and then,
each epoch, sees only a :class:`~casa_sched.contract.snapshot.ClusterSnapshot`, a
:class:`~casa_sched.contract.forecast.Forecast` and
:class:`~casa_sched.contract.forecast.EpochSignals`, and returns a
:class:`~casa_sched.contract.plan.Plan` stamped with its provenance (see
:func:`casa_sched.planners._common.stamped_plan`). It never imports Kubernetes, Prometheus or
HTTP code (checked by the import contract), so the same planner runs in the live autoscaler and
in ``casa simulate``. Policies are registered by name in :mod:`casa_sched.planners._policies`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from casa_sched.contract.forecast import EpochSignals, Forecast
from casa_sched.contract.plan import Plan
from casa_sched.contract.results import EpochResult
from casa_sched.contract.snapshot import ClusterSnapshot, PlannerConfig


class PlannerError(ValueError):
    """A planner that cannot be built or run with the given inputs."""


class PlanTrace(Protocol):
    """What a policy reports about its last planning run (CASA's search trace, for example)."""

    @property
    def time_bound(self) -> bool:
        """The wall clock, not the iteration ceiling ``gen``, ended the search: the plan (and a
        run's numbers) then depend on machine speed and load."""
        ...


Episode = Callable[["Planner"], None]
"""A training episode: plans and simulates held-out epochs, calling ``plan`` and ``observe``."""


class Planner(Protocol):
    """One scheduling and autoscaling policy."""

    name: str
    # True if the policy's plans decide node power states (``Plan.sleeping_nodes``); otherwise,
    # with power management on, the simulator gives it the cluster-autoscaler-style node manager
    # its deployment would have (:mod:`casa_sched.simulator.engine`).
    plans_node_power: bool

    def plan(self, snapshot: ClusterSnapshot, forecast: Forecast, signals: EpochSignals) -> Plan:
        """The plan for ``forecast.epoch``."""
        ...

    def observe(self, result: EpochResult) -> None:
        """What the epoch it planned turned out to be (learning policies use it)."""
        ...

    def train(self, episodes: Sequence[Episode]) -> None:
        """Learn from held-out episodes before the evaluated epochs (learning policies only)."""
        ...

    @property
    def last_trace(self) -> PlanTrace | None:
        """The last planning run's trace, or None for a policy that keeps none."""
        ...


class PlannerBase:
    """Defaults for the optional parts of :class:`Planner`; a policy overrides what it uses.

    ``config`` is given once, at construction, so ``observe`` sees the same knobs ``plan`` did.
    """

    name = "planner"
    plans_node_power = False

    def __init__(self, config: PlannerConfig) -> None:
        self.config = config

    def observe(self, result: EpochResult) -> None:
        """Default: the policy is stateless between epochs, so outcomes are ignored."""

    def train(self, episodes: Sequence[Episode]) -> None:
        """Default: nothing to learn, so the episodes are not run."""

    @property
    def last_trace(self) -> PlanTrace | None:
        """Default: no trace (the policy's planning time does not depend on the wall clock)."""
        return None


PlannerFactory = Callable[[PlannerConfig], Planner]
"""Builds a fresh planner of one policy with the shared knobs."""
