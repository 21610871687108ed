"""Live carbon-intensity providers over HTTP: Electricity Maps v3, WattTime v3, UK Carbon Intensity.

Each client has a configurable base URL, a timeout per request, retries with exponential
backoff on connection errors and HTTP 5xx (never on 4xx), and typed errors. Results are hourly
:class:`~casa_sched.signals.series.HourlySeries` in g/kWh (sub-hourly points are averaged per
hour; an hour with no point is filled by the series' stated rule and counted).

:class:`FallbackProvider` wraps any provider: when it fails after its retries, the documented
fallback applies — ``last`` (the last good value, held flat), ``profile`` (the embedded 24-hour
profile) or ``fail`` (raise) — and ``on_fallback(reason)`` is called so the caller can count it
(the autoscaler feeds ``casa_signal_fallback_total``). Nothing is invented silently.

Only the outer layers use this module (the import contract forbids it to the simulator and
planners).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import requests

from casa_sched.signals.files import load_carbon_csv
from casa_sched.signals.profile import DailyProfile, tampa_summer_carbon
from casa_sched.signals.providers import FileProvider, SignalProvider
from casa_sched.signals.series import HOUR, HourlySeries, SignalError, _utc_hour, fill_missing

if TYPE_CHECKING:  # settings sit beside signals in the bottom layer; only the type is needed
    from casa_sched.settings import SignalSettings

LB_PER_MWH_TO_G_PER_KWH = 0.453592  # 1 lb = 453.592 g; 1 MWh = 1000 kWh


class SignalAPIError(SignalError):
    """A live provider failed; subclasses say how."""


class SignalAuthError(SignalAPIError):
    """HTTP 401/403: missing or wrong credentials."""


class SignalRateLimitedError(SignalAPIError):
    """HTTP 429: too many requests."""


class SignalResponseError(SignalAPIError):
    """The response was not what the API documents (status or JSON shape)."""


class SignalUnavailableError(SignalAPIError):
    """Connection errors, timeouts or HTTP 5xx after every retry."""


@dataclass
class HttpJson:
    """GET JSON with a timeout and retries; the only I/O of this module."""

    timeout_s: float = 5.0
    retries: int = 3
    backoff_s: float = 0.5
    session: requests.Session = field(default_factory=requests.Session)

    def get(self, url: str, params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None,
            auth: tuple[str, str] | None = None) -> Any:  # fmt: skip
        last: str = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                resp = self.session.get(url, params=params, headers=headers, auth=auth, timeout=self.timeout_s)
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if resp.status_code >= 500:
                last = f"HTTP {resp.status_code}"
                continue
            if resp.status_code in (401, 403):
                raise SignalAuthError(f"{url}: HTTP {resp.status_code}: check the API credentials")
            if resp.status_code == 429:
                raise SignalRateLimitedError(f"{url}: HTTP 429: rate limited")
            if resp.status_code != 200:
                raise SignalResponseError(f"{url}: HTTP {resp.status_code}: {resp.text[:200]}")
            try:
                return resp.json()
            except ValueError as exc:
                raise SignalResponseError(f"{url}: response is not JSON") from exc
        raise SignalUnavailableError(f"{url}: unavailable after {self.retries + 1} attempts ({last})")


def _hourly(points: list[tuple[datetime, float]], start: datetime, hours: int, unit: str, source: str) -> HourlySeries:
    """Average (time, value) points per UTC hour over ``hours`` hours from ``start``."""
    first = _utc_hour(start)
    sums = np.zeros(hours)
    counts = np.zeros(hours)
    for t, v in points:
        i = int((_utc_hour(t) - first) / HOUR)
        if 0 <= i < hours:
            sums[i] += v
            counts[i] += 1
    if not counts.any():
        raise SignalResponseError(f"{source}: no data points between {first.isoformat()} and {hours} h later")
    with np.errstate(invalid="ignore", divide="ignore"):
        vals = np.where(counts > 0, sums / counts, np.nan)
    filled, n = fill_missing(vals)
    return HourlySeries(
        first, filled, unit, source=source, filled_hours=n, fill_rule="missing hours filled" if n else "none"
    )


def _parse_time(value: object, source: str) -> datetime:
    if not isinstance(value, str):
        raise SignalResponseError(f"{source}: expected an ISO date-time string, got {value!r}")
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SignalResponseError(f"{source}: bad date-time {value!r}") from exc
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _records(data: object, key: str, source: str) -> list[dict[str, Any]]:
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise SignalResponseError(f"{source}: expected an object with a {key!r} list")
    recs: list[dict[str, Any]] = []
    for r in data[key]:
        if not isinstance(r, dict):
            raise SignalResponseError(f"{source}: {key!r} must hold objects")
        recs.append(r)
    return recs


@dataclass
class ElectricityMapsProvider:
    """Electricity Maps v3 (``auth-token`` header): past-range for history, forecast for the future."""

    zone: str
    token: str
    base_url: str = "https://api.electricitymap.org"
    http: HttpJson = field(default_factory=HttpJson)
    name: str = "electricitymaps"

    def series(self, start: datetime, hours: int) -> HourlySeries:
        first = _utc_hour(start)
        end = first + hours * HOUR
        src = f"Electricity Maps {self.zone}"
        headers = {"auth-token": self.token}
        if end <= datetime.now(UTC) + HOUR:
            data = self.http.get(
                f"{self.base_url}/v3/carbon-intensity/past-range",
                params={"zone": self.zone, "start": first.isoformat(), "end": end.isoformat()},
                headers=headers,
            )
            recs = _records(data, "data", src)
        else:
            data = self.http.get(
                f"{self.base_url}/v3/carbon-intensity/forecast", params={"zone": self.zone}, headers=headers
            )
            recs = _records(data, "forecast", src)
        points = []
        for r in recs:
            ci = r.get("carbonIntensity")
            if not isinstance(ci, int | float):
                raise SignalResponseError(f"{src}: record without a numeric carbonIntensity: {r}")
            points.append((_parse_time(r.get("datetime"), src), float(ci)))
        return _hourly(points, first, hours, "g/kWh", src)

    def latest(self) -> float:
        src = f"Electricity Maps {self.zone}"
        data = self.http.get(f"{self.base_url}/v3/carbon-intensity/latest", params={"zone": self.zone},
                             headers={"auth-token": self.token})  # fmt: skip
        if not isinstance(data, dict) or not isinstance(data.get("carbonIntensity"), int | float):
            raise SignalResponseError(f"{src}: latest response without carbonIntensity")
        return float(data["carbonIntensity"])


@dataclass
class WattTimeProvider:
    """WattTime v3: ``/login`` (basic auth) for a token, then ``/v3/historical`` or ``/v3/forecast``.

    ``co2_moer`` comes in lbs/MWh and is converted to g/kWh (× 0.453592). Note it is a
    *marginal* signal, unlike Electricity Maps' average intensity.
    """

    region: str
    username: str
    password: str
    signal_type: str = "co2_moer"
    base_url: str = "https://api.watttime.org"
    http: HttpJson = field(default_factory=HttpJson)
    name: str = "watttime"
    _token: str | None = None

    def _login(self) -> str:
        data = self.http.get(f"{self.base_url}/login", auth=(self.username, self.password))
        if not isinstance(data, dict) or not isinstance(data.get("token"), str):
            raise SignalResponseError("WattTime: login response without a token")
        self._token = data["token"]
        return self._token

    def series(self, start: datetime, hours: int) -> HourlySeries:
        first = _utc_hour(start)
        end = first + hours * HOUR
        token = self._token or self._login()
        src = f"WattTime {self.region}"
        headers = {"Authorization": f"Bearer {token}"}
        if end <= datetime.now(UTC) + HOUR:
            url = f"{self.base_url}/v3/historical"
            params = {
                "region": self.region,
                "signal_type": self.signal_type,
                "start": first.isoformat(),
                "end": end.isoformat(),
            }
        else:
            url = f"{self.base_url}/v3/forecast"
            params = {"region": self.region, "signal_type": self.signal_type}
        try:
            data = self.http.get(url, params=params, headers=headers)
        except SignalAuthError:  # token expired (30 min): log in once more
            headers = {"Authorization": f"Bearer {self._login()}"}
            data = self.http.get(url, params=params, headers=headers)
        recs = _records(data, "data", src)
        units = str(data.get("meta", {}).get("units", "lbs_co2_per_mwh")) if isinstance(data, dict) else ""
        scale = LB_PER_MWH_TO_G_PER_KWH if "lbs" in units else 1.0
        points = []
        for r in recs:
            v = r.get("value")
            if not isinstance(v, int | float):
                raise SignalResponseError(f"{src}: record without a numeric value: {r}")
            points.append((_parse_time(r.get("point_time"), src), float(v) * scale))
        return _hourly(points, first, hours, "g/kWh", src)


@dataclass
class UKCarbonIntensityProvider:
    """National Grid ESO's Carbon Intensity API (no auth): half-hourly, actual else forecast."""

    base_url: str = "https://api.carbonintensity.org.uk"
    http: HttpJson = field(default_factory=HttpJson)
    name: str = "ukci"

    def series(self, start: datetime, hours: int) -> HourlySeries:
        first = _utc_hour(start)
        end = first + hours * HOUR
        fmt = "%Y-%m-%dT%H:%MZ"
        data = self.http.get(f"{self.base_url}/intensity/{first.strftime(fmt)}/{end.strftime(fmt)}")
        src = "UK Carbon Intensity"
        points = []
        for r in _records(data, "data", src):
            inten = r.get("intensity")
            if not isinstance(inten, dict):
                raise SignalResponseError(f"{src}: record without intensity: {r}")
            v = inten.get("actual") if isinstance(inten.get("actual"), int | float) else inten.get("forecast")
            if not isinstance(v, int | float):
                continue  # a half hour with neither value: left to the fill rule, and counted
            points.append((_parse_time(r.get("from"), src), float(v)))
        return _hourly(points, first, hours, "g/kWh", src)


@dataclass
class FallbackProvider:
    """A live provider with the documented fallback (``last`` | ``profile`` | ``fail``)."""

    primary: Any
    mode: Literal["last", "profile", "fail"]
    profile: DailyProfile
    on_fallback: Callable[[str], None] = lambda reason: None
    name: str = "fallback"
    _last: HourlySeries | None = None

    def series(self, start: datetime, hours: int) -> HourlySeries:
        try:
            got: HourlySeries = self.primary.series(start, hours)
        except SignalAPIError as exc:
            reason = type(exc).__name__
            if self.mode == "fail":
                raise
            self.on_fallback(reason)
            if self.mode == "last" and self._last is not None:
                held = float(self._last.values[-1])
                return HourlySeries(_utc_hour(start), np.full(hours, held), self._last.unit,
                                    source=f"last good value of {self._last.source} ({reason})",
                                    filled_hours=hours, fill_rule="held last good value")  # fmt: skip
            fallback = self.profile.series(start, hours)
            return HourlySeries(fallback.start_utc, fallback.values, fallback.unit,
                                source=f"{fallback.source} ({reason})", filled_hours=hours,
                                fill_rule="embedded profile")  # fmt: skip
        self._last = got
        return got


def carbon_provider_from_settings(
    signals: SignalSettings, on_fallback: Callable[[str], None] = lambda reason: None
) -> SignalProvider:
    """The carbon provider ``signals.carbon_source`` names, live ones wrapped in their fallback."""
    profile = tampa_summer_carbon(signals.timezone)
    http = HttpJson(timeout_s=signals.http_timeout_s, retries=signals.http_retries)
    source = signals.carbon_source
    if source == "profile":
        return profile
    if source == "csv":
        if signals.carbon_csv is None:
            raise SignalError("signals.carbon_source is 'csv' but signals.carbon_csv is not set")
        return FileProvider(load_carbon_csv(signals.carbon_csv))
    primary: SignalProvider
    if source == "electricitymaps":
        if not signals.api_token:
            raise SignalError("Electricity Maps needs signals.api_token (CASA_SIGNALS__API_TOKEN)")
        primary = ElectricityMapsProvider(signals.zone, signals.api_token, http=http)
    elif source == "watttime":
        if not (signals.api_username and signals.api_password):
            raise SignalError("WattTime needs signals.api_username and signals.api_password")
        primary = WattTimeProvider(signals.zone, signals.api_username, signals.api_password, http=http)
    else:
        primary = UKCarbonIntensityProvider(http=http)
    return FallbackProvider(primary, signals.fallback, profile, on_fallback)
