"""A scikit-learn regressor of the next epoch's total on lags and time-of-day features.

One model for all functions, refitted each epoch on the history (so it stays a pure function
of it): a sample per function and past epoch t, with features ``log1p`` of the totals of the
``forecast.regressor_lags`` epochs before t, ``log1p`` of the function's mean epoch total so
far, the share of active minutes in epoch t-1, and the time of day of t's start as sin/cos of
the day's angle; the target is ``log1p`` of t's total (log space, so the few heavy functions do
not drown the many light ones). ``forecast.regressor_model``: ``gradient_boosting`` (default:
histogram gradient boosting on one thread with a fixed seed and no early stopping, so a run is
reproducible; about 0.1 s per fit on 500 functions) or ``ridge`` (linear in log space, ms). A predicted
total under half a request is zero. The predicted total is spread over the epoch's
minutes in the last epoch's per-minute shape (uniformly when the last epoch was empty).

Fallbacks, stated: with fewer than ``regressor_lags + 2`` whole epochs of history there is too
little to fit, and the forecast is the last value; a function with no request in its whole
history is forecast at zero (before ``create``'s rule for unobserved functions, ``unseen``). scikit-learn is
imported only when a model is fitted (``pip install 'casa-sched[forecast]'``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from casa_sched._typing import FloatArray
from casa_sched.forecasting.base import (
    MINUTES_PER_DAY,
    ForecastError,
    History,
    repeat_last,
)


def _features(totals: FloatArray, active_share: FloatArray, t: int, lags: int, minute_of_day: int) -> FloatArray:
    """Features of target epoch ``t`` for every function, ``[functions x (lags + 4)]``."""
    f = totals.shape[0]
    lagged = np.log1p(totals[:, t - lags : t][:, ::-1])  # lag 1 first
    mean = np.log1p(totals[:, :t].mean(axis=1, keepdims=True))
    angle = 2.0 * np.pi * minute_of_day / MINUTES_PER_DAY
    clock = np.tile([np.sin(angle), np.cos(angle)], (f, 1))
    return np.hstack([lagged, mean, active_share[:, t - 1 : t], clock])


@dataclass(frozen=True)
class LagRegressor:
    lags: int = 4
    max_train_epochs: int = 96
    seed: int = 0
    model: str = "gradient_boosting"
    name: str = "regressor"

    def __post_init__(self) -> None:
        if self.model not in ("ridge", "gradient_boosting"):
            raise ForecastError(f"forecast.regressor_model must be ridge or gradient_boosting, got {self.model!r}")
        if self.lags < 1 or self.max_train_epochs < 2:
            raise ForecastError(
                f"forecast.regressor_lags must be >= 1 and regressor_max_train_epochs >= 2, got "
                f"{self.lags} and {self.max_train_epochs}"
            )

    def _fit_predict(self, x: FloatArray, y: FloatArray, x_next: FloatArray) -> FloatArray:
        try:
            from sklearn.ensemble import HistGradientBoostingRegressor
            from sklearn.linear_model import Ridge
            from threadpoolctl import threadpool_limits
        except ImportError as exc:  # pragma: no cover - the forecast extra is part of dev
            raise ForecastError(
                "the regressor forecaster needs scikit-learn: pip install 'casa-sched[forecast]'"
            ) from exc
        if self.model == "ridge":
            return np.asarray(Ridge(alpha=1.0).fit(x, y).predict(x_next), dtype=np.float64)
        # one thread: OpenMP's default of every core costs far more than it gains on small fits
        with threadpool_limits(limits=1):
            gb = HistGradientBoostingRegressor(max_iter=50, early_stopping=False, random_state=self.seed)
            return np.asarray(gb.fit(x, y).predict(x_next), dtype=np.float64)

    def predict(self, history: History, minutes: int) -> FloatArray:
        past = history.epochs(minutes)  # [functions x epochs x minutes]
        n = past.shape[1]
        if n < self.lags + 2:
            return repeat_last(history, minutes)
        totals = past.sum(axis=2)
        active_share = (past > 0).mean(axis=2)
        seen = totals.sum(axis=1) > 0
        if not seen.any():
            return np.zeros((history.n_functions, minutes))
        first_epoch_minute = history.n_minutes - n * minutes  # history column of epoch 0's start
        xs, ys = [], []
        for t in range(max(self.lags, n - self.max_train_epochs), n):
            mod = history.minute_of_day(first_epoch_minute + t * minutes)
            xs.append(_features(totals, active_share, t, self.lags, mod)[seen])
            ys.append(np.log1p(totals[seen, t]))
        x_next = _features(np.hstack([totals, np.zeros((totals.shape[0], 1))]),
                           np.hstack([active_share, np.zeros((totals.shape[0], 1))]), n, self.lags,
                           history.minute_of_day(history.n_minutes))  # fmt: skip
        total = np.zeros(history.n_functions)
        predicted = np.expm1(self._fit_predict(np.vstack(xs), np.concatenate(ys), x_next[seen]))
        # requests come whole: under half a request per epoch is the log model's floor, not load
        total[seen] = np.where(predicted < 0.5, 0.0, predicted)
        last = past[:, -1, :]
        last_total = last.sum(axis=1, keepdims=True)
        shape = np.full((history.n_functions, minutes), 1.0 / minutes)
        np.divide(last, last_total, out=shape, where=last_total > 0)
        return np.asarray(shape * total[:, None], dtype=np.float64)
