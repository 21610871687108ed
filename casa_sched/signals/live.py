"""Live carbon-intensity providers over HTTP: Electricity Maps v3, WattTime v3, UK Carbon Intensity.

Only the outer layers (autoscaler, CLI) import this module; the import contract forbids it, and
``requests``, to the simulator and planners. Importing it registers the live providers under
the names ``SignalSettings.carbon_source`` uses (``electricitymaps``, ``watttime``, ``ukci``).

Each client has a configurable base URL, a timeout per request, retries with exponential
backoff (``backoff_s · 2^k``) on connection errors, timeouts and HTTP 5xx (never on 4xx), and
typed errors: :class:`SignalAuthError` (401/403), :class:`SignalRateLimitedError` (429, with the
server's ``Retry-After``), :class:`SignalResponseError` (other 4xx, non-JSON or a JSON shape the
API does not document) and :class:`SignalUnavailableError` (still failing after the retries).

API shapes (checked against the providers' public docs and official clients):

- Electricity Maps v3, header ``auth-token``: ``/v3/carbon-intensity/latest?zone=Z`` → one
  record ``{zone, carbonIntensity, datetime, updatedAt, isEstimated, ...}``; ``/history?zone=Z``
  (the last 24 h) → ``{zone, history: [records]}``; ``/past-range?zone=Z&start=&end=`` →
  ``{zone, data: [records]}``; ``/forecast?zone=Z`` → ``{zone, forecast: [records]}``. Average
  (not marginal) intensity; ``emissionFactorType=direct`` is asked for by default so live
  values match the direct CI of the CSV files and the embedded profile (the API's default is
  life-cycle).
- WattTime v3: ``GET /login`` with HTTP basic auth → ``{token}`` (valid 30 min), then
  ``/v3/historical?region=&signal_type=&start=&end=`` (at most 30 days a request) and
  ``/v3/forecast?region=&signal_type=`` with ``Authorization: Bearer <token>`` →
  ``{data: [{point_time, value}], meta: {units, ...}}``. ``co2_moer`` is a *marginal* rate in
  lbs/MWh, converted to g/kWh (× 0.453592).
- UK Carbon Intensity (National Grid ESO, no auth): ``/intensity`` (the current half hour),
  ``/intensity/{from}/fw48h`` (48 h forward from ``from``) and ``/intensity/{from}/{to}`` →
  ``{data: [{from, to, intensity: {forecast, actual, index}}]}``, half-hourly; ``actual`` is
  used when present, else ``forecast``.

Sub-hourly points are averaged per UTC hour; an hour with no point is filled by the
:class:`~casa_sched.signals.series.FillRule` and counted in ``filled_hours`` (a response too
sparse to fill is a :class:`SignalResponseError`).

:class:`FallbackProvider` wraps a live provider with ``SignalSettings.fallback``: ``last`` (the
last good value, held flat over the window; the embedded profile until there is one),
``profile`` (the embedded 24-hour profile) or ``fail`` (raise). Every fallback increments
:attr:`FallbackProvider.fallbacks` and calls ``on_fallback(reason)``, so the outer layer can
feed its metric (``casa_signal_fallback_total``); nothing is invented silently.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
import requests

from casa_sched.signals.profile import DailyProfile, tampa_summer_carbon
from casa_sched.signals.providers import (
    CarbonProvider,
    OnFallback,
    SignalProvider,
    carbon_provider,
    register_carbon_provider,
)
from casa_sched.signals.series import (
    CI_UNIT,
    DEFAULT_FILL_RULE,
    HOUR,
    FillRule,
    HourlySeries,
    SignalError,
    checked_unit,
    fill_missing,
    utc_hour,
)

if TYPE_CHECKING:  # settings sit beside signals in the bottom layer; only the type is needed
    from casa_sched.settings import SignalSettings

LB_PER_MWH_TO_G_PER_KWH = 0.453592  # 1 lb = 453.592 g and 1 MWh = 1000 kWh: 453.592 g / 1000 kWh
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SignalAPIError(SignalError):
    """A live provider failed; subclasses say how."""


class SignalAuthError(SignalAPIError):
    """HTTP 401/403: missing or wrong credentials."""


class SignalRateLimitedError(SignalAPIError):
    """HTTP 429: too many requests; ``retry_after_s`` is the server's Retry-After, if it sent one."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class SignalResponseError(SignalAPIError):
    """The response was not what the API documents (status, JSON, shape, or too sparse)."""


class SignalUnavailableError(SignalAPIError):
    """Connection errors, timeouts or HTTP 5xx after every retry."""


def _retry_after_s(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: not worth parsing for a message


@dataclass
class HttpJson:
    """GET JSON with a timeout and retries; the only I/O of this module.

    ``retries`` more attempts follow a connection error, timeout or 5xx, after
    ``backoff_s · 2^k`` seconds (k = 0, 1, ...). 4xx answers are never retried.
    """

    timeout_s: float = 5.0
    retries: int = 3
    backoff_s: float = 0.5
    session: requests.Session = field(default_factory=requests.Session)
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.retries < 0 or self.backoff_s < 0:
            raise SignalError(
                f"HttpJson needs timeout_s > 0 s, retries >= 0, backoff_s >= 0 s; got "
                f"{self.timeout_s}, {self.retries}, {self.backoff_s}"
            )

    def close(self) -> None:
        """Close the pooled connections (a long-lived process owns one ``HttpJson`` per provider)."""
        self.session.close()

    def get(
        self,
        url: str,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> Any:
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                resp = self.session.get(url, params=params, headers=headers, auth=auth, timeout=self.timeout_s)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            except requests.RequestException as exc:  # a bad URL or the like: retrying cannot help
                raise SignalResponseError(f"{url}: request failed: {type(exc).__name__}: {exc}") from exc
            if resp.status_code >= 500:
                last = f"HTTP {resp.status_code}"
                continue
            if resp.status_code in (401, 403):
                raise SignalAuthError(f"{url}: HTTP {resp.status_code}: check the API credentials")
            if resp.status_code == 429:
                after = _retry_after_s(resp.headers.get("Retry-After"))
                raise SignalRateLimitedError(
                    f"{url}: HTTP 429: rate limited" + (f", retry after {after:g} s" if after is not None else ""),
                    after,
                )
            if resp.status_code != 200:
                raise SignalResponseError(f"{url}: HTTP {resp.status_code}: {resp.text[:200]}")
            try:
                return resp.json()
            except ValueError as exc:
                raise SignalResponseError(f"{url}: response is not JSON: {resp.text[:80]!r}") from exc
        raise SignalUnavailableError(f"{url}: unavailable after {self.retries + 1} attempts ({last})")


def _hourly(
    points: list[tuple[datetime, float]], first: datetime, hours: int, source: str, fill: FillRule
) -> HourlySeries:
    """Average (time, g/kWh) points per UTC hour over ``hours`` hours from ``first``; fill and count gaps."""
    sums = np.zeros(hours)
    counts = np.zeros(hours)
    for t, v in points:
        i = int((utc_hour(t) - first) / HOUR)
        if 0 <= i < hours:
            sums[i] += v
            counts[i] += 1
    if not counts.any():
        raise SignalResponseError(f"{source}: no data points in the {hours} h from {first.isoformat()}")
    vals = np.full(hours, np.nan)
    np.divide(sums, counts, out=vals, where=counts > 0)
    try:
        filled, n = fill_missing(vals, fill)
    except SignalError as exc:
        raise SignalResponseError(f"{source}: too few data points to fill the window: {exc}") from exc
    if np.any(filled < 0):
        raise SignalResponseError(f"{source}: negative carbon intensity {float(filled.min())} g/kWh")
    return HourlySeries(first, filled, CI_UNIT, source=source, filled_hours=n,
                        fill_rule=fill.describe() if n else "none", filled_mask=np.isnan(vals))  # fmt: skip


def _parse_time(value: object, source: str) -> datetime:
    if not isinstance(value, str):
        raise SignalResponseError(f"{source}: expected an ISO date-time string, got {value!r}")
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SignalResponseError(f"{source}: bad date-time {value!r}") from exc
    if t.tzinfo is None:
        raise SignalResponseError(f"{source}: date-time {value!r} has no time zone")
    return t


def _records(data: object, key: str, source: str) -> list[dict[str, Any]]:
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise SignalResponseError(f"{source}: expected an object with a {key!r} list")
    recs: list[dict[str, Any]] = []
    for r in data[key]:
        if not isinstance(r, dict):
            raise SignalResponseError(f"{source}: {key!r} must hold objects, got {r!r}")
        recs.append(r)
    return recs


def _number(value: object) -> float | None:
    # bool is an int subclass; a JSON true is not an intensity
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _iso_z(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _CarbonViews:
    """``ci_g_per_kwh`` for providers whose ``series`` gives g/kWh."""

    def series(self, start: datetime, hours: int) -> HourlySeries:
        raise NotImplementedError

    def ci_g_per_kwh(self, start: datetime, hours: int) -> HourlySeries:
        return checked_unit(self.series(start, hours), CI_UNIT)


@dataclass
class ElectricityMapsProvider(_CarbonViews):
    """Electricity Maps v3 (``auth-token`` header); average carbon intensity of ``zone`` in g/kWh.

    ``series`` takes past hours from ``/history`` (when they lie in the last 24 h) or
    ``/past-range`` (the API serves at most 10 days of hourly data a request), and hours after
    the current one from ``/forecast`` (25 h by default, up to 72 h depending on the plan).
    """

    zone: str
    token: str
    base_url: str = "https://api.electricitymap.org"
    http: HttpJson = field(default_factory=HttpJson)
    emission_factor_type: Literal["direct", "lifecycle"] = "direct"
    fill: FillRule = DEFAULT_FILL_RULE
    clock: Clock = _utc_now
    name: str = "electricitymaps"

    @property
    def _src(self) -> str:
        return f"Electricity Maps {self.zone}"

    def _get(self, endpoint: str, **extra: str) -> Any:
        params = {"zone": self.zone, "emissionFactorType": self.emission_factor_type, **extra}
        url = f"{self.base_url.rstrip('/')}/v3/carbon-intensity/{endpoint}"
        return self.http.get(url, params=params, headers={"auth-token": self.token})

    def _points(self, recs: list[dict[str, Any]]) -> list[tuple[datetime, float]]:
        points = []
        for r in recs:
            ci = _number(r.get("carbonIntensity"))
            if ci is None:
                if r.get("carbonIntensity") is None and "carbonIntensity" in r:
                    continue  # a null hour (no data yet): left to the fill rule, and counted
                raise SignalResponseError(f"{self._src}: record without a numeric carbonIntensity: {r}")
            points.append((_parse_time(r.get("datetime"), self._src), ci))
        return points

    def latest(self) -> tuple[datetime, float]:
        """The latest hour's (start, g/kWh)."""
        data = self._get("latest")
        if not isinstance(data, dict):
            raise SignalResponseError(f"{self._src}: latest: expected a JSON object")
        ci = _number(data.get("carbonIntensity"))
        if ci is None:
            raise SignalResponseError(f"{self._src}: latest response without a numeric carbonIntensity")
        return _parse_time(data.get("datetime"), self._src), ci

    def history(self) -> list[tuple[datetime, float]]:
        """The last 24 hours as (hour start, g/kWh)."""
        return self._points(_records(self._get("history"), "history", self._src))

    def forecast(self) -> list[tuple[datetime, float]]:
        """The forecast hours as (hour start, g/kWh)."""
        return self._points(_records(self._get("forecast"), "forecast", self._src))

    def series(self, start: datetime, hours: int) -> HourlySeries:
        first = utc_hour(start)
        end = first + hours * HOUR
        now = utc_hour(self.clock())
        points: list[tuple[datetime, float]] = []
        if first < now:  # some past hours
            past_end = min(end, now + HOUR)
            if first >= now - timedelta(hours=24):
                points += self.history()
            else:
                recs = _records(self._get("past-range", start=_iso_z(first), end=_iso_z(past_end)), "data", self._src)
                points += self._points(recs)
        if end > now + HOUR:  # some hours not measured yet
            points += self.forecast()
        return _hourly(points, first, hours, self._src, self.fill)


@dataclass
class WattTimeProvider(_CarbonViews):
    """WattTime v3 (token from ``/login``); ``signal_type`` ``co2_moer`` (marginal) converted to g/kWh."""

    region: str
    username: str
    password: str
    signal_type: str = "co2_moer"
    base_url: str = "https://api.watttime.org"
    http: HttpJson = field(default_factory=HttpJson)
    fill: FillRule = DEFAULT_FILL_RULE
    clock: Clock = _utc_now
    name: str = "watttime"
    _token: str | None = None

    @property
    def _src(self) -> str:
        return f"WattTime {self.region} {self.signal_type}"

    def _login(self) -> str:
        data = self.http.get(f"{self.base_url.rstrip('/')}/login", auth=(self.username, self.password))
        if not isinstance(data, dict) or not isinstance(data.get("token"), str):
            raise SignalResponseError("WattTime: login response without a token")
        self._token = str(data["token"])
        return self._token

    def _get(self, path: str, params: dict[str, str]) -> Any:
        url = f"{self.base_url.rstrip('/')}{path}"
        token = self._token or self._login()
        try:
            return self.http.get(url, params=params, headers={"Authorization": f"Bearer {token}"})
        except SignalAuthError:  # the token lasts 30 min: log in once more, then give up
            return self.http.get(url, params=params, headers={"Authorization": f"Bearer {self._login()}"})

    def _points(self, data: object) -> list[tuple[datetime, float]]:
        recs = _records(data, "data", self._src)
        meta = data.get("meta") if isinstance(data, dict) else None
        units = str(meta.get("units", "")) if isinstance(meta, dict) else ""
        if units in ("", "lbs_co2_per_mwh"):  # the documented unit of co2_moer / co2_aoer
            scale = LB_PER_MWH_TO_G_PER_KWH
        elif units in ("g_co2_per_kwh", "gco2_per_kwh"):
            scale = 1.0
        else:
            raise SignalResponseError(f"{self._src}: values in {units!r}, not a carbon intensity this client converts")
        points = []
        for r in recs:
            v = _number(r.get("value"))
            if v is None:
                raise SignalResponseError(f"{self._src}: record without a numeric value: {r}")
            points.append((_parse_time(r.get("point_time"), self._src), v * scale))
        return points

    def series(self, start: datetime, hours: int) -> HourlySeries:
        first = utc_hour(start)
        end = first + hours * HOUR
        now = utc_hour(self.clock())
        points: list[tuple[datetime, float]] = []
        base = {"region": self.region, "signal_type": self.signal_type}
        chunk = first
        past_end = min(end, now + HOUR)
        while chunk < past_end:  # /v3/historical serves at most 30 days a request
            chunk_end = min(past_end, chunk + timedelta(days=30))
            points += self._points(
                self._get("/v3/historical", {**base, "start": _iso_z(chunk), "end": _iso_z(chunk_end)})
            )
            chunk = chunk_end
        if end > now + HOUR:
            points += self._points(self._get("/v3/forecast", base))
        return _hourly(points, first, hours, self._src, self.fill)


@dataclass
class UKCarbonIntensityProvider(_CarbonViews):
    """National Grid ESO's Carbon Intensity API (GB, no auth), half-hourly, actual else forecast."""

    base_url: str = "https://api.carbonintensity.org.uk"
    http: HttpJson = field(default_factory=HttpJson)
    fill: FillRule = DEFAULT_FILL_RULE
    name: str = "ukci"
    _src: str = "UK Carbon Intensity"

    def _points(self, data: object) -> list[tuple[datetime, float]]:
        points = []
        for r in _records(data, "data", self._src):
            inten = r.get("intensity")
            if not isinstance(inten, dict):
                raise SignalResponseError(f"{self._src}: record without an intensity object: {r}")
            v = _number(inten.get("actual"))
            v = v if v is not None else _number(inten.get("forecast"))
            if v is None:
                continue  # a half hour with neither value: left to the fill rule, and counted
            points.append((_parse_time(r.get("from"), self._src), v))
        return points

    def latest(self) -> tuple[datetime, float]:
        """The current half hour's (start, g/kWh)."""
        points = self._points(self.http.get(f"{self.base_url.rstrip('/')}/intensity"))
        if not points:
            raise SignalResponseError(f"{self._src}: /intensity gave no value")
        return points[-1]

    def series(self, start: datetime, hours: int) -> HourlySeries:
        first = utc_hour(start)
        end = first + hours * HOUR
        fmt = "%Y-%m-%dT%H:%MZ"
        if hours <= 48:
            url = f"{self.base_url.rstrip('/')}/intensity/{first.strftime(fmt)}/fw48h"
        else:
            url = f"{self.base_url.rstrip('/')}/intensity/{first.strftime(fmt)}/{end.strftime(fmt)}"
        return _hourly(self._points(self.http.get(url)), first, hours, self._src, self.fill)


@dataclass
class FallbackProvider(_CarbonViews):
    """A live provider with the documented fallback (``last`` | ``profile`` | ``fail``).

    ``fallbacks`` counts the windows answered by the fallback, ``fallbacks_by_reason`` per
    error class; ``on_fallback(reason)`` is called for each (e.g. to increment a Prometheus
    counter in the outer layer).
    """

    primary: SignalProvider
    mode: Literal["last", "profile", "fail"]
    profile: DailyProfile
    on_fallback: OnFallback = field(default=lambda reason: None)
    name: str = "fallback"
    fallbacks: int = 0
    fallbacks_by_reason: dict[str, int] = field(default_factory=dict)
    _last: HourlySeries | None = None

    def series(self, start: datetime, hours: int) -> HourlySeries:
        try:
            got = self.primary.series(start, hours)
        except SignalAPIError as exc:
            if self.mode == "fail":
                raise
            reason = type(exc).__name__
            self.fallbacks += 1
            self.fallbacks_by_reason[reason] = self.fallbacks_by_reason.get(reason, 0) + 1
            self.on_fallback(reason)
            if self.mode == "last" and self._last is not None:
                held = float(self._last.values[-1])
                return HourlySeries(utc_hour(start), np.full(hours, held), self._last.unit,
                                    source=f"last good value of {self._last.source} ({reason}: {exc})",
                                    filled_hours=hours, fill_rule="held the last good value")  # fmt: skip
            fallback = self.profile.series(start, hours)
            return HourlySeries(fallback.start_utc, fallback.values, fallback.unit,
                                source=f"{fallback.source} ({reason}: {exc})", filled_hours=hours,
                                fill_rule="embedded 24-hour profile")  # fmt: skip
        self._last = got
        return got


def _http(signals: SignalSettings) -> HttpJson:
    return HttpJson(timeout_s=signals.http_timeout_s, retries=signals.http_retries)


def _wrap(primary: SignalProvider, signals: SignalSettings, on_fallback: OnFallback) -> CarbonProvider:
    return FallbackProvider(primary, signals.fallback, tampa_summer_carbon(signals.timezone), on_fallback)


_P = TypeVar("_P", ElectricityMapsProvider, WattTimeProvider, UKCarbonIntensityProvider)


def _at(provider: _P, signals: SignalSettings) -> _P:
    """``provider`` at ``signals.api_base_url`` when it is set."""
    if signals.api_base_url is not None:
        provider.base_url = signals.api_base_url
    return provider


def _electricitymaps(signals: SignalSettings, on_fallback: OnFallback) -> CarbonProvider:
    if not signals.api_token:
        raise SignalError("Electricity Maps needs signals.api_token (CASA_SIGNALS__API_TOKEN)")
    primary = ElectricityMapsProvider(signals.zone, signals.api_token, http=_http(signals))
    return _wrap(_at(primary, signals), signals, on_fallback)


def _watttime(signals: SignalSettings, on_fallback: OnFallback) -> CarbonProvider:
    if not (signals.api_username and signals.api_password):
        raise SignalError("WattTime needs signals.api_username and signals.api_password")
    primary = WattTimeProvider(signals.zone, signals.api_username, signals.api_password, http=_http(signals))
    return _wrap(_at(primary, signals), signals, on_fallback)


def _ukci(signals: SignalSettings, on_fallback: OnFallback) -> CarbonProvider:
    return _wrap(_at(UKCarbonIntensityProvider(http=_http(signals)), signals), signals, on_fallback)


register_carbon_provider("electricitymaps", _electricitymaps)
register_carbon_provider("watttime", _watttime)
register_carbon_provider("ukci", _ukci)


def carbon_provider_from_settings(
    signals: SignalSettings, on_fallback: OnFallback = lambda reason: None
) -> CarbonProvider:
    """The carbon provider ``signals.carbon_source`` names, live ones wrapped in their :class:`FallbackProvider`."""
    return carbon_provider(signals, on_fallback)
