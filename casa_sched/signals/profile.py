"""24-hour profiles: a value per local hour of day, placed on any UTC window in the site's zone.

The embedded defaults let the main job run with no data download:

- ``TAMPA_SUMMER_CI_G_PER_KWH``: mean direct carbon intensity of Tampa Electric (US-FLA-TEC,
  the paper's site) per local hour (America/New_York), June-August 2021-2024: the hour-of-day
  means of ``ci_direct_gco2eq_per_kwh`` over the 8,832 rows of
  ``carbon/derived_US-FLA-TEC_JunJulAug_2021-2024_localtime.csv`` grouped by its ``local_hour``
  column (Electricity Maps data via nesl/CarbonX; pandas ``groupby().mean()``, so the 17 empty
  cells are skipped, not filled), rounded to 0.1 g/kWh. Overall mean 410.9 g/kWh; lowest 371 g/kWh
  at 09:00, highest 438 g/kWh at 20:00 (as the data's publisher states: lowest ~09-11 h, highest ~20 h).
- ``SUMMER_PRICE_USD_PER_KWH``: Florida has no wholesale market (vertically integrated
  utilities, no ISO/LMP), so the price profile is ERCOT's (hot-summer, gas-heavy; HB_HUBAVG
  day-ahead): hour-of-day means of ``Price (USD/MWh)`` of
  ``prices/US-TEX-ERCO_electricity_prices_{2021..2024}.csv``, grouped by the hour of the file's
  ``Datetime (Local)`` (America/Chicago) over the rows whose local month is June-August (8,832
  hours), rounded to 0.01 $/MWh, divided by 1000. Mean 75.3 $/MWh, but the median is only 34: the
  mean carries the scarcity-priced afternoons of 2022 and 2023 (per-summer means 41/100/130/30
  $/MWh for 2021..2024), hence the evening peak of 191 $/MWh at 17:00. The hours are applied to
  the site's local hours as they are (a Central-time hour read as an Eastern one: an
  *assumption* of the same daily shape, not a conversion).

``tests/signals/test_profile.py`` recomputes both from the real series and checks them (it skips,
saying why, when the real data is absent); nothing here reads it at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

import numpy as np

from casa_sched.signals.series import (
    CI_UNIT,
    HOUR,
    PRICE_UNIT,
    UNITS,
    HourlySeries,
    SignalError,
    checked_unit,
    utc_hour,
)

# fmt: off
TAMPA_SUMMER_CI_G_PER_KWH: tuple[float, ...] = (
    425.5, 427.7, 429.8, 431.4, 431.9, 430.9, 429.2, 414.2, 381.8, 371.1, 374.5, 377.1,
    379.6, 382.9, 386.5, 391.9, 399.7, 408.3, 420.0, 432.5, 437.8, 437.0, 433.1, 427.9,
)
SUMMER_PRICE_USD_PER_KWH: tuple[float, ...] = tuple(p / 1000.0 for p in (
    32.79, 30.21, 27.79, 26.21, 25.74, 26.65, 28.62, 29.65, 29.13, 29.23, 32.02, 37.58,
    46.08, 64.28, 98.03, 147.81, 188.85, 191.17, 175.33, 190.61, 172.78, 93.10, 45.87, 36.59,
))
# fmt: on
TAMPA_TZ = "America/New_York"


@dataclass(frozen=True)
class DailyProfile:
    """A value per local hour 0..23 of ``tz``; ``unit`` as in :class:`HourlySeries`.

    A provider: :meth:`series` places the profile on any UTC window; each UTC hour takes the
    value of its local hour of day (so the mapping follows DST: on a spring-forward day local
    02:00 never occurs, on a fall-back day local 01:00 occurs twice).
    """

    values: tuple[float, ...]
    tz: str
    unit: str
    source: str = "profile"

    def __post_init__(self) -> None:
        if len(self.values) != 24:
            raise SignalError(f"{self.source}: a daily profile needs 24 values, got {len(self.values)}")
        if self.unit not in UNITS:
            raise SignalError(f"{self.source}: unit must be one of {UNITS}, got {self.unit!r}")
        if any(not np.isfinite(v) for v in self.values):
            raise SignalError(f"{self.source}: profile values must be finite {self.unit}")
        if self.unit == CI_UNIT and any(v < 0 for v in self.values):
            raise SignalError(f"{self.source}: carbon intensity must be >= 0 {self.unit}")
        try:
            ZoneInfo(self.tz)
        except (KeyError, ValueError) as exc:
            raise SignalError(f"unknown time zone {self.tz!r}") from exc

    @property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.tz)

    def series(self, start: datetime, hours: int) -> HourlySeries:
        """The profile on ``hours`` UTC hours from the hour containing ``start`` (local hours follow DST)."""
        if hours < 1:
            raise SignalError(f"a window needs at least 1 hour, got {hours}")
        first = utc_hour(start)
        zone = self.zone
        vals = np.array([self.values[(first + i * HOUR).astimezone(zone).hour] for i in range(hours)])
        return HourlySeries(first, vals, self.unit, source=self.source)

    def ci_g_per_kwh(self, start: datetime, hours: int) -> HourlySeries:
        """:meth:`series` for a carbon profile; raises if this is a price profile."""
        return checked_unit(self.series(start, hours), CI_UNIT)

    def price_usd_per_kwh(self, start: datetime, hours: int) -> HourlySeries:
        """:meth:`series` for a price profile; raises if this is a carbon profile."""
        return checked_unit(self.series(start, hours), PRICE_UNIT)

    @classmethod
    def of(cls, values: Sequence[float], tz: str, unit: str, source: str = "profile") -> DailyProfile:
        return cls(tuple(float(v) for v in values), tz, unit, source)

    @classmethod
    def from_series(cls, series: HourlySeries, tz: str) -> DailyProfile:
        """The mean per local hour of ``tz`` of a series (see :meth:`HourlySeries.daily_profile`)."""
        return cls(series.daily_profile(ZoneInfo(tz)), tz, series.unit, f"hour-of-day means of {series.source}")


def tampa_summer_carbon(tz: str = TAMPA_TZ) -> DailyProfile:
    """The embedded Tampa summer carbon profile (g/kWh) on the local hours of ``tz``."""
    return DailyProfile(TAMPA_SUMMER_CI_G_PER_KWH, tz, CI_UNIT, "embedded Tampa (US-FLA-TEC) summer CI profile")


def summer_price(tz: str = TAMPA_TZ) -> DailyProfile:
    """The embedded summer price profile ($/kWh, ERCOT hour-of-day means) on the local hours of ``tz``."""
    return DailyProfile(SUMMER_PRICE_USD_PER_KWH, tz, PRICE_UNIT, "embedded summer price profile (ERCOT hour-of-day)")
