"""24-hour profiles: local hours onto UTC windows across DST, and the embedded defaults' derivation."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import casa_sched.signals.profile as profile_module
from casa_sched.signals import (
    CI_UNIT,
    PRICE_UNIT,
    SUMMER_PRICE_USD_PER_KWH,
    TAMPA_SUMMER_CI_G_PER_KWH,
    DailyProfile,
    HourlySeries,
    SignalError,
    summer_price,
    tampa_summer_carbon,
)

NY = ZoneInfo("America/New_York")
HOURS = [float(h) for h in range(24)]  # a profile whose value is its local hour


@pytest.mark.parametrize(
    ("start_local", "hours", "expected"),
    [
        # 2024-03-10 spring forward in New York: local 01:00 EST is followed by 03:00 EDT
        pytest.param(datetime(2024, 3, 10, 0, tzinfo=NY), 4, [0, 1, 3, 4], id="spring-forward"),
        # 2024-11-03 fall back: local 01:00 occurs twice (EDT, then EST)
        pytest.param(datetime(2024, 11, 3, 0, tzinfo=NY), 4, [0, 1, 1, 2], id="fall-back"),
        # an ordinary summer day: 20:00 local is 00:00 UTC the next day
        pytest.param(datetime(2024, 7, 1, 20, tzinfo=NY), 5, [20, 21, 22, 23, 0], id="midnight-wrap"),
    ],
)
def test_profile_follows_local_time_across_dst(start_local, hours, expected):
    s = DailyProfile.of(HOURS, "America/New_York", CI_UNIT).series(start_local, hours)
    assert list(s.values) == expected
    assert s.start_utc == start_local.astimezone(UTC)


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)),
    st.integers(1, 96),
    st.sampled_from(["America/New_York", "America/Chicago", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata"]),
)
def test_each_utc_hour_takes_its_local_hours_value(t, hours, tz):
    zone = ZoneInfo(tz)
    s = DailyProfile.of(HOURS, tz, CI_UNIT).series(t.replace(tzinfo=UTC), hours)
    assert s.hours == hours
    for i, stamp in enumerate(s.timestamps_utc()):
        assert s.values[i] == stamp.astimezone(zone).hour


@given(st.lists(st.floats(0, 1000, allow_nan=False), min_size=24, max_size=24))
def test_profile_to_series_and_back_is_the_identity(values):
    # 31 July days in New York (no DST change): every local hour occurs 31 times
    p = DailyProfile.of(values, "America/New_York", CI_UNIT)
    back = DailyProfile.from_series(p.series(datetime(2024, 7, 1, tzinfo=NY), 31 * 24), "America/New_York")
    assert back.values == pytest.approx(values)


def test_unit_named_provider_methods():
    t = datetime(2024, 7, 10, 9, tzinfo=NY)
    assert tampa_summer_carbon().ci_g_per_kwh(t, 1).values[0] == TAMPA_SUMMER_CI_G_PER_KWH[9]
    assert summer_price().price_usd_per_kwh(t, 1).values[0] == SUMMER_PRICE_USD_PER_KWH[9]
    with pytest.raises(SignalError, match=r"gives \$/kWh, not g/kWh"):
        summer_price().ci_g_per_kwh(t, 1)


@pytest.mark.parametrize(
    ("values", "tz", "unit", "message"),
    [
        pytest.param([1.0] * 23, "UTC", CI_UNIT, "needs 24 values", id="23-values"),
        pytest.param([1.0] * 24, "Mars/Olympus", CI_UNIT, "unknown time zone", id="bad-zone"),
        pytest.param([-1.0] * 24, "UTC", CI_UNIT, ">= 0", id="negative-ci"),
        pytest.param([float("nan")] * 24, "UTC", PRICE_UNIT, "finite", id="nan"),
        pytest.param([1.0] * 24, "UTC", "kWh", "unit must be", id="bad-unit"),
    ],
)
def test_invalid_profiles_are_refused(values, tz, unit, message):
    with pytest.raises(SignalError, match=message):
        DailyProfile.of(values, tz, unit)


def test_negative_price_profiles_are_allowed_and_naive_starts_refused():
    p = DailyProfile.of([-0.001] * 24, "UTC", PRICE_UNIT)
    assert p.series(datetime(2024, 7, 1, tzinfo=UTC), 1).values[0] == -0.001
    with pytest.raises(SignalError, match="naive"):
        p.series(datetime(2024, 7, 1), 1)


def test_embedded_defaults_are_literal_and_plausible():
    assert len(TAMPA_SUMMER_CI_G_PER_KWH) == len(SUMMER_PRICE_USD_PER_KWH) == 24
    assert np.mean(TAMPA_SUMMER_CI_G_PER_KWH) == pytest.approx(410.9, abs=0.1)  # docstring: mean 410.9
    assert min(TAMPA_SUMMER_CI_G_PER_KWH) == TAMPA_SUMMER_CI_G_PER_KWH[9] == 371.1  # lowest at 09:00
    assert max(TAMPA_SUMMER_CI_G_PER_KWH) == TAMPA_SUMMER_CI_G_PER_KWH[20] == 437.8  # highest at 20:00
    assert np.mean(SUMMER_PRICE_USD_PER_KWH) == pytest.approx(0.0753, abs=0.0001)  # 75.3 $/MWh
    assert max(SUMMER_PRICE_USD_PER_KWH) == SUMMER_PRICE_USD_PER_KWH[17]  # 191.17 $/MWh at 17:00
    s = tampa_summer_carbon().series(datetime(2024, 7, 1, tzinfo=UTC), 48)
    assert isinstance(s, HourlySeries)
    assert s.filled_hours == 0
    assert s.source.startswith("embedded")


def test_embedded_tampa_carbon_profile_is_recomputed_from_the_real_data(shared_data: Path):
    # derivation (profile.py docstring): mean of ci_direct_gco2eq_per_kwh by local_hour over the
    # 8,832 summer rows of 2021-2024, empty cells skipped, rounded to 0.1 g/kWh
    d = pd.read_csv(shared_data / "carbon" / "derived_US-FLA-TEC_JunJulAug_2021-2024_localtime.csv")
    assert len(d) == 8832  # 4 summers × 92 days × 24 h
    assert int(d.ci_direct_gco2eq_per_kwh.isna().sum()) == 17
    by_hour = d.groupby("local_hour").ci_direct_gco2eq_per_kwh.mean().to_numpy()
    assert tuple(np.round(by_hour, 1)) == pytest.approx(TAMPA_SUMMER_CI_G_PER_KWH, abs=1e-9)
    # the local_hour column is the America/New_York hour of datetime_utc
    utc = pd.to_datetime(d.datetime_utc).dt.tz_localize("UTC")
    assert (utc.dt.tz_convert("America/New_York").dt.hour == d.local_hour).all()


def test_embedded_summer_price_profile_is_recomputed_from_ercot(shared_data: Path):
    # derivation (profile.py docstring): ERCOT HB_HUBAVG, rows whose Datetime (Local) month is
    # Jun-Aug in 2021-2024, mean Price (USD/MWh) by local hour, rounded to 0.01, ÷ 1000
    frames = [
        pd.read_csv(shared_data / "prices" / f"US-TEX-ERCO_electricity_prices_{y}.csv") for y in range(2021, 2025)
    ]
    prices = pd.concat(frames, ignore_index=True)
    local = pd.to_datetime(prices["Datetime (Local)"].str.slice(0, 19))  # wall-clock time, offset dropped
    summer = local.dt.month.isin([6, 7, 8]).to_numpy()
    assert int(summer.sum()) == 8832
    by_hour = prices[summer].groupby(local[summer].dt.hour.to_numpy())["Price (USD/MWh)"].mean().to_numpy()
    assert tuple(np.round(by_hour, 2) / 1000) == pytest.approx(SUMMER_PRICE_USD_PER_KWH, abs=1e-12)
    # the offsets are Central time (-05:00 in summer): ERCOT's local hour, as the docstring says
    assert set(prices["Datetime (Local)"][summer].str.slice(19)) == {"-05:00"}


def test_the_embedded_defaults_do_not_read_shared_data_at_run_time():
    src = Path(profile_module.__file__).read_text(encoding="utf-8")
    code = src.split('"""', 2)[2]  # after the module docstring, which names the source files
    assert "shared" not in code
    assert "read_csv" not in code
