"""CSV loaders on small files made here: formats, header variants, gap filling and malformed input."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from casa_sched.signals import (
    CI_UNIT,
    PRICE_UNIT,
    FileProvider,
    FillRule,
    SignalError,
    SignalFileError,
    load_carbon_csv,
    load_price_csv,
)

EM_HEADER = "Datetime (UTC),Zone id,Carbon intensity gCO₂eq/kWh (direct),Carbon intensity gCO₂eq/kWh (Life cycle)"
ISO_HEADER = "Datetime (UTC),Zone Id,Carbon Intensity gCO₂eq/kWh (direct),Carbon Intensity gCO₂eq/kWh (LCA)"
PRICE_HEADER = "Datetime (UTC),Datetime (Local),Price (USD/MWh)"
T0 = datetime(2024, 7, 1, tzinfo=UTC)


def write(tmp_path: Path, header: str, rows: list[str], name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_electricity_maps_export_direct_and_life_cycle(tmp_path):
    path = write(tmp_path, EM_HEADER, ["2024-07-01 00:00:00,Z,400.5,500", "2024-07-01 01:00:00,Z,410,510"])
    direct = load_carbon_csv(path)
    assert (direct.unit, direct.start_utc, list(direct.ci_g_per_kwh)) == (CI_UNIT, T0, [400.5, 410])
    assert direct.filled_hours == 0
    assert direct.fill_rule == "none"
    assert list(load_carbon_csv(path, "lifecycle").values) == [500, 510]


def test_iso_export_capitalised_header_and_lca_column(tmp_path):
    path = write(tmp_path, ISO_HEADER, ["2023-01-01 00:00:00,Z,269.79,318.54"])
    assert load_carbon_csv(path).values[0] == 269.79
    assert load_carbon_csv(path, "lifecycle").values[0] == 318.54


def test_header_with_ascii_2_instead_of_subscript(tmp_path):
    path = write(tmp_path, "Datetime (UTC),Carbon intensity gCO2eq/kWh (direct)", ["2024-07-01 00:00,5"])
    assert load_carbon_csv(path).values[0] == 5


def test_derived_local_time_file(tmp_path):
    header = (
        "datetime_utc,datetime_local_America_New_York,local_hour,ci_direct_gco2eq_per_kwh,ci_lifecycle_gco2eq_per_kwh"
    )
    path = write(tmp_path, header, ["2021-06-01 04:00:00,2021-06-01T00:00:00-04:00,0,517.73,634.33"])
    s = load_carbon_csv(path)
    assert (s.start_utc, s.values[0]) == (datetime(2021, 6, 1, 4, tzinfo=UTC), 517.73)
    assert load_carbon_csv(path, "lifecycle").values[0] == 634.33


def test_empty_cells_and_absent_hours_are_filled_and_counted(tmp_path):
    rows = [
        "2024-07-01 00:00:00,Z,100,",
        "2024-07-01 01:00:00,Z,,",  # empty cell
        # 02:00 absent entirely
        "2024-07-01 03:00:00,Z,400,",
    ]
    s = load_carbon_csv(write(tmp_path, EM_HEADER, rows))
    # a 2-h gap between 100 and 400, interpolated in steps of (400 - 100) / 3 = 100: 200, 300
    assert list(s.values) == pytest.approx([100, 200, 300, 400])
    assert s.filled_hours == 2
    assert s.fill_rule.startswith("linear interpolation for gaps <= 3 h")
    assert s.filled_mask is not None
    assert list(s.filled_mask) == [False, True, True, False]
    assert FileProvider(s).ci_g_per_kwh(T0 + (s.end_utc - T0) / 4, 2).filled_hours == 2  # hours 1-2


def test_rows_out_of_order_are_sorted(tmp_path):
    s = load_carbon_csv(write(tmp_path, EM_HEADER, ["2024-07-01 01:00:00,Z,2,", "2024-07-01 00:00:00,Z,1,"]))
    assert list(s.values) == [1, 2]


def test_a_stricter_fill_rule_refuses_long_gaps(tmp_path):
    rows = ["2024-07-01 00:00:00,Z,1,", "2024-07-01 05:00:00,Z,6,"]  # 4 missing hours
    with pytest.raises(SignalFileError, match=r"4 missing hour\(s\) from 2024-07-01T01:00:00\+00:00"):
        load_carbon_csv(write(tmp_path, EM_HEADER, rows), fill=FillRule(long_gaps="error"))


def test_a_period_of_a_file_with_separate_summers(tmp_path):
    rows = ["2023-08-31 23:00:00,Z,1,", "2024-06-01 04:00:00,Z,2,", "2024-06-01 05:00:00,Z,3,"]
    path = write(tmp_path, EM_HEADER, rows)
    with pytest.raises(SignalFileError, match="load one period with start=/end="):
        load_carbon_csv(path)
    ny = ZoneInfo("America/New_York")
    s = load_carbon_csv(path, start=datetime(2024, 6, 1, tzinfo=ny), end=datetime(2024, 9, 1, tzinfo=ny))
    assert (s.start_utc, list(s.values)) == (datetime(2024, 6, 1, 4, tzinfo=UTC), [2, 3])


def test_prices_convert_usd_per_mwh_to_usd_per_kwh_and_may_be_negative(tmp_path):
    rows = [
        "2024-07-01 00:00:00+00:00,2024-06-30 19:00:00-05:00,50.0",
        "2024-07-01 01:00:00+00:00,2024-06-30 20:00:00-05:00,-2.0",  # negative hours are real in ERCOT
    ]
    s = load_price_csv(write(tmp_path, PRICE_HEADER, rows))
    assert s.unit == PRICE_UNIT
    assert list(s.price_usd_per_kwh) == pytest.approx([0.05, -0.002])  # 50 $/MWh / 1000 = 0.05 $/kWh


def test_offsets_are_converted_to_utc(tmp_path):
    rows = ["2024-06-30 20:00:00-04:00,x,10", "2024-06-30 21:00:00-04:00,x,20"]
    s = load_price_csv(write(tmp_path, PRICE_HEADER, rows))
    assert s.start_utc == T0  # 20:00 EDT = 00:00 UTC


@pytest.mark.parametrize(
    ("header", "rows", "message"),
    [
        pytest.param(
            "Datetime (UTC),x",
            ["2024-07-01 00:00,1"],
            r"missing column 'Carbon intensity gCO₂eq/kWh \(direct\)'",
            id="no-ci-column",
        ),
        pytest.param(
            "When,Carbon intensity gCO₂eq/kWh (direct)",
            ["2024-07-01 00:00,1"],
            r"missing column 'Datetime \(UTC\)'",
            id="no-time-column",
        ),
        pytest.param(
            EM_HEADER,
            ["2024-07-01 00:00,Z,1,", "2024-07-01 01:00,Z,abc,"],
            r"f\.csv:3: column 'Carbon intensity gCO₂eq/kWh \(direct\)': not a number: 'abc'",
            id="non-numeric",
        ),
        pytest.param(EM_HEADER, ["2024-07-01 00:00,Z,inf,"], "not a finite number", id="infinite"),
        pytest.param(
            EM_HEADER, ["yesterday,Z,1,"], r":2: column 'Datetime \(UTC\)': not a date-time: 'yesterday'", id="bad-time"
        ),
        pytest.param(
            EM_HEADER,
            ["2024-07-01 00:00,Z,1,", "2024-07-01 00:00,Z,2,"],
            r":3: column .*duplicate hour 2024-07-01T00:00:00\+00:00 \(first on line 2\)",
            id="duplicate",
        ),
        pytest.param(EM_HEADER, ["2024-07-01 00:30,Z,1,"], "is not an hour start", id="half-hour"),
        pytest.param(EM_HEADER, ["2024-07-01 00:00,Z,-5,"], "negative carbon intensity -5.0", id="negative-ci"),
        pytest.param(
            EM_HEADER,
            ["2024-07-01 00:00+00:00,Z,1,", "2024-07-01 01:00,Z,1,"],
            r":3: .*mixes time stamps with and without an offset",
            id="mixed-offsets",
        ),
        pytest.param(
            EM_HEADER, ["2024-07-01 00:00,Z,,", "2024-07-01 01:00,Z,,"], "every hour is missing", id="all-empty"
        ),
        pytest.param(EM_HEADER, [], "no data rows", id="header-only"),
    ],
)
def test_malformed_carbon_files_name_file_column_and_line(tmp_path, header, rows, message):
    with pytest.raises(SignalFileError, match=message):
        load_carbon_csv(write(tmp_path, header, rows))


def test_naive_stamps_are_read_as_utc_only_because_the_column_says_so(tmp_path):
    path = write(tmp_path, "Datetime (Local),Price (USD/MWh)", ["2024-07-01 00:00,1"])
    with pytest.raises(SignalFileError, match=r"missing column 'Datetime \(UTC\)'"):
        load_price_csv(path)  # a local-time column alone is never guessed at
    path = write(tmp_path, "Datetime (UTC),Price (USD/MWh)", ["2024-07-01 00:00,1"])
    assert load_price_csv(path).start_utc == T0


def test_naive_period_bounds_are_refused(tmp_path):
    path = write(tmp_path, EM_HEADER, ["2024-07-01 00:00,Z,1,"])
    with pytest.raises(SignalError, match="naive datetime"):
        load_carbon_csv(path, start=datetime(2024, 7, 1))


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(SignalFileError, match=r"absent\.csv: no such file"):
        load_price_csv(tmp_path / "absent.csv")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("Datetime (UTC),Price (USD/MWh)\n2024-07-01 00:00,\xe9\n".encode("latin-1"))
    with pytest.raises(SignalFileError, match="not a readable UTF-8 CSV"):
        load_price_csv(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(SignalFileError, match="not a readable"):
        load_price_csv(empty)


def test_file_errors_are_signal_errors():
    assert issubclass(SignalFileError, SignalError)
    assert issubclass(SignalError, ValueError)
