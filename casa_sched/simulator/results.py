"""Simulator outputs over all simulated epochs (frozen); per-epoch results are in the contract."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from casa_sched.contract.results import EpochResult
from casa_sched.models.accounting import ZERO, Accounting
from casa_sched.models.slo import request_violation_rate


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
    def request_violation_rate(self) -> float:
        """Violated over all requests of all epochs (request-weighted, beside SL_ave)."""
        return request_violation_rate(self.dropped, self.requests)

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
            "request_violation_rate": self.request_violation_rate,
            "load": self.load,
            "requests": self.requests,
            "dropped": self.dropped,
            "cold_starts": sum(e.cold_starts for e in self.epochs),
            "in_flight_at_end": self.in_flight_at_end,
        }
