"""HourlySeries (lookup, windows, units, 24-hour resampling) and the gap-filling rules."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from casa_sched.signals import (
    CI_UNIT,
    PRICE_UNIT,
    FillRule,
    GapTooLongError,
    HourlySeries,
    SignalError,
    fill_missing,
)

NAN = math.nan
T0 = datetime(2024, 7, 1, tzinfo=UTC)


# -- fill rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected", "filled"),
    [
        pytest.param([1, 2, 3], [1, 2, 3], 0, id="nothing-missing"),
        # one hour between 10 and 20: (10 + 20) / 2 = 15
        pytest.param([10, NAN, 20], [10, 15, 20], 1, id="interpolate-1h"),
        # 2 h between 10 and 40: steps of (40 - 10) / 3 = 10 → 20, 30
        pytest.param([10, NAN, NAN, 40], [10, 20, 30, 40], 2, id="interpolate-2h"),
        # 3 h (the limit) between 0 and 100: steps of 25 → 25, 50, 75
        pytest.param([0, NAN, NAN, NAN, 100], [0, 25, 50, 75, 100], 3, id="interpolate-3h-limit"),
        # a leading hour cannot be interpolated: same hour of the next day, index 0 + 24 → value 24
        pytest.param([NAN, *range(1, 30)], [24, *range(1, 30)], 1, id="open-start-next-day"),
        # a trailing hour: same hour of the previous day, index 29 - 24 = 5 → value 5
        pytest.param([*range(29), NAN], [*range(29), 5], 1, id="open-end-previous-day"),
    ],
)
def test_fill_missing_table(values, expected, filled):
    out, n = fill_missing(np.array(values, dtype=float))
    assert n == filled
    assert out == pytest.approx(expected)


def test_gaps_longer_than_3_h_take_the_same_hour_of_the_previous_day():
    day = np.arange(24, dtype=float) * 10  # hour h of day 0 holds 10·h
    values = np.concatenate([day, np.full(4, NAN), day[4:] + 1])  # hours 24..27 missing (4 h > 3 h)
    out, n = fill_missing(values)
    assert n == 4
    assert out[24:28] == pytest.approx([0, 10, 20, 30])  # from hours 0..3, not interpolated 0→41


def test_the_interpolation_limit_is_configurable():
    values = np.array([*range(24), 24.0, NAN, NAN, 27.0])
    out, _ = fill_missing(values, FillRule(max_interpolate_h=1))
    # 2 h gap > 1 h: hours 25, 26 copy hours 1, 2 of the previous day
    assert out[25:27] == pytest.approx([1, 2])
    out, _ = fill_missing(values, FillRule(max_interpolate_h=2))
    assert out[25:27] == pytest.approx([25, 26])  # 24 → 27 in steps of 1


@pytest.mark.parametrize(
    ("values", "rule", "message"),
    [
        pytest.param([NAN, NAN], FillRule(), "every hour is missing", id="all-missing"),
        pytest.param(
            [1, NAN, NAN, NAN, NAN, 6], FillRule(long_gaps="error"), r"gap of 4 h at hours 1\.\.4", id="error-rule"
        ),
        pytest.param([NAN, 1, 2], FillRule(long_gaps="error"), r"gap of 1 h at hours 0\.\.0", id="error-rule-open-end"),
        # 5 h gap in a 10-h series: no day 24 h away exists
        pytest.param([1, NAN, NAN, NAN, NAN, NAN, 2, 3, 4, 5], FillRule(), "no known value", id="nothing-a-day-away"),
    ],
)
def test_gaps_the_rule_cannot_fill_are_refused(values, rule, message):
    with pytest.raises(GapTooLongError, match=message):
        fill_missing(np.array(values, dtype=float), rule)


def test_fill_rules_describe_themselves():
    assert (
        FillRule().describe().startswith("linear interpolation for gaps <= 3 h, else the same hour of the previous day")
    )
    assert "refused" in FillRule(long_gaps="error").describe()
    with pytest.raises(SignalError, match="max_interpolate_h"):
        FillRule(max_interpolate_h=-1)


finite = st.floats(0, 1000, allow_nan=False)


@given(st.lists(st.one_of(finite, st.just(NAN)), min_size=2, max_size=80))
def test_filling_never_leaves_the_neighbours_range_and_counts_every_hour(raw):
    values = np.array(raw, dtype=float)
    missing = np.isnan(values)
    try:
        out, n = fill_missing(values)
    except GapTooLongError:
        return  # refused, never invented
    assert n == int(missing.sum())
    assert not np.isnan(out).any()
    assert out[~missing] == pytest.approx(values[~missing])  # known hours untouched
    known = values[~missing]
    for i in np.flatnonzero(missing):
        a, b = i, i
        while a > 0 and missing[a - 1]:
            a -= 1
        while b < values.size and missing[b]:
            b += 1
        if a > 0 and b < values.size and b - a <= 3:  # interpolated: between its two neighbours
            lo, hi = sorted((values[a - 1], values[b]))
            assert lo - 1e-9 <= out[i] <= hi + 1e-9
        else:  # copied from a known hour a whole number of days away
            assert out[i] in known
            assert any(
                0 <= i + 24 * d < values.size and not missing[i + 24 * d] and values[i + 24 * d] == out[i]
                for d in range(-7, 8)
                if d
            )


# -- the series type -------------------------------------------------------------------------


def series(values, unit=CI_UNIT, start=T0, **kw) -> HourlySeries:
    return HourlySeries(start, np.array(values, dtype=float), unit, source="t", **kw)


def test_lookup_by_datetime_in_any_zone():
    s = series([100, 200, 300])
    assert s.value_at(datetime(2024, 7, 1, 1, 59, tzinfo=UTC)) == 200  # inside hour 1
    # 2024-06-30 22:30 in New York (EDT, UTC-4) is 02:30 UTC → hour 2
    assert s.value_at(datetime(2024, 6, 30, 22, 30, tzinfo=ZoneInfo("America/New_York"))) == 300
    with pytest.raises(SignalError, match="outside"):
        s.value_at(datetime(2024, 7, 1, 3, tzinfo=UTC))
    with pytest.raises(SignalError, match="naive"):
        s.value_at(datetime(2024, 7, 1))


def test_windows_and_sub_series_keep_their_fill_counts():
    s = series([1, 2, 3, 4], filled_hours=1, fill_rule="r", filled_mask=np.array([False, True, False, False]))
    assert list(s.window(T0 + timedelta(hours=1), 2)) == [2, 3]
    part = s.sub(T0 + timedelta(hours=2), 2)
    assert (part.start_utc, list(part.values), part.filled_hours, part.fill_rule) == (
        T0 + timedelta(hours=2),
        [3, 4],
        0,
        "none",
    )
    assert s.sub(T0, 2).filled_hours == 1
    with pytest.raises(SignalError, match="covers"):
        s.window(T0 + timedelta(hours=3), 2)
    with pytest.raises(SignalError, match="at least 1 hour"):
        s.window(T0, 0)


def test_timestamps_are_explicit_utc_hour_starts():
    s = series([1, 2])
    assert s.timestamps_utc() == [T0, T0 + timedelta(hours=1)]
    assert all(t.tzinfo is not None for t in s.timestamps_utc())
    assert s.end_utc == T0 + timedelta(hours=2)


def test_unit_named_views_check_the_unit():
    ci = series([1.0])
    price = series([0.05], PRICE_UNIT)
    assert list(ci.ci_g_per_kwh) == [1.0]
    assert list(price.price_usd_per_kwh) == [0.05]
    with pytest.raises(SignalError, match=r"holds g/kWh, not \$/kWh"):
        _ = ci.price_usd_per_kwh


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"start": datetime(2024, 7, 1)}, "UTC datetime", id="naive-start"),
        pytest.param(
            {"start": datetime(2024, 7, 1, tzinfo=timezone(timedelta(hours=2)))}, "UTC datetime", id="non-utc"
        ),
        pytest.param({"start": T0 + timedelta(minutes=30)}, "hour start", id="half-hour"),
        pytest.param({"values": []}, "at least one", id="empty"),
        pytest.param({"values": [1, NAN]}, "finite", id="nan"),
        pytest.param({"values": [-1]}, ">= 0", id="negative-ci"),
        pytest.param({"unit": "kg/kWh"}, "unit must be", id="bad-unit"),
        pytest.param({"filled_hours": 2}, "filled_hours", id="count-too-big"),
    ],
)
def test_invalid_series_are_refused(kwargs, message):
    args = {"start": T0, "values": [1.0], "unit": CI_UNIT} | kwargs
    with pytest.raises(SignalError, match=message):
        series(**args)


def test_negative_prices_are_allowed():
    assert series([-0.002], PRICE_UNIT).values[0] == -0.002  # ERCOT has negative hours


def test_values_are_a_frozen_copy():
    raw = np.array([1.0, 2.0])
    s = series(raw)
    raw[0] = 99
    assert s.values[0] == 1.0
    with pytest.raises(ValueError, match="read-only"):
        s.values[0] = 5


def test_resampling_to_a_local_24_hour_profile():
    # two days of 0..23 UTC, then the same + 100: the mean per UTC hour h is h + 50
    values = [*range(24), *(h + 100 for h in range(24))]
    s = series(values)
    assert s.daily_profile(UTC) == pytest.approx([h + 50 for h in range(24)])
    # in New York (EDT, UTC-4) local hour h is UTC hour h + 4
    assert s.daily_profile(ZoneInfo("America/New_York"))[0] == pytest.approx(54)
    with pytest.raises(SignalError, match="no value at local hour"):
        series([1, 2]).daily_profile(UTC)
