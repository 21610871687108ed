"""EWMA: an exponentially weighted mean of past epochs, minute by minute within the epoch.

Minute m of the next epoch is ``Σ_k w_k · x[e-1-k, m]`` with ``w_k ∝ α (1-α)^k`` over the
epochs the history holds (normalised to sum to 1), so α = 1 is the last value and smaller α
averages bursts away while keeping the within-epoch shape of regular (timer) functions. Epochs
are aligned on the next epoch's start; an empty history forecasts zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from casa_sched._typing import FloatArray
from casa_sched.forecasting.base import ForecastError, History, repeat_last


@dataclass(frozen=True)
class Ewma:
    alpha: float = 0.5
    name: str = "ewma"

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha <= 1.0:
            raise ForecastError(f"forecast.ewma_alpha must be in (0, 1], got {self.alpha}")

    def predict(self, history: History, minutes: int) -> FloatArray:
        past = history.epochs(minutes)  # [functions x epochs x minutes], oldest first
        n = past.shape[1]
        if n == 0:
            return repeat_last(history, minutes)
        weights = self.alpha * (1.0 - self.alpha) ** np.arange(n)[::-1]  # newest epoch weighs alpha
        weights /= weights.sum()
        return np.asarray(np.einsum("fem,e->fm", past, weights), dtype=np.float64)
