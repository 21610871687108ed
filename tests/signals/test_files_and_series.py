"""Signal files (Electricity Maps, ISO prices), gap filling, profiles: real data and malformed input."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from casa_sched.signals import (
    SUMMER_PRICE_USD_PER_KWH,
    TAMPA_SUMMER_CI_G_PER_KWH,
    DailyProfile,
    FileProvider,
    HourlySeries,
    SignalError,
    SignalFileError,
    fill_missing,
    load_carbon_csv,
    load_price_csv,
    tampa_summer_carbon,
)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not present beside the repository")
NAN = math.nan


@pytest.mark.parametrize(
    ("values", "expected", "filled"),
    [
        # a 2-h gap between 10 and 40 is interpolated: 20, 30
        pytest.param([10, NAN, NAN, 40], [10, 20, 30, 40], 2, id="interpolate-short-gap"),
        pytest.param([1, 2, 3], [1, 2, 3], 0, id="nothing-missing"),
        # a leading gap cannot be interpolated: same hour one day later (index 0 + 24)
        pytest.param([NAN, *range(1, 30)], [24, *range(1, 30)], 1, id="open-start-next-day"),
    ],
)
def test_fill_missing(values, expected, filled):
    out, n = fill_missing(np.array(values, dtype=float))
    assert n == filled
    assert out == pytest.approx(expected)


def test_long_gaps_take_the_same_hour_a_day_earlier():
    day = np.arange(24, dtype=float)
    values = np.concatenate([day, np.full(5, NAN), day[5:]])  # hours 24..28 missing (> 3 h)
    out, n = fill_missing(values)
    assert n == 5
    assert out[24:29] == pytest.approx([0, 1, 2, 3, 4])  # from hours 0..4


def test_a_series_of_nothing_cannot_be_filled():
    with pytest.raises(SignalError, match="every hour is missing"):
        fill_missing(np.full(5, NAN))


@given(st.lists(st.one_of(st.floats(0, 1000), st.just(NAN)), min_size=2, max_size=60))
def test_short_gap_fill_stays_between_its_neighbours(raw):
    values = np.array(raw, dtype=float)
    if np.isnan(values).all():
        return
    try:
        out, _ = fill_missing(values)
    except SignalError:
        return  # gaps with nothing within a week: refused, never invented
    for i in np.flatnonzero(np.isnan(values)):
        lo = next((values[j] for j in range(i - 1, -1, -1) if not np.isnan(values[j])), None)
        hi = next((values[j] for j in range(i + 1, values.size) if not np.isnan(values[j])), None)
        gap = sum(1 for j in range(values.size) if np.isnan(values[j]) and _same_gap(values, int(i), j))
        if lo is not None and hi is not None and gap <= 3:
            assert min(lo, hi) - 1e-9 <= out[i] <= max(lo, hi) + 1e-9


def _same_gap(values: np.ndarray, i: int, j: int) -> bool:
    a, b = sorted((i, j))
    return bool(np.isnan(values[a : b + 1]).all())


def write_csv(tmp_path: Path, rows: list[Any], name: str = "ci.csv") -> Path:
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


CI_COL = "Carbon intensity gCO₂eq/kWh (direct)"


def test_carbon_csv_fills_missing_cells_and_hours(tmp_path):
    rows = [
        {"Datetime (UTC)": "2024-07-01 00:00:00", CI_COL: 100},
        {"Datetime (UTC)": "2024-07-01 01:00:00", CI_COL: ""},  # empty cell
        # 02:00 absent entirely
        {"Datetime (UTC)": "2024-07-01 03:00:00", CI_COL: 400},
    ]
    s = load_carbon_csv(write_csv(tmp_path, rows))
    # interpolated: 100 → 400 over three steps: 200, 300
    assert list(s.values) == pytest.approx([100, 200, 300, 400])
    assert s.filled_hours == 2
    assert s.start_utc == datetime(2024, 7, 1, tzinfo=UTC)
    assert FileProvider(s).series(datetime(2024, 7, 1, 1, tzinfo=UTC), 2).filled_hours == 2


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        pytest.param([{"Datetime (UTC)": "2024-07-01 00:00", "x": 1}], "missing column", id="no-ci-column"),
        pytest.param(
            [{"Datetime (UTC)": "2024-07-01 00:00", CI_COL: "abc"}], r":2: column .*not a number", id="non-numeric"
        ),
        pytest.param([{"Datetime (UTC)": "yesterday", CI_COL: 1}], "not a date-time", id="bad-time"),
        pytest.param(
            [{"Datetime (UTC)": "2024-07-01 00:00", CI_COL: 1}, {"Datetime (UTC)": "2024-07-01 00:00", CI_COL: 2}],
            r":3: duplicate hour",
            id="duplicate",
        ),
        pytest.param([{"Datetime (UTC)": "2024-07-01 00:30", CI_COL: 1}], "not an hour start", id="half-hour"),
        pytest.param([{"Datetime (UTC)": "2024-07-01 00:00", CI_COL: -5}], "negative", id="negative-ci"),
    ],
)
def test_malformed_carbon_files_are_refused_with_the_line(tmp_path, rows, message):
    with pytest.raises(SignalFileError, match=message):
        load_carbon_csv(write_csv(tmp_path, rows))


def test_missing_file_and_naive_local_column(tmp_path):
    with pytest.raises(SignalFileError, match="no such file"):
        load_price_csv(tmp_path / "absent.csv")
    path = write_csv(tmp_path, [{"Datetime (Local)": "2024-07-01 00:00", "Datetime (UTC)": "x", "Price (USD/MWh)": 1}])
    with pytest.raises(SignalFileError, match="not a date-time"):
        load_price_csv(path)


def test_prices_convert_to_dollars_per_kwh_and_may_be_negative(tmp_path):
    rows = [
        {"Datetime (UTC)": "2024-07-01 00:00:00+00:00", "Price (USD/MWh)": 50.0},
        {"Datetime (UTC)": "2024-07-01 01:00:00+00:00", "Price (USD/MWh)": -2.0},  # real in ERCOT
    ]
    s = load_price_csv(write_csv(tmp_path, rows, "p.csv"))
    assert list(s.values) == pytest.approx([0.05, -0.002])  # 50 $/MWh = 0.05 $/kWh


def test_window_outside_the_series_is_an_error():
    s = HourlySeries(datetime(2024, 1, 1, tzinfo=UTC), np.ones(3), "g/kWh", source="t")
    with pytest.raises(SignalError, match="covers"):
        s.window(datetime(2024, 1, 1, 2, tzinfo=UTC), 2)
    with pytest.raises(SignalError, match="naive"):
        s.value_at(datetime(2024, 1, 1))


def test_profile_follows_local_time_across_dst():
    ny = ZoneInfo("America/New_York")
    p = DailyProfile.of(list(range(24)), "America/New_York", "g/kWh")
    # 2024-03-10 is the spring-forward day: local 01:00 is followed by 03:00
    s = p.series(datetime(2024, 3, 10, 0, tzinfo=ny), 4)
    assert list(s.values) == [0, 1, 3, 4]
    assert (
        tampa_summer_carbon().series(datetime(2024, 7, 10, 9, tzinfo=ny), 1).values[0] == TAMPA_SUMMER_CI_G_PER_KWH[9]
    )


@given(st.datetimes(min_value=datetime(2021, 1, 1), max_value=datetime(2025, 1, 1)), st.integers(1, 72))
def test_profile_value_is_the_local_hours_value(t, hours):
    start = t.replace(tzinfo=UTC)
    p = DailyProfile.of([float(h) for h in range(24)], "America/Chicago", "g/kWh")
    s = p.series(start, hours)
    for i in range(hours):
        local = (s.start_utc + pd.Timedelta(hours=i).to_pytimedelta()).astimezone(ZoneInfo("America/Chicago"))
        assert s.values[i] == local.hour


@needs_data
def test_tampa_carbon_file_matches_its_sources_md():
    s = load_carbon_csv(DATA / "carbon" / "US-FLA-TEC.csv")
    assert s.hours == 35_064  # 2021-01-01 00:00 .. 2024-12-31 23:00 UTC
    assert s.filled_hours == 17  # "Missing CI values: TEC 17"
    ny = ZoneInfo("America/New_York")
    summer_2024 = s.sub(datetime(2024, 6, 1, tzinfo=ny), 92 * 24)
    assert summer_2024.values.mean() == pytest.approx(356, abs=2)  # SOURCES.md: 2024 mean 356


@needs_data
def test_iso_price_and_carbon_files_match_their_sources_md():
    p = load_price_csv(DATA / "prices" / "US-TEX-ERCO_electricity_prices_2023.csv")
    assert p.hours == 8760
    assert p.values.mean() * 1000 == pytest.approx(56, abs=1)  # ERCOT 2023 annual mean 56 USD/MWh
    c = load_carbon_csv(DATA / "carbon" / "iso" / "US-CAL-CISO_2022_hourly.csv")
    assert c.values.mean() == pytest.approx(196, abs=1)  # CISO 2022 mean direct CI 196 g/kWh


@needs_data
def test_embedded_profiles_are_recomputed_from_the_real_data():
    d = pd.read_csv(DATA / "carbon" / "derived_US-FLA-TEC_JunJulAug_2021-2024_localtime.csv")
    ci = d.groupby("local_hour").ci_direct_gco2eq_per_kwh.mean().to_numpy()
    assert np.round(ci, 1) == pytest.approx(TAMPA_SUMMER_CI_G_PER_KWH)
    frames = [
        pd.read_csv(DATA / "prices" / f"US-TEX-ERCO_electricity_prices_{y}.csv") for y in (2021, 2022, 2023, 2024)
    ]
    prices = pd.concat(frames)
    local = pd.to_datetime(prices["Datetime (Local)"].str.slice(0, 19))
    summer = local.dt.month.isin([6, 7, 8]).to_numpy()
    by_hour = prices[summer].groupby(local[summer].dt.hour.to_numpy())["Price (USD/MWh)"].mean().to_numpy()
    assert np.round(by_hour, 2) / 1000 == pytest.approx(SUMMER_PRICE_USD_PER_KWH)
