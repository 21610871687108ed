"""Planning policies behind one interface, found by name (casa, score, hybrid, rl, binpack, milp).

What a planner is given and returns lives in :mod:`casa_sched.contract`.
"""

from casa_sched.planners.base import Planner, PlannerError, create, policy_names, register

__all__ = ["Planner", "PlannerError", "create", "policy_names", "register"]
