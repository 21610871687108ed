"""Live carbon providers against a real HTTP server on loopback: shapes, retries, errors, fallback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from casa_sched.settings import SignalSettings
from casa_sched.signals import tampa_summer_carbon
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

T0 = datetime(2024, 7, 1, 0, tzinfo=UTC)


class FakeAPI:
    """Routes path → list of (status, body) answered in turn (the last one repeats)."""

    def __init__(self) -> None:
        self.routes: dict[str, list[tuple[int, Any]]] = {}
        self.seen: list[tuple[str, dict[str, str]]] = []


@pytest.fixture
def api() -> Iterator[tuple[FakeAPI, str]]:
    fake = FakeAPI()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            fake.seen.append((self.path, dict(self.headers)))
            answers = fake.routes.get(path, [(404, {"error": "no route"})])
            status, body = answers.pop(0) if len(answers) > 1 else answers[0]
            payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


FAST = HttpJson(timeout_s=2.0, retries=2, backoff_s=0.01)


def test_electricity_maps_past_range_averages_to_hours(api):
    fake, url = api
    fake.routes["/v3/carbon-intensity/past-range"] = [(200, {"zone": "US-FLA-TEC", "data": [
        {"carbonIntensity": 400, "datetime": "2024-07-01T00:00:00.000Z"},
        {"carbonIntensity": 420, "datetime": "2024-07-01T01:00:00.000Z"},
    ]})]  # fmt: skip
    s = ElectricityMapsProvider("US-FLA-TEC", "tok", base_url=url, http=FAST).series(T0, 2)
    assert list(s.values) == [400, 420]
    assert fake.seen[0][1].get("auth-token") == "tok"
    assert "zone=US-FLA-TEC" in fake.seen[0][0]


def test_watttime_logs_in_and_converts_lbs_per_mwh(api):
    fake, url = api
    fake.routes["/login"] = [(200, {"token": "abc"})]
    fake.routes["/v3/historical"] = [(200, {"data": [
        {"point_time": "2024-07-01T00:00:00+00:00", "value": 1000.0},
        {"point_time": "2024-07-01T00:05:00+00:00", "value": 1200.0},
    ], "meta": {"units": "lbs_co2_per_mwh"}})]  # fmt: skip
    s = WattTimeProvider("FPL", "u", "p", base_url=url, http=FAST).series(T0, 1)
    # mean 1100 lbs/MWh × 0.453592 = 498.95 g/kWh
    assert s.values[0] == pytest.approx(1100 * LB_PER_MWH_TO_G_PER_KWH)
    assert fake.seen[1][1].get("Authorization") == "Bearer abc"


def test_uk_api_prefers_actual_then_forecast_and_counts_holes(api):
    fake, url = api
    fake.routes["/intensity/2024-07-01T00:00Z/2024-07-01T03:00Z"] = [(200, {"data": [
        {"from": "2024-07-01T00:00Z", "to": "2024-07-01T00:30Z", "intensity": {"forecast": 100, "actual": 110}},
        {"from": "2024-07-01T00:30Z", "to": "2024-07-01T01:00Z", "intensity": {"forecast": 130, "actual": None}},
        {"from": "2024-07-01T02:00Z", "to": "2024-07-01T02:30Z", "intensity": {"forecast": 90, "actual": 90}},
    ]})]  # fmt: skip
    s = UKCarbonIntensityProvider(base_url=url, http=FAST).series(T0, 3)
    # hour 0: (110 + 130) / 2 = 120; hour 1 missing → interpolated (120 + 90) / 2 = 105; hour 2: 90
    assert list(s.values) == pytest.approx([120, 105, 90])
    assert s.filled_hours == 1


def test_server_errors_are_retried_then_succeed(api):
    fake, url = api
    ok = {"data": [{"carbonIntensity": 300, "datetime": "2024-07-01T00:00:00Z"}]}
    fake.routes["/v3/carbon-intensity/past-range"] = [(503, "busy"), (500, "oops"), (200, ok)]
    s = ElectricityMapsProvider("Z", "t", base_url=url, http=FAST).series(T0, 1)
    assert s.values[0] == 300
    assert len(fake.seen) == 3


@pytest.mark.parametrize(
    ("status", "error"),
    [
        pytest.param(401, SignalAuthError, id="unauthorised"),
        pytest.param(429, SignalRateLimitedError, id="rate-limited"),
        pytest.param(404, SignalResponseError, id="not-found"),
        pytest.param(500, SignalUnavailableError, id="down"),
    ],
)
def test_http_errors_are_typed(api, status, error):
    fake, url = api
    fake.routes["/v3/carbon-intensity/past-range"] = [(status, {"error": "x"})]
    with pytest.raises(error):
        ElectricityMapsProvider("Z", "t", base_url=url, http=FAST).series(T0, 1)
    if status != 500:
        assert len(fake.seen) == 1  # 4xx is never retried


def test_bad_shapes_and_unreachable_hosts(api):
    fake, url = api
    fake.routes["/v3/carbon-intensity/past-range"] = [(200, {"data": [{"carbonIntensity": "high"}]})]
    with pytest.raises(SignalResponseError, match="numeric carbonIntensity"):
        ElectricityMapsProvider("Z", "t", base_url=url, http=FAST).series(T0, 1)
    with pytest.raises(SignalUnavailableError, match="3 attempts"):
        ElectricityMapsProvider("Z", "t", base_url="http://127.0.0.1:9", http=FAST).series(T0, 1)


def test_fallback_holds_the_last_good_value_or_uses_the_profile(api):
    fake, url = api
    fake.routes["/v3/carbon-intensity/past-range"] = [
        (200, {"data": [{"carbonIntensity": 333, "datetime": "2024-07-01T00:00:00Z"}]}),
        (500, "down"),
    ]
    reasons: list[str] = []
    live = ElectricityMapsProvider("Z", "t", base_url=url, http=FAST)
    last = FallbackProvider(live, "last", tampa_summer_carbon(), reasons.append)
    assert last.series(T0, 1).values[0] == 333
    held = last.series(T0, 3)
    assert list(held.values) == [333, 333, 333]
    assert held.filled_hours == 3
    assert reasons == ["SignalUnavailableError"]
    profile = FallbackProvider(live, "profile", tampa_summer_carbon(), reasons.append)
    s = profile.series(T0, 1)  # 2024-07-01 00:00 UTC = 20:00 in Tampa
    assert s.values[0] == tampa_summer_carbon().series(T0, 1).values[0]
    strict = FallbackProvider(live, "fail", tampa_summer_carbon(), reasons.append)
    with pytest.raises(SignalUnavailableError):
        strict.series(T0, 1)


def test_provider_from_settings_needs_credentials():
    with pytest.raises(Exception, match="api_token"):
        carbon_provider_from_settings(SignalSettings(carbon_source="electricitymaps"))
    assert carbon_provider_from_settings(SignalSettings()).series(T0, 1).values[0] > 0
