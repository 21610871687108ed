"""The provider interface every signal source implements, and the file-backed provider."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from casa_sched.signals.series import HourlySeries


class SignalProvider(Protocol):
    """Hourly values (carbon g/kWh or price $/kWh) for ``hours`` hours from ``start``."""

    def series(self, start: datetime, hours: int) -> HourlySeries: ...


@dataclass(frozen=True)
class FileProvider:
    """A loaded series (CSV file) answering windows inside the period it covers."""

    loaded: HourlySeries
    name: str = "csv"

    def series(self, start: datetime, hours: int) -> HourlySeries:
        return self.loaded.sub(start, hours)
