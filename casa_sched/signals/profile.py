"""24-hour profiles: a value per local hour of day, placed on any UTC window in the site's zone.

The embedded defaults let the main job run with no data download:

- ``TAMPA_SUMMER_CI_G_PER_KWH``: mean direct carbon intensity of Tampa Electric (US-FLA-TEC,
  the paper's site) per local hour (America/New_York), June-August 2021-2024: the hour-of-day
  means of ``ci_direct_gco2eq_per_kwh`` over the 8,832 rows of
  ``carbon/derived_US-FLA-TEC_JunJulAug_2021-2024_localtime.csv`` (Electricity Maps data via
  nesl/CarbonX; 17 empty cells skipped). Overall mean 410.9 g/kWh; lowest 371 g/kWh at 09:00,
  highest 438 g/kWh at 20:00.
- ``SUMMER_PRICE_USD_PER_KWH``: Florida has no wholesale market, so the price profile is ERCOT's
  (hot-summer, gas-heavy; HB_HUBAVG day-ahead), hour-of-day means of ``Price (USD/MWh)`` by ERCOT
  local hour over June-August 2021-2024 (8,832 hours), divided by 1000. Mean 75 $/MWh with the
  evening scarcity peak (191 $/MWh at 17:00-19:00). Applied to the site's local hours.

``tests/signals/test_profiles.py`` recomputes both from ../shared/data and checks them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

import numpy as np

from casa_sched.signals.series import HOUR, HourlySeries, SignalError, _utc_hour

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
    """A value per local hour 0..23 of ``tz``; ``unit`` as in :class:`HourlySeries`."""

    values: tuple[float, ...]
    tz: str
    unit: str
    source: str = "profile"

    def __post_init__(self) -> None:
        if len(self.values) != 24:
            raise SignalError(f"{self.source}: a daily profile needs 24 values, got {len(self.values)}")
        if any(not np.isfinite(v) or v < 0 for v in self.values):
            raise SignalError(f"{self.source}: profile values must be finite and >= 0 {self.unit}")
        try:
            ZoneInfo(self.tz)
        except (KeyError, ValueError) as exc:
            raise SignalError(f"unknown time zone {self.tz!r}") from exc

    @property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.tz)

    def series(self, start: datetime, hours: int) -> HourlySeries:
        """The profile on ``hours`` UTC hours from the hour containing ``start`` (local hours follow DST)."""
        first = _utc_hour(start)
        zone = self.zone
        vals = np.array([self.values[(first + i * HOUR).astimezone(zone).hour] for i in range(hours)])
        return HourlySeries(first, vals, self.unit, source=self.source)

    @classmethod
    def of(cls, values: Sequence[float], tz: str, unit: str, source: str = "profile") -> DailyProfile:
        return cls(tuple(float(v) for v in values), tz, unit, source)


def tampa_summer_carbon(tz: str = TAMPA_TZ) -> DailyProfile:
    return DailyProfile(TAMPA_SUMMER_CI_G_PER_KWH, tz, "g/kWh", "embedded Tampa (US-FLA-TEC) summer CI profile")


def summer_price(tz: str = TAMPA_TZ) -> DailyProfile:
    return DailyProfile(SUMMER_PRICE_USD_PER_KWH, tz, "$/kWh", "embedded summer price profile (ERCOT hour-of-day)")
