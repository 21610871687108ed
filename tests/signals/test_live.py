"""Live carbon providers against a real HTTP server on 127.0.0.1 serving the APIs' documented shapes.

Shapes follow the public docs: Electricity Maps v3 records ``{zone, carbonIntensity, datetime,
updatedAt, isEstimated}`` (``history``/``data``/``forecast`` lists), WattTime v3 ``{data:
[{point_time, value}], meta: {units}}`` after ``/login``, UK Carbon Intensity ``{data: [{from,
to, intensity: {forecast, actual, index}}]}``.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from casa_sched.settings import SignalSettings
from casa_sched.signals import CarbonProvider, SignalError, carbon_provider, tampa_summer_carbon
from casa_sched.signals.live import (
    LB_PER_MWH_TO_G_PER_KWH,
    ElectricityMapsProvider,
    FallbackProvider,
    HttpJson,
    SignalAuthError,
    SignalRateLimitedError,
    SignalResponseError,
    SignalUnavailableError,
    UKCarbonIntensityProvider,
    WattTimeProvider,
    carbon_provider_from_settings,
)

NOW = datetime(2024, 7, 2, 12, tzinfo=UTC)  # the providers' clock in these tests


def clock() -> datetime:
    return NOW


@dataclass
class Answer:
    status: int
    body: Any
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class FakeAPI:
    """Routes path → answers given in turn (the last one repeats); records every request."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Answer]] = {}
        self.seen: list[Seen] = []

    def route(self, path: str, *answers: Answer | tuple[int, Any]) -> None:
        self.routes[path] = [a if isinstance(a, Answer) else Answer(*a) for a in answers]

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]


@pytest.fixture
def api() -> Iterator[tuple[FakeAPI, str]]:
    fake = FakeAPI()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            fake.seen.append(Seen(parts.path, query, dict(self.headers)))
            answers = fake.routes.get(parts.path, [Answer(404, {"error": "no route"})])
            answer = answers.pop(0) if len(answers) > 1 else answers[0]
            time.sleep(answer.delay_s)
            payload = answer.body.encode() if isinstance(answer.body, str) else json.dumps(answer.body).encode()
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in answer.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and went away: what a timeout test wants

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def fast(**kw: Any) -> HttpJson:
    return HttpJson(**({"timeout_s": 2.0, "retries": 2, "backoff_s": 0.0} | kw))


def em(url: str, **kw: Any) -> ElectricityMapsProvider:
    return ElectricityMapsProvider("US-FLA-TEC", "tok", base_url=url, http=kw.pop("http", fast()), clock=clock, **kw)


def em_record(t: str, ci: float | None) -> dict[str, Any]:
    return {"zone": "US-FLA-TEC", "carbonIntensity": ci, "datetime": t, "updatedAt": t, "isEstimated": False}


# -- Electricity Maps ------------------------------------------------------------------------


def test_electricity_maps_past_range_for_older_windows(api):
    fake, url = api
    fake.route("/v3/carbon-intensity/past-range", (200, {"zone": "US-FLA-TEC", "data": [
        em_record("2024-07-01T00:00:00.000Z", 400), em_record("2024-07-01T01:00:00.000Z", 420),
    ]}))  # fmt: skip
    start = datetime(2024, 7, 1, tzinfo=UTC)  # 36 h before NOW: older than /history's 24 h
    s = em(url).ci_g_per_kwh(start, 2)
    assert list(s.values) == [400, 420]
    req = fake.seen[0]
    assert req.headers.get("auth-token") == "tok"
    assert req.query == {
        "zone": "US-FLA-TEC",
        "emissionFactorType": "direct",  # the CSVs' and the profile's CI, not the API's life-cycle default
        "start": "2024-07-01T00:00:00Z",
        "end": "2024-07-01T02:00:00Z",
    }


def test_electricity_maps_history_then_forecast_across_now(api):
    fake, url = api
    fake.route("/v3/carbon-intensity/history", (200, {"zone": "Z", "history": [
        em_record("2024-07-02T11:00:00.000Z", 300), em_record("2024-07-02T12:00:00.000Z", 310),
    ]}))  # fmt: skip
    fake.route("/v3/carbon-intensity/forecast", (200, {"zone": "Z", "forecast": [
        em_record("2024-07-02T13:00:00.000Z", 320), em_record("2024-07-02T14:00:00.000Z", 330),
    ], "updatedAt": "2024-07-02T12:05:00.000Z"}))  # fmt: skip
    s = em(url).series(NOW - timedelta(hours=1), 4)  # 11:00 .. 14:00: two measured, two forecast hours
    assert list(s.values) == [300, 310, 320, 330]
    assert fake.paths() == ["/v3/carbon-intensity/history", "/v3/carbon-intensity/forecast"]


def test_electricity_maps_latest_and_null_hours(api):
    fake, url = api
    fake.route("/v3/carbon-intensity/latest", (200, em_record("2024-07-02T12:00:00.000Z", 512)))
    assert em(url).latest() == (NOW, 512)
    fake.route("/v3/carbon-intensity/history", (200, {"zone": "Z", "history": [
        em_record("2024-07-02T09:00:00.000Z", 300), em_record("2024-07-02T10:00:00.000Z", None),
        em_record("2024-07-02T11:00:00.000Z", 340),
    ]}))  # fmt: skip
    s = em(url).series(NOW - timedelta(hours=3), 3)
    # the null hour is interpolated: (300 + 340) / 2 = 320, and counted
    assert (list(s.values), s.filled_hours) == ([300, 320, 340], 1)


# -- WattTime --------------------------------------------------------------------------------


def wt(url: str) -> WattTimeProvider:
    return WattTimeProvider("FPL", "user", "pw", base_url=url, http=fast(), clock=clock)


def test_watttime_logs_in_and_converts_lbs_per_mwh(api):
    fake, url = api
    fake.route("/login", (200, {"token": "abc"}))
    fake.route("/v3/historical", (200, {"data": [
        {"point_time": "2024-07-01T00:00:00+00:00", "value": 1000.0},
        {"point_time": "2024-07-01T00:05:00+00:00", "value": 1200.0},
    ], "meta": {"region": "FPL", "signal_type": "co2_moer", "units": "lbs_co2_per_mwh", "warnings": []}}))  # fmt: skip
    s = wt(url).ci_g_per_kwh(datetime(2024, 7, 1, tzinfo=UTC), 1)
    # 5-min points averaged: (1000 + 1200) / 2 = 1100 lbs/MWh × 0.453592 = 498.95 g/kWh
    assert s.values[0] == pytest.approx(498.9512)
    assert s.values[0] == pytest.approx(1100 * LB_PER_MWH_TO_G_PER_KWH)
    login, data = fake.seen
    assert login.headers["Authorization"] == "Basic " + base64.b64encode(b"user:pw").decode()
    assert data.headers["Authorization"] == "Bearer abc"
    assert data.query == {"region": "FPL", "signal_type": "co2_moer",
                          "start": "2024-07-01T00:00:00Z", "end": "2024-07-01T01:00:00Z"}  # fmt: skip


def test_watttime_logs_in_again_when_the_token_expires(api):
    fake, url = api
    fake.route("/login", (200, {"token": "old"}), (200, {"token": "new"}))
    ok = {"data": [{"point_time": "2024-07-02T13:00:00Z", "value": 1000}], "meta": {"units": "lbs_co2_per_mwh"}}
    fake.route("/v3/forecast", (200, ok), (401, {"error": "expired"}), (200, ok))
    p = wt(url)
    p.series(NOW + timedelta(hours=1), 1)
    p.series(NOW + timedelta(hours=1), 1)  # 401 with the old token → log in once more
    assert fake.paths() == ["/login", "/v3/forecast", "/v3/forecast", "/login", "/v3/forecast"]
    assert fake.seen[-1].headers["Authorization"] == "Bearer new"


def test_watttime_refuses_units_it_cannot_convert(api):
    fake, url = api
    fake.route("/login", (200, {"token": "t"}))
    fake.route("/v3/forecast", (200, {"data": [{"point_time": "2024-07-02T13:00:00Z", "value": 55}],
                                      "meta": {"units": "percentile"}}))  # fmt: skip
    with pytest.raises(SignalResponseError, match="'percentile'"):
        wt(url).series(NOW + timedelta(hours=1), 1)


# -- UK Carbon Intensity ---------------------------------------------------------------------


def test_uk_fw48h_prefers_actual_then_forecast_and_counts_holes(api):
    fake, url = api
    fake.route("/intensity/2024-07-01T00:00Z/fw48h", (200, {"data": [
        {"from": "2024-07-01T00:00Z", "to": "2024-07-01T00:30Z", "intensity": {"forecast": 100, "actual": 110, "index": "low"}},
        {"from": "2024-07-01T00:30Z", "to": "2024-07-01T01:00Z", "intensity": {"forecast": 130, "actual": None, "index": "low"}},
        {"from": "2024-07-01T02:00Z", "to": "2024-07-01T02:30Z", "intensity": {"forecast": 90, "actual": 90, "index": "low"}},
    ]}))  # fmt: skip
    s = UKCarbonIntensityProvider(base_url=url, http=fast()).series(datetime(2024, 7, 1, tzinfo=UTC), 3)
    # hour 0: (110 actual + 130 forecast) / 2 = 120; hour 1: no point → (120 + 90) / 2 = 105; hour 2: 90
    assert list(s.values) == pytest.approx([120, 105, 90])
    assert s.filled_hours == 1


def test_uk_long_windows_and_latest(api):
    fake, url = api
    rec = {"from": "2024-07-01T00:00Z", "to": "2024-07-01T00:30Z", "intensity": {"forecast": 200, "actual": None}}
    fake.route("/intensity/2024-07-01T00:00Z/2024-07-04T00:00Z", (200, {"data": [rec]}))
    fake.route("/intensity", (200, {"data": [rec]}))
    uk = UKCarbonIntensityProvider(base_url=url, http=fast())
    with pytest.raises(SignalResponseError, match="too few data points"):  # 1 point cannot fill 72 h
        uk.series(datetime(2024, 7, 1, tzinfo=UTC), 72)
    assert uk.latest() == (datetime(2024, 7, 1, tzinfo=UTC), 200)


# -- transport: retries, typed errors, timeouts --------------------------------------------------


def test_server_errors_are_retried_with_backoff_then_succeed(api):
    fake, url = api
    ok = {"zone": "Z", "data": [em_record("2024-07-01T00:00:00Z", 300)]}
    fake.route("/v3/carbon-intensity/past-range", (503, "busy"), (500, "oops"), (200, ok))
    waits: list[float] = []
    s = em(url, http=HttpJson(timeout_s=2, retries=3, backoff_s=0.5, sleep=waits.append)).series(
        datetime(2024, 7, 1, tzinfo=UTC), 1
    )
    assert s.values[0] == 300
    assert len(fake.seen) == 3
    assert waits == [0.5, 1.0]  # backoff_s · 2^k before attempts 2 and 3


@pytest.mark.parametrize(
    ("status", "error", "attempts"),
    [
        pytest.param(401, SignalAuthError, 1, id="401-not-retried"),
        pytest.param(403, SignalAuthError, 1, id="403-not-retried"),
        pytest.param(429, SignalRateLimitedError, 1, id="429-not-retried"),
        pytest.param(404, SignalResponseError, 1, id="404-not-retried"),
        pytest.param(500, SignalUnavailableError, 3, id="500-retried-then-unavailable"),  # 1 + retries=2
    ],
)
def test_http_errors_are_typed(api, status, error, attempts):
    fake, url = api
    fake.route("/v3/carbon-intensity/past-range", Answer(status, {"error": "x"}, headers={"Retry-After": "7"}))
    with pytest.raises(error) as info:
        em(url).series(datetime(2024, 7, 1, tzinfo=UTC), 1)
    assert len(fake.seen) == attempts
    if status == 429:
        assert isinstance(info.value, SignalRateLimitedError)
        assert info.value.retry_after_s == 7
        assert "retry after 7 s" in str(info.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param("<html>gateway</html>", "not JSON", id="not-json"),
        pytest.param({"zone": "Z"}, "expected an object with a 'data' list", id="no-data-list"),
        pytest.param(
            {"data": [{"carbonIntensity": "high", "datetime": "2024-07-01T00:00Z"}]},
            "numeric carbonIntensity",
            id="text-ci",
        ),
        pytest.param(
            {"data": [{"carbonIntensity": True, "datetime": "2024-07-01T00:00Z"}]},
            "numeric carbonIntensity",
            id="bool-ci",
        ),
        pytest.param({"data": [em_record("2024-07-01T00:00:00", 1)]}, "has no time zone", id="naive-time"),
        pytest.param({"data": [em_record("2024-08-01T00:00:00Z", 1)]}, "no data points", id="wrong-hours"),
        pytest.param({"data": [em_record("2024-07-01T00:00:00Z", -3)]}, "negative", id="negative"),
    ],
)
def test_bad_response_shapes_are_typed(api, body, message):
    fake, url = api
    fake.route("/v3/carbon-intensity/past-range", (200, body))
    with pytest.raises(SignalResponseError, match=message):
        em(url).series(datetime(2024, 7, 1, tzinfo=UTC), 1)


def test_timeouts_are_retried_then_unavailable(api):
    fake, url = api
    fake.route("/v3/carbon-intensity/past-range", Answer(200, {"data": []}, delay_s=0.5))
    started = time.monotonic()
    with pytest.raises(SignalUnavailableError, match=r"3 attempts \(ReadTimeout"):
        em(url, http=fast(timeout_s=0.1)).series(datetime(2024, 7, 1, tzinfo=UTC), 1)
    assert time.monotonic() - started < 2.0  # 3 × 0.1 s, not 3 × 0.5 s
    assert len(fake.seen) == 3


def test_unreachable_hosts_are_unavailable():
    with socket.socket() as s:  # a port nobody listens on: bound, never accepted
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SignalUnavailableError, match="3 attempts"):
        em(f"http://127.0.0.1:{port}").series(datetime(2024, 7, 1, tzinfo=UTC), 1)


def test_http_settings_are_validated():
    with pytest.raises(SignalError, match="timeout_s > 0"):
        HttpJson(timeout_s=0)


# -- fallback --------------------------------------------------------------------------------


def test_fallback_holds_the_last_good_value_and_counts(api):
    fake, url = api
    good = {"data": [em_record("2024-07-01T00:00:00Z", 333)]}
    fake.route("/v3/carbon-intensity/past-range", (200, good), (500, "down"))
    reasons: list[str] = []
    p = FallbackProvider(em(url), "last", tampa_summer_carbon(), reasons.append)
    t0 = datetime(2024, 7, 1, tzinfo=UTC)
    assert p.ci_g_per_kwh(t0, 1).values[0] == 333
    held = p.ci_g_per_kwh(t0, 3)
    assert list(held.values) == [333, 333, 333]
    assert (held.filled_hours, held.fill_rule) == (3, "held the last good value")
    assert "SignalUnavailableError" in held.source
    assert (p.fallbacks, p.fallbacks_by_reason, reasons) == (
        1,
        {"SignalUnavailableError": 1},
        ["SignalUnavailableError"],
    )


def test_fallback_to_the_profile_and_strict_mode(api):
    fake, url = api
    fake.route("/v3/carbon-intensity/past-range", (401, "no"))
    t0 = datetime(2024, 7, 1, tzinfo=UTC)  # 20:00 in Tampa
    profile = FallbackProvider(em(url), "profile", tampa_summer_carbon())
    s = profile.series(t0, 2)
    assert list(s.values) == [tampa_summer_carbon().values[20], tampa_summer_carbon().values[21]]
    assert (s.filled_hours, s.fill_rule, profile.fallbacks) == (2, "embedded 24-hour profile", 1)
    # "last" with nothing good yet also answers with the profile
    assert FallbackProvider(em(url), "last", tampa_summer_carbon()).series(t0, 1).values[0] == s.values[0]
    strict = FallbackProvider(em(url), "fail", tampa_summer_carbon())
    with pytest.raises(SignalAuthError):
        strict.series(t0, 1)
    assert strict.fallbacks == 0


def test_non_api_errors_are_not_swallowed_by_the_fallback():
    p = FallbackProvider(tampa_summer_carbon(), "profile", tampa_summer_carbon())
    with pytest.raises(SignalError, match="naive"):
        p.series(datetime(2024, 7, 1), 1)  # a caller's bug, not an outage


# -- registry --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param(SignalSettings(carbon_source="electricitymaps"), "api_token", id="em-token"),
        pytest.param(SignalSettings(carbon_source="watttime", api_username="u"), "api_password", id="wt-password"),
    ],
)
def test_live_providers_need_credentials(settings, message):
    with pytest.raises(SignalError, match=message):
        carbon_provider(settings)


@pytest.mark.parametrize(
    ("settings", "primary"),
    [
        pytest.param(SignalSettings(carbon_source="electricitymaps", api_token="t"), ElectricityMapsProvider, id="em"),
        pytest.param(
            SignalSettings(carbon_source="watttime", api_username="u", api_password="p"), WattTimeProvider, id="wt"
        ),
        pytest.param(
            SignalSettings(carbon_source="ukci", fallback="fail", http_timeout_s=1.5, http_retries=1),
            UKCarbonIntensityProvider,
            id="uk",
        ),
    ],
)
def test_live_providers_from_settings_come_wrapped_in_their_fallback(settings, primary):
    p = carbon_provider_from_settings(settings)
    assert isinstance(p, FallbackProvider)
    assert isinstance(p, CarbonProvider)
    assert isinstance(p.primary, primary)
    assert p.mode == settings.fallback
    http = p.primary.http
    assert (http.timeout_s, http.retries) == (settings.http_timeout_s, settings.http_retries)
    assert p.profile.tz == settings.timezone


def test_malformed_base_urls_are_response_errors_not_retried():
    waits: list[float] = []
    with pytest.raises(SignalResponseError, match="request failed: InvalidURL"):
        em("http://", http=HttpJson(retries=3, sleep=waits.append)).series(datetime(2024, 7, 1, tzinfo=UTC), 1)
    assert waits == []
