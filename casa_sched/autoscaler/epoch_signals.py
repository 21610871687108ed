"""CI_e, EP_e and E_t for one live epoch, from the configured providers (paper §V.A, eqs. 3-5).

The carbon and price providers are the ones ``signals.carbon_source`` / ``price_source`` name
(live HTTP providers included: importing :mod:`casa_sched.signals.live` registers them; they
already fall back to their last good value and report each fallback). On top of that, any
provider failure here (a CSV that does not cover the epoch, a live provider in ``fail`` mode)
holds the last value this reader obtained, flat over the epoch, and counts it in
``casa_signal_fallback_total{signal,reason}``; ``casa_signal_age_seconds{signal}`` says how old
the value in use is (0 while providers answer). With no value at all yet, the embedded 24-hour
profile is used and counted the same way (reason ``no_last_value``). The cooling factor E_t is
the configured profile by local hour.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from casa_sched._typing import FloatArray
from casa_sched.contract.forecast import EpochSignals
from casa_sched.metrics import CasaMetrics
from casa_sched.settings import CasaSettings
from casa_sched.signals import (
    CarbonProvider,
    PriceProvider,
    SignalError,
    carbon_provider,
    price_provider,
    summer_price,
    tampa_summer_carbon,
)

log = logging.getLogger(__name__)


@dataclass
class _Held:
    value: float
    at_unix_s: float


def per_minute(hourly: FloatArray, start: datetime, minutes: int) -> FloatArray:
    """Hourly values from the UTC hour containing ``start`` → one value per minute of the epoch.

    >>> from datetime import UTC
    >>> per_minute(np.array([1.0, 2.0]), datetime(2024, 1, 1, 0, 58, tzinfo=UTC), 3).tolist()
    [1.0, 1.0, 2.0]
    """
    offset = start.minute
    idx = (offset + np.arange(minutes)) // 60
    return np.asarray(hourly[np.minimum(idx, hourly.size - 1)], dtype=np.float64)


class SignalReader:
    """Reads the epoch's signals; holds the last good value of each when its provider fails."""

    def __init__(
        self, settings: CasaSettings, metrics: CasaMetrics, clock: Callable[[], float] = time.time
    ) -> None:
        import casa_sched.signals.live  # noqa: F401 - registers the live providers

        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        sig = settings.signals
        self.carbon: CarbonProvider = carbon_provider(sig, self._live_fallback)
        self.price: PriceProvider = price_provider(sig)
        self._held: dict[str, _Held] = {}

    def _live_fallback(self, reason: str) -> None:
        self._metrics.signal_fallback_total.labels(signal="carbon", reason=reason).inc()

    def _read(self, signal: str, fetch: Callable[[], FloatArray], profile: Callable[[], FloatArray]) -> FloatArray:
        now = self._clock()
        try:
            values = np.asarray(fetch(), dtype=np.float64)
            if not np.all(np.isfinite(values)):
                raise SignalError(f"{signal}: provider returned non-finite values")
        except (SignalError, OSError, ValueError) as exc:
            reason = type(exc).__name__
            held = self._held.get(signal)
            if held is None:
                reason = "no_last_value"
                values = np.asarray(profile(), dtype=np.float64)
                log.warning("%s signal failed (%s) and no earlier value exists: using the embedded profile", signal, exc)
                self._metrics.signal_age_seconds.labels(signal=signal).set(math.nan)
            else:
                log.warning("%s signal failed (%s): holding the value of %.0f s ago", signal, exc, now - held.at_unix_s)
                values = np.full(1, held.value)
                self._metrics.signal_age_seconds.labels(signal=signal).set(now - held.at_unix_s)
            self._metrics.signal_fallback_total.labels(signal=signal, reason=reason).inc()
            return values
        self._held[signal] = _Held(float(values[-1]), now)
        self._metrics.signal_age_seconds.labels(signal=signal).set(0.0)
        return values

    def read(self, start: datetime, epoch_s: float) -> EpochSignals:
        """Per-minute CI (g/kWh), price ($/kWh) and cooling factor for the epoch from ``start``."""
        minutes = max(1, round(epoch_s / 60.0))
        hours = (start.minute + minutes + 59) // 60
        tz = self._settings.signals.timezone
        ci = self._read("carbon", lambda: self.carbon.ci_g_per_kwh(start, hours).values,
                        lambda: tampa_summer_carbon(tz).ci_g_per_kwh(start, hours).values)  # fmt: skip
        price = self._read("price", lambda: self.price.price_usd_per_kwh(start, hours).values,
                           lambda: summer_price(tz).price_usd_per_kwh(start, hours).values)  # fmt: skip
        zone = ZoneInfo(tz)
        cooling_by_hour = self._settings.accounting.cooling_factor_by_hour
        cooling = np.asarray([cooling_by_hour[(start + timedelta(minutes=int(m))).astimezone(zone).hour]
                              for m in range(minutes)], dtype=np.float64)  # fmt: skip
        ci_m = per_minute(ci, start, minutes) if ci.size > 1 else np.full(minutes, ci[0])
        price_m = per_minute(price, start, minutes) if price.size > 1 else np.full(minutes, price[0])
        self._metrics.carbon_intensity_grams_per_kwh.set(float(ci_m.mean()))
        self._metrics.energy_price_dollars_per_kwh.set(float(price_m.mean()))
        return EpochSignals(ci_g_per_kwh=ci_m, price_usd_per_kwh=price_m, cooling_factor=cooling)
