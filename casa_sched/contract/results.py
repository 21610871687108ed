"""What an epoch turned out to be, per function and in total (frozen).

Part of the planner contract: the simulator produces these today, the autoscaler will produce
them from Prometheus, and learning policies read them in ``observe``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from casa_sched.models.accounting import Accounting
from casa_sched.models.slo import request_violation_rate, sl_ave


@dataclass(frozen=True)
class FunctionStats:
    """One function in one epoch: requests, served (started in time), dropped (violations)."""

    requests: int
    served: int
    dropped: int
    wait_s_total: float = 0.0
    waited: int = 0

    @property
    def violation_rate(self) -> float:
        """Eq. (7): ``V / N``."""
        return self.dropped / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class EpochResult:
    epoch: int
    requests: int
    served: int
    dropped: int
    slo_violation_rate: float  # SL_ave over the epoch's active functions
    functions: dict[str, FunctionStats]
    accounting: Accounting
    load: float
    cold_starts: int
    on_demand_starts: int
    autoscale_grows: int
    containers: int
    planned_containers: int

    @property
    def request_violation_rate(self) -> float:
        """Violated over all the epoch's requests (request-weighted, beside SL_ave)."""
        return request_violation_rate(self.dropped, self.requests)

    @property
    def carbon_g(self) -> float:
        return self.accounting.carbon_g

    @property
    def energy_kwh(self) -> float:
        return self.accounting.energy_kwh

    @property
    def cost_usd(self) -> float:
        return self.accounting.cost_usd

    def summary(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "requests": self.requests,
            "dropped": self.dropped,
            "slo_violation_rate": self.slo_violation_rate,
            "request_violation_rate": self.request_violation_rate,
            "carbon_g": self.carbon_g,
            "energy_kwh": self.energy_kwh,
            "cost_usd": self.cost_usd,
            "water_l": self.accounting.water_l,
            "load": self.load,
            "cold_starts": self.cold_starts,
            "on_demand_starts": self.on_demand_starts,
            "autoscale_grows": self.autoscale_grows,
            "containers": self.containers,
            "active_functions": len(self.functions),
        }


def epoch_result(
    epoch: int,
    stats: dict[str, FunctionStats],
    accounting: Accounting,
    load: float,
    *,
    cold_starts: int,
    on_demand_starts: int,
    autoscale_grows: int,
    containers: int,
    planned_containers: int,
) -> EpochResult:
    """An :class:`EpochResult` from per-function stats: totals and SL_ave (eq. 7) over the
    functions active in the epoch (those with requests)."""
    active = {f: s for f, s in stats.items() if s.requests > 0}
    return EpochResult(
        epoch=epoch,
        requests=sum(s.requests for s in active.values()),
        served=sum(s.served for s in active.values()),
        dropped=sum(s.dropped for s in active.values()),
        slo_violation_rate=sl_ave([s.dropped for s in active.values()], [s.requests for s in active.values()]),
        functions=active,
        accounting=accounting,
        load=load,
        cold_starts=cold_starts,
        on_demand_starts=on_demand_starts,
        autoscale_grows=autoscale_grows,
        containers=containers,
        planned_containers=planned_containers,
    )
