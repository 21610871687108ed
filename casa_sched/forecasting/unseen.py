"""The stated rule for functions the history has not observed long enough to call idle.

A function with no request in a history shorter than ``forecast.unseen_warmup_epochs`` epochs
(default 4, an hour of 15-minute epochs) is *unobserved*, not idle: most of the Azure sample's
functions are timers and queues that fire every 15 to 60 minutes, so a short silence says
little. Every forecaster built by name (:func:`casa_sched.forecasting.create`) forecasts such a
function at no less than ``forecast.unseen_floor_per_min`` requests in each minute of the epoch
(default 2). The floor is how the forecast tells the planner "unknown load": CASA then keeps or
places a warm container where its estimator predicts that a cold start would drop the first
requests (functions whose deadline, laxity · T_ave, is shorter than a cold start) and serves the
others on demand; the floor is small enough that it does not size containers. Once the history
holds ``unseen_warmup_epochs`` epochs, a function without a request in it is forecast by its
forecaster alone (zero for all of them: it scales from zero when requests come).

Measured on the Azure sample's 80-function mix at R = 20x, N = 4 (docs/results/forecast-backtest.md):
the first epoch, which no forecaster has history for, costs CASA an SL_ave of 3.3-4.95 % under
a zero forecast against 0.3-0.7 % under the oracle; a floor of 2 per minute lowers it to
1.0-2.4 % on five seeded mixes (0.5, 1 and 4 per minute did worse on average; 8 per minute warms
so many containers at once that their image pulls share each node's link and start late).
``forecast.unseen_floor_per_min = 0`` turns the rule off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from casa_sched._typing import FloatArray
from casa_sched.forecasting.base import Forecaster, ForecastError, History


@dataclass(frozen=True)
class UnseenFloor:
    """``inner``'s forecast, raised to ``floor_per_min`` for functions the history has not seen
    while the history is shorter than ``warmup_epochs`` epochs."""

    inner: Forecaster
    floor_per_min: float = 2.0
    warmup_epochs: int = 4

    def __post_init__(self) -> None:
        if not (self.floor_per_min >= 0.0 and np.isfinite(self.floor_per_min)):
            raise ForecastError(f"forecast.unseen_floor_per_min must be >= 0 requests/min, got {self.floor_per_min}")
        if self.warmup_epochs < 0:
            raise ForecastError(f"forecast.unseen_warmup_epochs must be >= 0, got {self.warmup_epochs}")

    @property
    def name(self) -> str:
        return self.inner.name

    def unobserved(self, history: History, minutes: int) -> np.ndarray:
        """Per function: no request in a history shorter than the warm-up (all False after it)."""
        if self.floor_per_min <= 0.0 or history.n_minutes >= self.warmup_epochs * minutes:
            return np.zeros(history.n_functions, dtype=bool)
        return np.asarray(history.counts.sum(axis=1) == 0)

    def predict(self, history: History, minutes: int) -> FloatArray:
        out = np.asarray(self.inner.predict(history, minutes), dtype=np.float64)
        low = self.unobserved(history, minutes)
        if low.any():
            out = out.copy()
            out[low] = np.maximum(out[low], self.floor_per_min)
        return out
