"""Every policy, registered by name (one explicit list, so the import arrows show what exists).

Add a policy by writing its module and one line here. Out-of-tree policies can be added with
:func:`register`.
"""

from __future__ import annotations

from casa_sched.contract.snapshot import PlannerConfig
from casa_sched.planners.base import Planner, PlannerError, PlannerFactory
from casa_sched.planners.binpack import BinPackPlanner
from casa_sched.planners.casa import CasaPlanner
from casa_sched.planners.hybrid import HybridPlanner
from casa_sched.planners.milp import MilpPlanner
from casa_sched.planners.rl import RLPlanner
from casa_sched.planners.score import ScorePlanner
from casa_sched.registry import Registry

POLICIES: Registry[PlannerFactory] = Registry("policy", PlannerError)
POLICIES.add("casa", CasaPlanner)
POLICIES.add("score", lambda config: ScorePlanner(config, "least", "score"))
POLICIES.add("score-mostallocated", lambda config: ScorePlanner(config, "most", "score-mostallocated"))
POLICIES.add("hybrid", HybridPlanner)
POLICIES.add("rl", RLPlanner)
POLICIES.add("binpack", BinPackPlanner)
POLICIES.add("milp", MilpPlanner)


def register(name: str, factory: PlannerFactory) -> PlannerFactory:
    """Make an out-of-tree policy available as ``name`` (a name already taken is refused)."""
    return POLICIES.add(name, factory)


def create(name: str, config: PlannerConfig) -> Planner:
    """A fresh planner of policy ``name``; raises :class:`PlannerError` listing the known ones."""
    return POLICIES.get(name)(config)


def policy_names() -> tuple[str, ...]:
    """Every registered policy, sorted."""
    return POLICIES.names()
