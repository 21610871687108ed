"""Simulator outputs: per function, per epoch and in total (frozen)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from casa_sched.models.accounting import ZERO, Accounting


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


@dataclass(frozen=True)
class SimulationResult:
    epochs: tuple[EpochResult, ...]
    accounting: Accounting = field(default=ZERO)
    in_flight_at_end: int = 0

    @classmethod
    def of(cls, epochs: tuple[EpochResult, ...], in_flight_at_end: int = 0) -> SimulationResult:
        total = ZERO
        for e in epochs:
            total = total + e.accounting
        return cls(epochs=epochs, accounting=total, in_flight_at_end=in_flight_at_end)

    @property
    def requests(self) -> int:
        return sum(e.requests for e in self.epochs)

    @property
    def dropped(self) -> int:
        return sum(e.dropped for e in self.epochs)

    @property
    def slo_violation_rate(self) -> float:
        """Mean of the per-epoch SL_ave (the paper reports the average over epochs)."""
        return sum(e.slo_violation_rate for e in self.epochs) / len(self.epochs) if self.epochs else 0.0

    @property
    def load(self) -> float:
        return sum(e.load for e in self.epochs) / len(self.epochs) if self.epochs else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "carbon_g": self.accounting.carbon_g,
            "energy_kwh": self.accounting.energy_kwh,
            "cost_usd": self.accounting.cost_usd,
            "water_l": self.accounting.water_l,
            "slo_violation_rate": self.slo_violation_rate,
            "load": self.load,
            "requests": self.requests,
            "dropped": self.dropped,
            "cold_starts": sum(e.cold_starts for e in self.epochs),
            "in_flight_at_end": self.in_flight_at_end,
        }
