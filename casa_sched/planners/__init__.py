"""Planning policies behind one interface, found by name (casa, score, hybrid, rl, binpack, milp).

What a planner is given and returns lives in :mod:`casa_sched.contract`; the registration list
is :mod:`casa_sched.planners._policies`.
"""

from casa_sched.planners._policies import create, policy_names, register
from casa_sched.planners.base import Planner, PlannerBase, PlannerError

__all__ = ["Planner", "PlannerBase", "PlannerError", "create", "policy_names", "register"]
