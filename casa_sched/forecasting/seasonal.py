"""Seasonal naive: the next epoch repeats the same minutes a week ago, else a day ago.

Serverless load follows the clock (Shahrad et al., ATC 2020, find strong daily and weekly
cycles in the Azure trace), so the same epoch one period back is a strong forecast once the
history holds that period: a week (10,080 min) when the history has a week before the epoch,
else a day (1,440 min). With less than a day of history (the 8-hour Azure sample) there is no
season to repeat, and the forecast is the ``forecast.seasonal_fallback`` forecaster's (default
``last``, the previous epoch), as that setting states.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from casa_sched._typing import FloatArray
from casa_sched.forecasting.base import MINUTES_PER_DAY, Forecaster, History

MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY


def seasonal_period_min(history: History) -> int | None:
    """The longest period (week, day) whose lag the history covers, minutes; None if neither."""
    for period in (MINUTES_PER_WEEK, MINUTES_PER_DAY):
        if history.n_minutes >= period:
            return period
    return None


def seasonal_lag(history: History, minutes: int, period: int) -> FloatArray:
    """Minutes ``n - period .. n - period + minutes - 1`` of the history (n = its length)."""
    lo = history.n_minutes - period
    out = np.zeros((history.n_functions, minutes))
    take = min(minutes, history.n_minutes - lo)
    out[:, :take] = history.counts[:, lo : lo + take]
    return out


@dataclass(frozen=True)
class SeasonalNaive:
    fallback: Forecaster
    name: str = "seasonal"

    def predict(self, history: History, minutes: int) -> FloatArray:
        period = seasonal_period_min(history)
        if period is None:
            return self.fallback.predict(history, minutes)
        return seasonal_lag(history, minutes, period)
