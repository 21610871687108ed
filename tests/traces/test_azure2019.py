"""Loading the Azure Functions 2019 trace: the real sample, a tiny public-layout day, bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from casa_sched.traces import (
    AzureTrace,
    DuplicateFunctionError,
    TraceColumnError,
    TraceError,
    TraceFileMissingError,
    TraceValueError,
    detect_layout,
    load_azure2019,
)

# ---- the real 500-function sample, checked against its published figures ----------------------


def test_sample_totals_match_sources(sample_trace: AzureTrace) -> None:
    w = sample_trace.workload
    assert sample_trace.layout == "sample"
    assert (w.n_functions, w.n_minutes, w.start_minute) == (500, 480, 480)
    assert w.total_invocations == 3_037_902
    totals = w.totals()
    assert (int(totals.min()), int(totals.max())) == (1, 1_915_521)
    assert sample_trace.dropped_no_duration == ()
    assert sample_trace.memory_imputed == ()


def test_sample_trigger_mix(sample_trace: AzureTrace) -> None:
    triggers = sample_trace.workload.triggers
    expected = {"timer": 247, "http": 139, "queue": 69, "orchestration": 25, "event": 14, "storage": 5, "others": 1}
    assert {t: triggers.count(t) for t in expected} == expected


def test_sample_active_functions_per_epoch(sample_trace: AzureTrace) -> None:
    active = sample_trace.workload.active_per_epoch(15)
    assert active.size == 32  # 480 min / 15 min
    assert (int(active.min()), int(active.max())) == (268, 344)


def test_sample_t_ave_quantiles(sample_trace: AzureTrace) -> None:
    # The sample's notes quote the lower-median convention ("inverted_cdf"); 13 functions report 0 ms and
    # are floored at 1 ms, which sits below p10 and so moves no quoted quantile.
    t_ms = sample_trace.workload.t_ave_s * 1000
    p10, p50, p90, p99 = np.quantile(t_ms, [0.1, 0.5, 0.9, 0.99], method="inverted_cdf")
    assert (p10, p50) == (21.0, 561.0)
    assert p90 == pytest.approx(12_000, rel=0.01)  # "12 s" (12,035 ms)
    assert p99 == pytest.approx(115_000, rel=0.01)  # "115 s" (115,150 ms)
    assert len(sample_trace.zero_average_floored) == 13
    assert float(t_ms.min()) == 1.0


def test_sample_busy_cores_calibration(sample_trace: AzureTrace) -> None:
    # docs/architecture.md "Models": Σ requests · T_ave / 28,800 s ≈ 53 cores on average, 128 at the busiest minute.
    w = sample_trace.workload
    assert w.mean_busy_cores() == pytest.approx(53.21, abs=0.01)
    assert float(w.busy_cores().max()) == pytest.approx(127.8, abs=0.1)


def test_sample_memory_is_per_app(sample_trace: AzureTrace) -> None:
    mem = sample_trace.workload.memory_mb
    assert float(np.median(mem)) == pytest.approx(57.5)
    assert float(mem.min()) > 0


# ---- a tiny public-layout day, end to end -------------------------------------------------------

MINUTES = [str(m) for m in range(1, 1441)]


def _write_day(
    root: Path,
    day: int = 3,
    *,
    inv_rows: list[list[str]] | None = None,
    dur_rows: list[list[str]] | None = None,
    mem_rows: list[list[str]] | None = None,
    inv_header: list[str] | None = None,
) -> None:
    def counts(pattern: dict[int, int]) -> list[str]:
        row = ["0"] * 1440
        for minute, c in pattern.items():
            row[minute] = str(c)
        return row

    if inv_rows is None:
        inv_rows = [
            ["o1", "a1", "f1", "http", *counts({0: 2, 480: 5, 1439: 1})],
            ["o1", "a1", "f2", "timer", *counts({i: 1 for i in range(0, 1440, 60)})],
            ["o2", "a2", "f3", "queue", *counts({700: 7})],
            ["o3", "a3", "f4", "event", *counts({5: 1})],  # no durations row -> dropped
        ]
    if dur_rows is None:
        dur_rows = [
            ["o1", "a1", "f1", "250", "8", "1", "900", "1", "1", "100", "200", "300", "800", "900"],
            ["o1", "a1", "f2", "0", "24", "0", "1", "0", "0", "0", "0", "0", "1", "1"],
            ["o2", "a2", "f3", "1500", "7", "1000", "2000", "1000", "1000", "1200", "1500", "1800", "2000", "2000"],
        ]
    if mem_rows is None:
        mem_rows = [
            ["o1", "a1", "10", "128", *["128"] * 8],
            # a2 has no memory row -> median of the file's apps
            ["o9", "a9", "10", "64", *["64"] * 8],
        ]
    inv_header = inv_header or ["HashOwner", "HashApp", "HashFunction", "Trigger", *MINUTES]
    dur_header = ["HashOwner", "HashApp", "HashFunction", "Average", "Count", "Minimum", "Maximum",
                  *(f"percentile_Average_{p}" for p in (0, 1, 25, 50, 75, 99, 100))]
    mem_header = ["HashOwner", "HashApp", "SampleCount", "AverageAllocatedMb",
                  *(f"AverageAllocatedMb_pct{p}" for p in (1, 5, 25, 50, 75, 95, 99, 100))]
    for name, header, rows in (
        (f"invocations_per_function_md.anon.d{day:02d}.csv", inv_header, inv_rows),
        (f"function_durations_percentiles.anon.d{day:02d}.csv", dur_header, dur_rows),
        (f"app_memory_percentiles.anon.d{day:02d}.csv", mem_header, mem_rows),
    ):
        (root / name).write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")


def test_tiny_public_day_end_to_end(tmp_path: Path) -> None:
    _write_day(tmp_path)
    assert detect_layout(tmp_path) == ("azure2019", (3,))
    trace = load_azure2019(tmp_path)  # one day present: day may be omitted
    w = trace.workload
    assert trace.day == 3
    assert w.function_ids == ("f1", "f2", "f3")
    assert trace.dropped_no_duration == ("f4",)
    assert w.start_minute == 0  # column "1" is 00:00-00:01
    assert w.n_minutes == 1440
    # f1: 2 + 5 + 1 = 8; f2: one per hour = 24; f3: 7
    assert w.totals().tolist() == [8, 24, 7]
    assert int(w.counts[0, 480]) == 5
    # T_ave: 250 ms -> 0.25 s; 0 ms -> floored to 1 ms; 1500 ms -> 1.5 s
    assert w.t_ave_s.tolist() == [0.25, 0.001, 1.5]
    assert trace.zero_average_floored == ("f2",)
    # memory: a1 -> 128 MB for both its functions; a2 missing -> median(128, 64) = 96 MB
    assert w.memory_mb.tolist() == [128.0, 128.0, 96.0]
    assert trace.memory_imputed == ("f3",)
    assert w.triggers == ("http", "timer", "queue")
    # 1440 min / 15 = 96 epochs; f1 is active in epochs 0 (minute 0), 32 (480) and 95 (1439)
    assert np.flatnonzero(w.active_mask()[0]).tolist() == [0, 32, 95]


def test_two_days_need_a_choice(tmp_path: Path) -> None:
    _write_day(tmp_path, day=1)
    _write_day(tmp_path, day=2)
    with pytest.raises(TraceError, match=r"days \[1, 2\]"):
        load_azure2019(tmp_path)
    assert load_azure2019(tmp_path, day=2).day == 2


# ---- malformed inputs give typed errors naming file, column and line ---------------------------


def test_missing_directory_says_how_to_obtain(tmp_path: Path) -> None:
    with pytest.raises(TraceFileMissingError, match="AzurePublicDataset"):
        load_azure2019(tmp_path / "nope")


def test_missing_file(tmp_path: Path) -> None:
    _write_day(tmp_path)
    (tmp_path / "app_memory_percentiles.anon.d03.csv").unlink()
    with pytest.raises(TraceFileMissingError, match=r"app_memory_percentiles\.anon\.d03\.csv.*AzureFunctionsDataset2019"):
        load_azure2019(tmp_path)


def test_missing_column(tmp_path: Path) -> None:
    header = ["HashOwner", "HashApp", "HashFunction", "Kind", *MINUTES]
    _write_day(tmp_path, inv_header=header)
    with pytest.raises(TraceColumnError, match="column 'Trigger'") as info:
        load_azure2019(tmp_path)
    assert info.value.column == "Trigger"
    assert info.value.file is not None
    assert info.value.file.name == "invocations_per_function_md.anon.d03.csv"


def _inv_row(fn: str, cells: dict[int, str]) -> list[str]:
    row = ["0"] * 1440
    for i, v in cells.items():
        row[i] = v
    return ["o1", "a1", fn, "http", *row]


@pytest.mark.parametrize(
    ("cell", "error", "message"),
    [
        pytest.param("x7", TraceValueError, "not a number", id="non-numeric"),
        pytest.param("", TraceValueError, "not a number", id="empty"),
        pytest.param("-3", TraceValueError, ">= 0", id="negative"),
        pytest.param("2.5", TraceValueError, "whole number", id="fractional"),
    ],
)
def test_bad_count_cell_is_located(tmp_path: Path, cell: str, error: type[Exception], message: str) -> None:
    # Second data row (line 3 of the file), minute column "11" (index 10).
    _write_day(tmp_path, inv_rows=[_inv_row("f1", {}), _inv_row("f2", {10: cell})])
    with pytest.raises(error, match=message) as info:
        load_azure2019(tmp_path)
    assert isinstance(info.value, TraceError)
    assert (info.value.row, info.value.column) == (3, "11")


def test_whole_number_written_as_float_is_accepted(tmp_path: Path) -> None:
    _write_day(tmp_path, inv_rows=[_inv_row("f1", {3: "4.0"})])
    assert load_azure2019(tmp_path).workload.totals().tolist() == [4]


def test_non_numeric_average(tmp_path: Path) -> None:
    _write_day(tmp_path, dur_rows=[["o1", "a1", "f1", "fast", *["1"] * 10]], inv_rows=[_inv_row("f1", {})])
    with pytest.raises(TraceValueError, match="'fast'") as info:
        load_azure2019(tmp_path)
    assert (info.value.row, info.value.column) == (2, "Average")


def test_duplicate_function(tmp_path: Path) -> None:
    _write_day(tmp_path, inv_rows=[_inv_row("f1", {}), _inv_row("f2", {}), _inv_row("f1", {})])
    with pytest.raises(DuplicateFunctionError, match="first on line 2") as info:
        load_azure2019(tmp_path)
    assert (info.value.row, info.value.column) == (4, "HashFunction")


def test_minute_columns_must_be_consecutive(tmp_path: Path) -> None:
    header = ["HashOwner", "HashApp", "HashFunction", "Trigger", *MINUTES[:9], "11", *MINUTES[10:]]
    _write_day(tmp_path, inv_header=header)
    with pytest.raises(TraceColumnError, match="consecutive"):
        load_azure2019(tmp_path)
