"""Hourly signal series: carbon intensity CI_h (g/kWh) or price EP_h ($/kWh), one value per UTC hour.

Pure values with explicit time zones (paper eqs. 4-5): timestamps are hour
starts in UTC, naive datetimes are refused. Missing hours are never silently zero: whoever
builds a series fills them by a stated :class:`FillRule` and counts them
(:attr:`HourlySeries.filled_hours`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal

import numpy as np

from casa_sched._typing import BoolArray, FloatArray

HOUR = timedelta(hours=1)

CI_UNIT = "g/kWh"  # gCO2eq per kWh consumed
PRICE_UNIT = "$/kWh"  # US dollars per kWh
UNITS = (CI_UNIT, PRICE_UNIT)


class SignalError(ValueError):
    """A signal that cannot be loaded or used; the message names the source and the problem."""


class GapTooLongError(SignalError):
    """Missing hours that the fill rule may not fill; ``first_index`` and ``hours`` locate the gap."""

    def __init__(self, message: str, first_index: int, hours: int) -> None:
        super().__init__(message)
        self.first_index = first_index
        self.hours = hours


def utc_hour(t: datetime) -> datetime:
    """The UTC start of the hour containing ``t``; naive datetimes are refused."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise SignalError(f"naive datetime {t.isoformat()}: give a time zone (UTC or the site's)")
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def checked_unit(series: HourlySeries, unit: str) -> HourlySeries:
    """``series`` if it holds ``unit``, else a :class:`SignalError` naming both units."""
    if series.unit != unit:
        raise SignalError(f"{series.source or 'series'} gives {series.unit}, not {unit}")
    return series


@dataclass(frozen=True)
class FillRule:
    """How missing hours are filled; :meth:`describe` is recorded on every series it fills.

    - gaps of at most ``max_interpolate_h`` hours between two known hours: linear interpolation
      in time (the values stay between the two neighbours);
    - longer gaps and gaps at either end: ``long_gaps="same_hour_nearby_day"`` copies the same
      hour of the previous day (else the next day, else up to ``max_days_away`` days away, nearest
      first, earlier first); ``long_gaps="error"`` refuses them.
    """

    max_interpolate_h: int = 3
    long_gaps: Literal["same_hour_nearby_day", "error"] = "same_hour_nearby_day"
    max_days_away: int = 7

    def __post_init__(self) -> None:
        if self.max_interpolate_h < 0:
            raise SignalError(f"max_interpolate_h must be >= 0 h, got {self.max_interpolate_h}")
        if not 1 <= self.max_days_away <= 366:
            raise SignalError(f"max_days_away must be in 1..366 days, got {self.max_days_away}")

    def describe(self) -> str:
        short = f"linear interpolation for gaps <= {self.max_interpolate_h} h"
        if self.long_gaps == "error":
            return f"{short}; longer gaps refused"
        return f"{short}, else the same hour of the previous day (or the nearest day within {self.max_days_away} days)"


DEFAULT_FILL_RULE = FillRule()


def fill_missing(values: FloatArray, rule: FillRule = DEFAULT_FILL_RULE) -> tuple[FloatArray, int]:
    """Fill NaN hours of ``values`` by ``rule``; returns the filled copy and how many hours were filled.

    Raises :class:`GapTooLongError` for a gap the rule may not fill (the whole series missing, a
    long gap under ``long_gaps="error"``, or no known value at the same hour within
    ``max_days_away`` days).
    """
    v = np.asarray(values, dtype=np.float64).copy()
    missing = np.isnan(v)
    n_missing = int(missing.sum())
    if n_missing == 0:
        return v, 0
    if n_missing == v.size:
        raise GapTooLongError(f"every hour is missing ({v.size} h)", 0, int(v.size))
    known = ~missing
    idx = np.arange(v.size)
    i = 0
    while i < v.size:  # one run of consecutive missing hours [i, j) at a time
        if not missing[i]:
            i += 1
            continue
        j = i
        while j < v.size and missing[j]:
            j += 1
        bounded = i > 0 and j < v.size
        if bounded and j - i <= rule.max_interpolate_h:
            v[i:j] = np.interp(idx[i:j], [i - 1, j], [v[i - 1], v[j]])
        elif rule.long_gaps == "error":
            raise GapTooLongError(
                f"gap of {j - i} h at hours {i}..{j - 1} is longer than {rule.max_interpolate_h} h "
                "or at an end, and the fill rule refuses such gaps",
                i,
                j - i,
            )
        i = j
    shifts = [s for d in range(1, rule.max_days_away + 1) for s in (-24 * d, 24 * d)]
    for k in np.flatnonzero(np.isnan(v)):  # long gaps and open ends: same hour on a nearby day
        for shift in shifts:
            src = k + shift
            if 0 <= src < v.size and known[src]:
                v[k] = v[src]
                break
        else:
            a, b = int(k), int(k)
            while a > 0 and missing[a - 1]:
                a -= 1
            while b < v.size and missing[b]:
                b += 1
            raise GapTooLongError(
                f"gap of {b - a} h at hours {a}..{b - 1}: hour {k} has no known value at the same hour "
                f"within {rule.max_days_away} days",
                a,
                b - a,
            )
    return v, n_missing


@dataclass(frozen=True, eq=False)
class HourlySeries:
    """``values[i]`` holds for the UTC hour starting at ``start_utc + i`` hours.

    ``unit`` is :data:`CI_UNIT` (``"g/kWh"``, carbon intensity, >= 0) or :data:`PRICE_UNIT`
    (``"$/kWh"``, price; wholesale prices can be negative). Read the values through the
    unit-named views :attr:`ci_g_per_kwh` / :attr:`price_usd_per_kwh`, which check the unit.
    ``filled_hours`` counts hours missing in the source and filled by ``fill_rule``;
    ``filled_mask`` says which, when known.
    """

    start_utc: datetime
    values: FloatArray
    unit: str
    source: str = ""
    filled_hours: int = 0
    fill_rule: str = "none"
    filled_mask: BoolArray | None = None

    def __post_init__(self) -> None:
        name = self.source or "series"
        if self.start_utc.tzinfo is None or self.start_utc.utcoffset() != timedelta(0):
            raise SignalError(f"{name}: start_utc must be a UTC datetime, got {self.start_utc.isoformat()}")
        if self.start_utc != utc_hour(self.start_utc):
            raise SignalError(f"{name}: start_utc must be an hour start, got {self.start_utc.isoformat()}")
        if self.unit not in UNITS:
            raise SignalError(f"{name}: unit must be one of {UNITS}, got {self.unit!r}")
        vals = np.array(self.values, dtype=np.float64)  # a private copy: the series is frozen
        if vals.ndim != 1 or vals.size == 0:
            raise SignalError(f"{name}: needs at least one hourly value")
        if not np.all(np.isfinite(vals)):
            raise SignalError(f"{name}: values must be finite {self.unit} (fill missing hours first)")
        if self.unit == CI_UNIT and np.any(vals < 0):
            raise SignalError(f"{name}: carbon intensity must be >= 0 {self.unit}, got {float(vals.min())}")
        if not 0 <= self.filled_hours <= vals.size:
            raise SignalError(f"{name}: filled_hours must be in 0..{vals.size}, got {self.filled_hours}")
        vals.setflags(write=False)
        object.__setattr__(self, "values", vals)
        if self.filled_mask is not None:
            mask = np.array(self.filled_mask, dtype=np.bool_)
            if mask.shape != vals.shape or int(mask.sum()) != self.filled_hours:
                raise SignalError(f"{name}: filled_mask must have one flag per hour and {self.filled_hours} set")
            mask.setflags(write=False)
            object.__setattr__(self, "filled_mask", mask)

    # -- unit-named views -------------------------------------------------------------------

    @property
    def ci_g_per_kwh(self) -> FloatArray:
        """The values as carbon intensity in g/kWh; raises if this is a price series."""
        return self._as(CI_UNIT)

    @property
    def price_usd_per_kwh(self) -> FloatArray:
        """The values as prices in $/kWh; raises if this is a carbon series."""
        return self._as(PRICE_UNIT)

    def _as(self, unit: str) -> FloatArray:
        if self.unit != unit:
            raise SignalError(f"{self.source or 'series'} holds {self.unit}, not {unit}")
        return self.values

    # -- time axis --------------------------------------------------------------------------

    @property
    def hours(self) -> int:
        return int(self.values.size)

    @property
    def end_utc(self) -> datetime:
        """The end (exclusive) of the last hour."""
        return self.start_utc + self.hours * HOUR

    def timestamps_utc(self) -> list[datetime]:
        """The UTC hour starts, tz-aware, one per value."""
        return [self.start_utc + i * HOUR for i in range(self.hours)]

    def _index(self, t: datetime) -> int:
        return int((utc_hour(t) - self.start_utc) / HOUR)

    def value_at(self, t: datetime) -> float:
        """The value for the hour containing ``t`` (any time zone; naive refused)."""
        i = self._index(t)
        if not 0 <= i < self.hours:
            raise SignalError(
                f"{self.source or 'series'}: {t.isoformat()} is outside "
                f"{self.start_utc.isoformat()}..{self.end_utc.isoformat()}"
            )
        return float(self.values[i])

    def window(self, start: datetime, hours: int) -> FloatArray:
        """``hours`` values from the hour containing ``start``; raises if the series does not cover them."""
        if hours < 1:
            raise SignalError(f"a window needs at least 1 hour, got {hours}")
        first = self._index(start)
        if first < 0 or first + hours > self.hours:
            raise SignalError(
                f"{self.source or 'series'} covers {self.start_utc.isoformat()}..{self.end_utc.isoformat()}, "
                f"not {hours} h from {start.isoformat()}"
            )
        return np.asarray(self.values[first : first + hours], dtype=np.float64)

    def sub(self, start: datetime, hours: int) -> HourlySeries:
        """The part covering ``hours`` hours from the hour containing ``start``, with its own fill count.

        Without a ``filled_mask`` the part keeps the whole series' count (an upper bound).
        """
        values = self.window(start, hours)
        first = self._index(start)
        mask = None if self.filled_mask is None else self.filled_mask[first : first + hours]
        filled = int(mask.sum()) if mask is not None else min(self.filled_hours, hours)
        return HourlySeries(
            utc_hour(start), values, self.unit, source=self.source, filled_hours=filled,
            fill_rule=self.fill_rule if filled else "none", filled_mask=mask,
        )  # fmt: skip

    def daily_profile(self, tz: tzinfo) -> tuple[float, ...]:
        """Mean value per local hour of day 0..23 in ``tz`` (a resampling to a 24-hour profile).

        Every local hour must occur at least once (a series of 24 h or more always qualifies,
        except across a spring-forward day whose missing hour is then taken from the rest).
        """
        local_hours = np.array([t.astimezone(tz).hour for t in self.timestamps_utc()])
        out = []
        for h in range(24):
            sel = self.values[local_hours == h]
            if sel.size == 0:
                raise SignalError(f"{self.source or 'series'}: no value at local hour {h} in {tz}")
            out.append(float(sel.mean()))
        return tuple(out)
