"""What every forecaster takes and returns, and the registry that finds one by name.

The CASA paper (§IV) assumes the framework "receives a forecast of the workload information"
at the start of each epoch: the function list F_e and the request intensities R_e. A forecaster
here turns the per-minute request history of each function into that forecast, refined to the
per-minute *shape* within the next epoch (the trace is bursty inside an epoch, and the estimator
plans on minutes), returned as a :class:`~casa_sched.contract.forecast.Forecast`.

Everything in this package is pure: a forecaster is a function of a frozen :class:`History`
(numbers only, no clock, no I/O). The simulator's runner builds the history from a trace, the
autoscaler from Prometheus through ``casa_sched.metricsources``.

Functions without a request in the history: while the history is shorter than
``forecast.unseen_warmup_epochs`` they are *unobserved*, and every forecaster built by name
forecasts them at ``forecast.unseen_floor_per_min`` requests a minute (``unseen``); after that
they are idle and forecast at zero: the planner gives them no containers and the in-epoch
autoscaler (paper §V.D) scales them from zero when requests arrive. The forecasters themselves
(``predict``) forecast zero for an all-zero row. The live path holds a function whose series is
*absent* instead (its containers are kept), because absent is not zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from casa_sched._typing import FloatArray
from casa_sched.contract.forecast import Forecast

MINUTES_PER_DAY = 1440


class ForecastError(ValueError):
    """A history or a setting a forecaster cannot use; the message names it and the valid range."""


@dataclass(frozen=True)
class History:
    """Requests per function per minute up to the start of the epoch to forecast.

    ``counts[f, m]`` requests of function ``f`` in minute ``m``; the last column is the minute
    just before the epoch. ``start_minute_of_day`` is the local minute of the day (0..1439) of
    column 0, which places the history on the clock for time-of-day features and seasonal lags.
    ``t_ave_s`` (s) and ``memory_mb`` (MB) per function pass through to the forecast.
    """

    function_ids: tuple[str, ...]
    counts: FloatArray
    start_minute_of_day: int
    t_ave_s: FloatArray
    memory_mb: FloatArray

    def __post_init__(self) -> None:
        f = len(self.function_ids)
        counts = np.asarray(self.counts, dtype=np.float64)
        if counts.ndim != 2 or counts.shape[0] != f:
            raise ForecastError(f"history counts must be [functions={f} x minutes], got shape {counts.shape}")
        if counts.size and (not np.all(np.isfinite(counts)) or float(counts.min()) < 0.0):
            raise ForecastError("history counts must be finite and >= 0 requests per minute")
        if not 0 <= self.start_minute_of_day < MINUTES_PER_DAY:
            raise ForecastError(f"start_minute_of_day must be in 0..1439, got {self.start_minute_of_day}")
        if np.shape(self.t_ave_s) != (f,) or np.shape(self.memory_mb) != (f,):
            raise ForecastError("t_ave_s and memory_mb need one value per function")
        object.__setattr__(self, "counts", counts)

    @property
    def n_functions(self) -> int:
        return len(self.function_ids)

    @property
    def n_minutes(self) -> int:
        return int(self.counts.shape[1])

    def epochs(self, epoch_min: int) -> FloatArray:
        """The last whole epochs of the history, ``[functions x epochs x epoch_min]``, oldest first.

        Epochs are aligned on the end of the history (the next epoch's start); a partial epoch
        at the beginning is dropped.
        """
        n = self.n_minutes // epoch_min
        tail = self.counts[:, self.n_minutes - n * epoch_min :]
        return tail.reshape(self.n_functions, n, epoch_min)

    def minute_of_day(self, offset_min: int) -> int:
        """Local minute of the day of history column ``offset_min`` (may be past the end)."""
        return (self.start_minute_of_day + offset_min) % MINUTES_PER_DAY


class Forecaster(Protocol):
    """Next-epoch requests per function per minute from the history (pure)."""

    @property
    def name(self) -> str:
        """The forecaster's registry name."""
        ...

    def predict(self, history: History, minutes: int) -> FloatArray:
        """Expected requests ``[functions x minutes]`` in the ``minutes`` minutes after the history."""
        ...


def forecast(forecaster: Forecaster, history: History, epoch: int, start_s: float, minutes: int) -> Forecast:
    """The planner's :class:`Forecast` of ``epoch`` from ``forecaster`` on ``history``."""
    if minutes < 1:
        raise ForecastError(f"an epoch must be >= 1 minute, got {minutes}")
    counts = np.asarray(forecaster.predict(history, minutes), dtype=np.float64)
    if counts.shape != (history.n_functions, minutes):
        raise ForecastError(
            f"forecaster {forecaster.name!r} returned shape {counts.shape}, expected ({history.n_functions}, {minutes})"
        )
    counts = np.clip(np.nan_to_num(counts, nan=0.0, posinf=0.0), 0.0, None)
    return Forecast(
        epoch=epoch,
        start_s=start_s,
        function_ids=history.function_ids,
        counts=counts,
        t_ave_s=np.asarray(history.t_ave_s, dtype=np.float64),
        memory_mb=np.asarray(history.memory_mb, dtype=np.float64),
    )


def repeat_last(history: History, minutes: int) -> FloatArray:
    """The last ``minutes`` minutes of the history, repeated: the last-value forecast.

    Shorter histories are zero-padded at the front (an empty history forecasts zero).
    """
    out = np.zeros((history.n_functions, minutes))
    take = min(minutes, history.n_minutes)
    if take:
        out[:, minutes - take :] = history.counts[:, history.n_minutes - take :]
    return out
