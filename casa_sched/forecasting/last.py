"""Last value: the next epoch repeats the previous one, minute by minute.

The live loop's default forecaster and ``casa simulate --forecast
last``: no parameters, no training, and the per-minute shape of the last epoch carries over
(timer-triggered functions, most of the Azure sample, repeat exactly). An empty history
forecasts zero everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from casa_sched._typing import FloatArray
from casa_sched.forecasting.base import History, repeat_last


@dataclass(frozen=True)
class LastValue:
    name: str = "last"

    def predict(self, history: History, minutes: int) -> FloatArray:
        return repeat_last(history, minutes)
