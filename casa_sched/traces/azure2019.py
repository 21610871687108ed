"""Loader for the Azure Functions 2019 trace (Shahrad et al., ATC 2020), the paper's workload [27].

Two directory layouts are recognised (:func:`detect_layout`):

``azure2019`` — the public release, one day ``NN`` (01..14) per file kind:
    ``invocations_per_function_md.anon.dNN.csv``  HashOwner, HashApp, HashFunction, Trigger, "1".."1440"
    ``function_durations_percentiles.anon.dNN.csv`` HashOwner, HashApp, HashFunction, Average, Count,
        Minimum, Maximum, percentile_Average_{0,1,25,50,75,99,100} (ms)
    ``app_memory_percentiles.anon.dNN.csv``  HashOwner, HashApp, SampleCount, AverageAllocatedMb,
        AverageAllocatedMb_pct{1,5,25,50,75,95,99,100} (MB)
    Minute column "1" is the first minute of the day, 00:00-00:01, so start_minute = 0.

``sample`` — a subset with the same schemas, as in the 500-function sample the tests use:
    ``invocations.csv`` (minute columns labelled with the 0-based minute of the day, 480..959),
    ``durations.csv``, ``memory.csv`` (which also carries HashFunction).

Rules (each is a modelling choice, stated once here):

- Function id = HashFunction. Duplicate ids in the invocations or durations file are an error.
- T_ave = "Average" (ms) / 1000, floored at ``MIN_T_AVE_S`` = 1 ms (0 ms averages exist).
- A function in the invocations file with no durations row is **dropped**; its id is listed in
  :attr:`AzureTrace.dropped_no_duration` (the paper needs T_ave for every function it schedules).
  Durations rows of functions without invocations are ignored.
- Memory is measured per application in the Azure trace, so every function of an application
  gets that application's AverageAllocatedMb (joined on HashOwner + HashApp; in the sample layout
  on HashFunction). A function whose application has no memory row gets the median
  AverageAllocatedMb over the file's applications; its id is listed in
  :attr:`AzureTrace.memory_imputed`.

Where to get the public originals: https://github.com/Azure/AzurePublicDataset, file
AzureFunctionsDataset2019.md, archive ``azurefunctions-dataset2019.tar.xz`` (CC-BY 4.0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from casa_sched.traces.workload import MIN_T_AVE_S, Workload

Layout = Literal["azure2019", "sample"]

HOW_TO_OBTAIN = (
    "download the public Azure Functions 2019 trace from https://github.com/Azure/AzurePublicDataset "
    "(see AzureFunctionsDataset2019.md: azurefunctions-dataset2019.tar.xz) and extract it into this "
    "directory, or use the 500-function sample (invocations.csv, durations.csv, memory.csv)"
)

_INVOCATION_KEYS = ("HashOwner", "HashApp", "HashFunction", "Trigger")
_DURATION_COLUMNS = ("HashOwner", "HashApp", "HashFunction", "Average")
_MEMORY_COLUMNS = ("HashOwner", "HashApp", "AverageAllocatedMb")
_SAMPLE_FILES = ("invocations.csv", "durations.csv", "memory.csv")
_AZURE_PATTERNS = (
    "invocations_per_function_md.anon.d{day:02d}.csv",
    "function_durations_percentiles.anon.d{day:02d}.csv",
    "app_memory_percentiles.anon.d{day:02d}.csv",
)
_AZURE_DAY = re.compile(r"^invocations_per_function_md\.anon\.d(\d{2})\.csv$")


class TraceError(ValueError):
    """A trace that cannot be loaded; ``file``, ``column`` and ``row`` locate the problem.

    ``row`` is the 1-based line number in the file (the header is line 1), or None.
    """

    def __init__(self, message: str, *, file: Path | None = None, column: str | None = None,
                 row: int | None = None) -> None:
        where = []
        if file is not None:
            where.append(str(file))
        if row is not None:
            where.append(f"line {row}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
        self.file = file
        self.column = column
        self.row = row


class TraceFileMissingError(TraceError, FileNotFoundError):
    """A trace file (or the whole directory) is absent; the message says how to obtain it."""


class TraceColumnError(TraceError):
    """A required column is missing, or the minute columns are not consecutive integers."""


class TraceValueError(TraceError):
    """A cell is empty, non-numeric, negative or not a whole number where one is required."""


class DuplicateFunctionError(TraceError):
    """The same HashFunction (or HashOwner+HashApp in a memory file) appears on two rows."""


@dataclass(frozen=True, eq=False)
class AzureTrace:
    """A loaded trace: the workload plus what the loader's rules did to it."""

    workload: Workload
    layout: Layout
    day: int | None
    files: tuple[Path, Path, Path]
    dropped_no_duration: tuple[str, ...]
    memory_imputed: tuple[str, ...]
    zero_average_floored: tuple[str, ...]


def detect_layout(directory: str | Path) -> tuple[Layout, tuple[int, ...]]:
    """Which layout ``directory`` holds, and the days available (empty for the sample layout)."""
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise TraceFileMissingError("is not a directory; pass the directory that holds the trace's CSV files", file=path)
    if not path.is_dir():
        raise TraceFileMissingError(f"trace directory does not exist; {HOW_TO_OBTAIN}", file=path)
    if (path / "invocations.csv").is_file():
        return "sample", ()
    days = sorted(int(m.group(1)) for p in path.iterdir() if (m := _AZURE_DAY.match(p.name)))
    if days:
        return "azure2019", tuple(days)
    raise TraceFileMissingError(
        "no invocations file found (expected invocations.csv or invocations_per_function_md.anon.dNN.csv); "
        + HOW_TO_OBTAIN,
        file=path,
    )


def load_azure2019(directory: str | Path, day: int | None = None) -> AzureTrace:
    """Load one day of the Azure Functions 2019 trace, or the sample, from ``directory``.

    ``day`` selects dNN in the public layout; it may be omitted when the directory holds one day.
    Pure apart from reading the three CSV files. Raises a :class:`TraceError` subclass naming the
    file, column and line on any malformed input.
    """
    path = Path(directory)
    layout, days = detect_layout(path)
    if layout == "sample":
        if day is not None:
            raise TraceError(f"day={day} given but the directory holds the sample layout (no days)", file=path)
        files = tuple(path / name for name in _SAMPLE_FILES)
    else:
        if day is None:
            if len(days) != 1:
                raise TraceError(f"the directory holds days {list(days)}; pass day=NN to choose one", file=path)
            day = days[0]
        files = tuple(path / pattern.format(day=day) for pattern in _AZURE_PATTERNS)
    inv_file, dur_file, mem_file = files
    for f in files:
        if not f.is_file():
            raise TraceFileMissingError(f"file is missing; {HOW_TO_OBTAIN}", file=f)

    inv = _read_csv(inv_file, _INVOCATION_KEYS)
    _require_columns(inv, inv_file, _INVOCATION_KEYS)
    minute_cols = [c for c in inv.columns if c not in _INVOCATION_KEYS]
    start_minute = _check_minute_columns(minute_cols, inv_file, one_based=layout == "azure2019")
    _check_unique(inv, inv_file, ("HashFunction",))
    _check_nonempty_ids(inv, inv_file, _INVOCATION_KEYS)
    counts = _whole_numbers(inv, inv_file, minute_cols)

    dur = _read_csv(dur_file, _INVOCATION_KEYS[:3])
    _require_columns(dur, dur_file, _DURATION_COLUMNS)
    _check_unique(dur, dur_file, ("HashFunction",))
    avg_ms = _numbers(dur, dur_file, "Average", minimum=0.0)
    avg_by_fn = pd.Series(avg_ms, index=dur["HashFunction"].to_numpy())

    mem = _read_csv(mem_file, _INVOCATION_KEYS[:3])
    mem_keys: tuple[str, ...] = ("HashFunction",) if layout == "sample" else ("HashOwner", "HashApp")
    _require_columns(mem, mem_file, (*mem_keys, *_MEMORY_COLUMNS) if layout == "sample" else _MEMORY_COLUMNS)
    _check_unique(mem, mem_file, mem_keys)
    mem_mb = _numbers(mem, mem_file, "AverageAllocatedMb", minimum=0.0)

    fn_ids = inv["HashFunction"].to_numpy(dtype=str)
    has_duration = np.isin(fn_ids, avg_by_fn.index.to_numpy(dtype=str))
    dropped = tuple(fn_ids[~has_duration].tolist())
    keep = np.flatnonzero(has_duration)
    kept = inv.iloc[keep]
    kept_ids = fn_ids[keep]

    avg_kept_ms = avg_by_fn.loc[kept_ids].to_numpy(dtype=np.float64)
    zero_floored = tuple(kept_ids[avg_kept_ms / 1000.0 < MIN_T_AVE_S].tolist())
    t_ave_s = np.maximum(avg_kept_ms / 1000.0, MIN_T_AVE_S)

    mem_index = pd.MultiIndex.from_frame(mem[list(mem_keys)].astype(str))
    want_index = pd.MultiIndex.from_frame(kept[list(mem_keys)].astype(str))
    pos = mem_index.get_indexer(want_index)
    imputed_mask = pos < 0
    fallback_mb = float(np.median(mem_mb)) if mem_mb.size else float("nan")
    if imputed_mask.any() and not mem_mb.size:
        raise TraceValueError("memory file has no rows, so no memory can be given to any function", file=mem_file)
    memory_mb = np.where(imputed_mask, fallback_mb, mem_mb[np.maximum(pos, 0)])

    source = f"Azure Functions 2019 {'sample' if layout == 'sample' else f'day {day:02d}'} ({path})"
    workload = Workload(
        function_ids=tuple(kept_ids.tolist()),
        counts=counts[keep],
        start_minute=start_minute,
        t_ave_s=t_ave_s,
        memory_mb=memory_mb,
        triggers=tuple(kept["Trigger"].astype(str).tolist()),
        source=source,
    )
    return AzureTrace(
        workload=workload,
        layout=layout,
        day=day,
        files=(inv_file, dur_file, mem_file),
        dropped_no_duration=dropped,
        memory_imputed=tuple(kept_ids[imputed_mask].tolist()),
        zero_average_floored=zero_floored,
    )


def load_workload(directory: str | Path, day: int | None = None) -> Workload:
    """:func:`load_azure2019` without the report."""
    return load_azure2019(directory, day).workload


# ---- helpers -------------------------------------------------------------------------------------


def _read_csv(file: Path, text_columns: tuple[str, ...]) -> pd.DataFrame:
    try:
        # Ids as text; numbers parsed by the C parser (a full day is ~66 M cells). A column with a
        # bad cell comes back as text, and the typed checks below then name the exact cell.
        return pd.read_csv(file, dtype=dict.fromkeys(text_columns, str), keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise TraceColumnError("file is empty (no header row)", file=file) from None
    except pd.errors.ParserError as exc:
        raise TraceValueError(f"not a well-formed CSV file: {exc}", file=file) from None


def _require_columns(df: pd.DataFrame, file: Path, columns: tuple[str, ...]) -> None:
    for column in columns:
        if column not in df.columns:
            raise TraceColumnError(
                f"required column is missing (the file has {len(df.columns)} columns)", file=file, column=column
            )


def _check_minute_columns(columns: list[str], file: Path, *, one_based: bool) -> int:
    if not columns:
        raise TraceColumnError("no minute columns after HashOwner, HashApp, HashFunction, Trigger", file=file)
    labels: list[int] = []
    for column in columns:
        if not re.fullmatch(r"\d+", column):
            raise TraceColumnError("minute column label is not a whole number", file=file, column=column)
        if labels and int(column) != labels[-1] + 1:
            raise TraceColumnError(
                f"minute columns must be consecutive; {column} follows {labels[-1]}", file=file, column=column
            )
        labels.append(int(column))
    start = labels[0] - 1 if one_based else labels[0]
    if start < 0 or start + len(labels) > 1440:
        raise TraceColumnError(
            f"minute columns {labels[0]}..{labels[-1]} fall outside one day (1440 minutes)", file=file, column=columns[0]
        )
    return start


def _check_unique(df: pd.DataFrame, file: Path, keys: tuple[str, ...]) -> None:
    dup = df.duplicated(subset=list(keys), keep="first").to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        value = "/".join(str(df[k].iloc[i]) for k in keys)
        first = int(np.flatnonzero((df[list(keys)] == df[list(keys)].iloc[i]).all(axis=1).to_numpy())[0])
        raise DuplicateFunctionError(
            f"duplicate {'+'.join(keys)} {value!r} (first on line {first + 2})",
            file=file, column=keys[-1], row=i + 2,
        )


def _check_nonempty_ids(df: pd.DataFrame, file: Path, columns: tuple[str, ...]) -> None:
    for column in columns:
        empty = (df[column].str.strip() == "").to_numpy()
        if empty.any():
            raise TraceValueError("empty cell", file=file, column=column, row=int(np.flatnonzero(empty)[0]) + 2)


def _numbers(df: pd.DataFrame, file: Path, column: str, *, minimum: float) -> npt.NDArray[np.float64]:
    raw = df[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise TraceValueError(f"not a finite number: {raw.iloc[i]!r}", file=file, column=column, row=i + 2)
    low = values < minimum
    if low.any():
        i = int(np.flatnonzero(low)[0])
        raise TraceValueError(f"value {raw.iloc[i]} is below the minimum {minimum:g}", file=file, column=column,
                              row=i + 2)
    return values


def _whole_numbers(df: pd.DataFrame, file: Path, columns: list[str]) -> npt.NDArray[np.int64]:
    """Invocation counts as int64 [rows × columns]; names the first bad cell (column by column)."""
    out = np.empty((len(df), len(columns)), dtype=np.int64)
    for j, column in enumerate(columns):
        raw = df[column]
        if pd.api.types.is_integer_dtype(raw.dtype):
            values = raw.to_numpy(dtype=np.int64)
        else:
            numeric = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
            bad = ~np.isfinite(numeric)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise TraceValueError(
                    f"invocation count is not a number: {raw.iloc[i]!r}", file=file, column=column, row=i + 2
                )
            frac = numeric != np.round(numeric)
            if frac.any():
                i = int(np.flatnonzero(frac)[0])
                raise TraceValueError(
                    f"invocation count must be a whole number, got {raw.iloc[i]}", file=file, column=column,
                    row=i + 2,
                )
            values = numeric.astype(np.int64)
        neg = values < 0
        if neg.any():
            i = int(np.flatnonzero(neg)[0])
            raise TraceValueError(
                f"invocation count must be >= 0, got {raw.iloc[i]}", file=file, column=column, row=i + 2
            )
        out[:, j] = values
    return out
