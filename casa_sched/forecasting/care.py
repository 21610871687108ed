"""CaRE's persistent forecast with an anomaly fallback (two-model approach).

CaRE (carbon-, resource- and cost-aware placement) forecasts resource usage with a
*persistent forecast* — usage repeats itself periodically — and, "when the persistent forecast
accuracy drops below a threshold", enters an anomalous state in which a second model predicts
the load until the persistent forecast is accurate again.

Here, per function: the persistent forecast is the seasonal naive one (same epoch a week or a
day ago; the previous epoch while the history is shorter than a day, see ``seasonal``). Its
recent error is the mean symmetric absolute percentage error (sMAPE, 0..2) of its epoch totals
over the last ``forecast.care_window_epochs`` epochs of the history, each forecast from the
history before that epoch. While that error is above ``forecast.care_threshold`` the function
is anomalous and takes the ``forecast.care_fallback`` forecaster's prediction (default EWMA,
which rides out bursts); once the error falls back under the threshold, the persistent forecast
returns. The state is recomputed from the history each epoch, so the forecaster stays pure and
a restarted autoscaler resumes in the same state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from casa_sched._typing import FloatArray
from casa_sched.forecasting.base import Forecaster, ForecastError, History


def smape(predicted: FloatArray, actual: FloatArray) -> FloatArray:
    """Symmetric absolute percentage error elementwise, 0..2; 0 where both are 0."""
    den = (np.abs(predicted) + np.abs(actual)) / 2.0
    out = np.zeros(np.broadcast(predicted, actual).shape)
    np.divide(np.abs(predicted - actual), den, out=out, where=den > 0)
    return out


def truncated(history: History, minutes: int) -> History:
    """The first ``minutes`` minutes of the history."""
    return History(history.function_ids, history.counts[:, :minutes], history.start_minute_of_day,
                   history.t_ave_s, history.memory_mb)  # fmt: skip


@dataclass(frozen=True)
class PersistentWithAnomalyFallback:
    persistent: Forecaster
    fallback: Forecaster
    threshold: float = 0.5
    window_epochs: int = 2
    name: str = "care"

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 2.0:
            raise ForecastError(f"forecast.care_threshold is an sMAPE in (0, 2], got {self.threshold}")
        if self.window_epochs < 1:
            raise ForecastError(f"forecast.care_window_epochs must be >= 1, got {self.window_epochs}")

    def anomalous(self, history: History, minutes: int) -> npt.NDArray[np.bool_]:
        """Per function: is the persistent forecast's recent error above the threshold?"""
        errors = []
        for j in range(1, self.window_epochs + 1):
            end = history.n_minutes - (j - 1) * minutes  # the epoch [end - minutes, end) is the target
            if end - minutes < minutes:  # the persistent forecast needs one epoch before the target
                break
            before = truncated(history, end - minutes)
            predicted = self.persistent.predict(before, minutes).sum(axis=1)
            actual = history.counts[:, end - minutes : end].sum(axis=1)
            errors.append(smape(predicted, actual))
        if not errors:
            return np.zeros(history.n_functions, dtype=bool)
        return np.asarray(np.mean(errors, axis=0) > self.threshold)

    def predict(self, history: History, minutes: int) -> FloatArray:
        out = self.persistent.predict(history, minutes)
        bad = self.anomalous(history, minutes)
        if bad.any():
            out = out.copy()
            out[bad] = self.fallback.predict(history, minutes)[bad]
        return out
