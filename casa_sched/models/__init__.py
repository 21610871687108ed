"""Pure physical and service models of CASA §III: power, cooling, accounting, SLO, cold start."""

from casa_sched.models.accounting import (
    Accounting,
    WaterFactors,
    account_hours,
)
from casa_sched.models.coldstart import cold_start_s, finish_time_s, t_cold_s
from casa_sched.models.cooling import CoolingProfile, it_power_w
from casa_sched.models.power import (
    DEFAULT_NODE_CURVE,
    FitReport,
    PowerCurve,
    PowerModelError,
    default_node_fit,
    fit_power_curve,
    node_power_w,
)
from casa_sched.models.slo import (
    deadline_s,
    request_violation_rate,
    sl_ave,
    t_deadline_s,
    violation_rate,
    wait_budget_s,
)

__all__ = [
    "DEFAULT_NODE_CURVE",
    "Accounting",
    "CoolingProfile",
    "FitReport",
    "PowerCurve",
    "PowerModelError",
    "WaterFactors",
    "account_hours",
    "cold_start_s",
    "deadline_s",
    "default_node_fit",
    "finish_time_s",
    "fit_power_curve",
    "it_power_w",
    "node_power_w",
    "request_violation_rate",
    "sl_ave",
    "t_cold_s",
    "t_deadline_s",
    "violation_rate",
    "wait_budget_s",
]
