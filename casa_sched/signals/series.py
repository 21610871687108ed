"""Hourly signal series: carbon intensity (g/kWh) or price ($/kWh), one value per UTC hour.

Pure values with explicit time zones: timestamps are hour starts in UTC, naive datetimes are
refused. Missing hours are never silently zero: loaders fill them by a stated rule and count
them (:attr:`HourlySeries.filled_hours`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
HOUR = timedelta(hours=1)


class SignalError(ValueError):
    """A signal that cannot be loaded or used; the message names the source and the problem."""


def _utc_hour(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise SignalError(f"naive datetime {t.isoformat()}: give a time zone (UTC or the site's)")
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True, eq=False)
class HourlySeries:
    """``values[i]`` holds for the UTC hour starting at ``start_utc + i`` hours.

    ``unit`` is ``"g/kWh"`` (carbon intensity) or ``"$/kWh"`` (price). ``filled_hours`` counts
    hours that were missing in the source and filled by ``fill_rule``.
    """

    start_utc: datetime
    values: FloatArray
    unit: str
    source: str = ""
    filled_hours: int = 0
    fill_rule: str = "none"
    filled_mask: npt.NDArray[np.bool_] | None = None  # which hours were filled, when known

    def __post_init__(self) -> None:
        if self.start_utc.tzinfo is None or self.start_utc.utcoffset() != timedelta(0):
            raise SignalError("start_utc must be a UTC datetime")
        if self.start_utc != _utc_hour(self.start_utc):
            raise SignalError("start_utc must be an hour start")
        vals = np.asarray(self.values, dtype=np.float64)
        if vals.ndim != 1 or vals.size == 0:
            raise SignalError(f"{self.source or 'series'}: needs at least one hourly value")
        if not np.all(np.isfinite(vals)):
            raise SignalError(f"{self.source or 'series'}: values must be finite {self.unit}")
        if self.unit != "$/kWh" and np.any(vals < 0):  # wholesale prices can go negative; CI cannot
            raise SignalError(f"{self.source or 'series'}: values must be >= 0 {self.unit}")
        vals.setflags(write=False)
        object.__setattr__(self, "values", vals)

    @property
    def hours(self) -> int:
        return int(self.values.size)

    @property
    def end_utc(self) -> datetime:
        return self.start_utc + self.hours * HOUR

    def value_at(self, t: datetime) -> float:
        """The value for the hour containing ``t`` (any time zone)."""
        i = int((_utc_hour(t) - self.start_utc) / HOUR)
        if not 0 <= i < self.hours:
            raise SignalError(
                f"{self.source or 'series'}: {t.isoformat()} is outside {self.start_utc.isoformat()}..{self.end_utc.isoformat()}"
            )
        return float(self.values[i])

    def window(self, start: datetime, hours: int) -> FloatArray:
        """``hours`` values from the hour containing ``start``; raises if the series does not cover them."""
        first = int((_utc_hour(start) - self.start_utc) / HOUR)
        if first < 0 or first + hours > self.hours:
            raise SignalError(
                f"{self.source or 'series'} covers {self.start_utc.isoformat()}..{self.end_utc.isoformat()}, "
                f"not {hours} h from {start.isoformat()}"
            )
        return np.asarray(self.values[first : first + hours], dtype=np.float64)

    def sub(self, start: datetime, hours: int) -> HourlySeries:
        """The part of this series covering ``hours`` hours from ``start``, with its own fill count."""
        values = self.window(start, hours)
        first = int((_utc_hour(start) - self.start_utc) / HOUR)
        mask = None if self.filled_mask is None else self.filled_mask[first : first + hours]
        filled = int(mask.sum()) if mask is not None else self.filled_hours
        return HourlySeries(
            _utc_hour(start), values, self.unit, source=self.source, filled_hours=filled,
            fill_rule=self.fill_rule if filled else "none", filled_mask=mask,
        )  # fmt: skip

    def daily_profile(self, tz: tzinfo) -> tuple[float, ...]:
        """Mean value per local hour of day 0..23 in ``tz``."""
        local_hours = np.array([(self.start_utc + i * HOUR).astimezone(tz).hour for i in range(self.hours)])
        out = []
        for h in range(24):
            sel = self.values[local_hours == h]
            if sel.size == 0:
                raise SignalError(f"{self.source or 'series'}: no value at local hour {h}")
            out.append(float(sel.mean()))
        return tuple(out)


def fill_missing(values: FloatArray, max_interpolate_h: int = 3) -> tuple[FloatArray, int]:
    """Fill NaN hours: linear interpolation across gaps of at most ``max_interpolate_h`` hours,
    else the same hour of the previous day (or, at the start, of the next day).

    Returns the filled array and how many hours were filled. Raises if nothing can fill a gap
    (e.g. the whole series is missing).
    """
    v = np.asarray(values, dtype=np.float64).copy()
    missing = np.isnan(v)
    n_missing = int(missing.sum())
    if n_missing == 0:
        return v, 0
    if n_missing == v.size:
        raise SignalError("every hour is missing")
    idx = np.arange(v.size)
    known = ~missing
    # gap lengths: run-length of consecutive NaNs, bounded by known values on both sides
    i = 0
    while i < v.size:
        if not missing[i]:
            i += 1
            continue
        j = i
        while j < v.size and missing[j]:
            j += 1
        bounded = i > 0 and j < v.size
        if bounded and j - i <= max_interpolate_h:
            v[i:j] = np.interp(idx[i:j], [i - 1, j], [v[i - 1], v[j]])
        i = j
    for k in np.flatnonzero(np.isnan(v)):  # long gaps and open ends: same hour one day away
        for shift in (-24, 24, -48, 48, -168, 168):
            src = k + shift
            if 0 <= src < v.size and known[src]:
                v[k] = v[src]
                break
    if np.isnan(v).any():
        raise SignalError(f"{int(np.isnan(v).sum())} missing hours have no value within a week to fill them")
    return v, n_missing
