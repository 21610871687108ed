"""Planning policies behind one interface, found by name (casa, score, hybrid, rl, binpack, milp)."""

from casa_sched.planners.base import (
    ClusterSnapshot,
    Planner,
    PlannerConfig,
    PlannerError,
    create,
    policy_names,
    register,
)

__all__ = ["ClusterSnapshot", "Planner", "PlannerConfig", "PlannerError", "create", "policy_names", "register"]
