"""Pure physical and service models of CASA §III: power, cooling, accounting, SLO, cold start."""

from casa_sched.models.accounting import (
    Accounting,
    WaterFactors,
    account_hours,
    energy_by_hour_j,
)
from casa_sched.models.coldstart import cold_start_s, finish_time_s
from casa_sched.models.cooling import CoolingProfile, cooling_power_w, it_power_w
from casa_sched.models.power import (
    DEFAULT_NODE_CURVE,
    FitReport,
    PowerCurve,
    PowerModelError,
    default_node_fit,
    fit_power_curve,
)
from casa_sched.models.slo import deadline_s, sl_ave, sl_ave_of_rates, violation_rate

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
    "cooling_power_w",
    "deadline_s",
    "default_node_fit",
    "energy_by_hour_j",
    "finish_time_s",
    "fit_power_curve",
    "it_power_w",
    "sl_ave",
    "sl_ave_of_rates",
    "violation_rate",
]
