"""Hourly signals from CSV files: Electricity Maps exports (carbon) and ISO price files.

Formats (as published, see docs/architecture.md "Data"):

- Electricity Maps export: ``Datetime (UTC)`` and ``Carbon intensity gCO₂eq/kWh (direct)``, the
  life-cycle column ``... (Life cycle)`` or ``... (LCA)``. Capitalisation (``Carbon Intensity``)
  and ``₂``/``2`` vary between exports and are matched loosely. Hour starts, UTC, no offset.
- derived local-time files: ``datetime_utc`` with ``ci_direct_gco2eq_per_kwh`` /
  ``ci_lifecycle_gco2eq_per_kwh``.
- ISO prices: ``Datetime (UTC)`` (with ``+00:00``) and ``Price (USD/MWh)``; divided by 1000 to $/kWh.

Time stamps without an offset are accepted only in a column whose name says UTC; an offset is
converted to UTC; a column mixing both is refused. Rows are sorted, restricted to the optional
``[start, end)`` window, reindexed to a complete hourly range, and empty cells and absent hours
are filled by the given :class:`~casa_sched.signals.series.FillRule` and counted. Duplicate hours,
unparsable or non-hour time stamps, missing columns, non-numeric cells, negative carbon
intensity and implausible values (carbon intensity above :data:`MAX_CI_G_PER_KWH`, prices beyond
±:data:`MAX_ABS_PRICE_USD_PER_MWH`) raise :class:`SignalFileError` naming the file, the column and the line (1 = header).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from casa_sched._typing import FloatArray
from casa_sched.signals.series import (
    CI_UNIT,
    DEFAULT_FILL_RULE,
    PRICE_UNIT,
    FillRule,
    GapTooLongError,
    HourlySeries,
    SignalError,
    fill_missing,
    utc_hour,
)

USD_PER_MWH_TO_USD_PER_KWH = 1.0 / 1000.0  # 1 MWh = 1000 kWh
#: Largest carbon intensity accepted, gCO2eq/kWh. The dirtiest generation, lignite, is ~1,100-1,200
#: life-cycle; no grid averages more. A larger value is a unit mistake (kg, lb) or a corrupted file.
MAX_CI_G_PER_KWH = 2_000.0
#: Price bounds accepted, USD/MWh. Wholesale caps are ~5,000 (ERCOT) to ~17,500 AUD (the Australian
#: NEM); floors ~-1,000 (the NEM). Beyond ±20,000 a value is a unit mistake or a corrupted file.
MAX_ABS_PRICE_USD_PER_MWH = 20_000.0
FILL_RULE = DEFAULT_FILL_RULE.describe()  # the default rule's description, as recorded on series
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")


class SignalFileError(SignalError):
    """A signal file that is missing or malformed; the message names the file, column and line."""


def _read(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise SignalFileError(f"{path}: no such file")
    if not path.is_file():
        raise SignalFileError(
            f"{path}: {'is a directory' if path.is_dir() else 'not a regular file'}, expected a CSV file"
        )
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SignalFileError(f"{path}: not a readable UTF-8 CSV ({str(exc).strip().splitlines()[0]})") from exc
    except OSError as exc:
        raise SignalFileError(f"{path}: cannot be read ({exc.strerror})") from exc
    if df.empty:
        raise SignalFileError(f"{path}: no data rows")
    return df


def _norm(name: str) -> str:
    return " ".join(name.replace("₂", "2").lower().split())


def _find(df: pd.DataFrame, path: Path, candidates: tuple[str, ...]) -> str:
    norm = {_norm(str(c)): str(c) for c in df.columns}
    for cand in candidates:
        hit = norm.get(_norm(cand))
        if hit is not None:
            return hit
    wanted = " or ".join(repr(c) for c in candidates)
    raise SignalFileError(f"{path}: missing column {wanted} (columns: {', '.join(map(str, df.columns))})")


def _line(mask: npt.NDArray[np.bool_]) -> int:
    """CSV line of the first True row (line 1 is the header)."""
    return int(np.flatnonzero(mask)[0]) + 2


def _times(df: pd.DataFrame, path: Path, col: str) -> pd.DatetimeIndex:
    raw = df[col].astype(str).str.strip()
    has_offset = raw.str.contains(_OFFSET).to_numpy()
    if not has_offset.all():
        if has_offset.any():
            first = _line(~has_offset if has_offset[0] else has_offset)
            raise SignalFileError(f"{path}:{first}: column {col!r}: mixes time stamps with and without an offset")
        if "utc" not in col.lower():
            raise SignalFileError(
                f"{path}:2: column {col!r}: naive time stamp {raw.iloc[0]!r} in a column not labelled UTC"
            )
    times = pd.to_datetime(raw, utc=True, errors="coerce", format="mixed")
    bad = times.isna().to_numpy()
    if bad.any():
        line = _line(bad)
        raise SignalFileError(f"{path}:{line}: column {col!r}: not a date-time: {raw.iloc[line - 2]!r}")
    idx = pd.DatetimeIndex(times)
    off_hour = np.asarray(idx != idx.floor("h"))
    if off_hour.any():
        line = _line(off_hour)
        raise SignalFileError(f"{path}:{line}: column {col!r}: {raw.iloc[line - 2]!r} is not an hour start")
    dup = np.asarray(idx.duplicated())
    if dup.any():
        line = _line(dup)
        first = int(np.flatnonzero(np.asarray(idx == idx[line - 2]))[0]) + 2
        raise SignalFileError(
            f"{path}:{line}: column {col!r}: duplicate hour {idx[line - 2].isoformat()} (first on line {first}); "
            "duplicates are refused rather than averaged"
        )
    return idx


def _numbers(df: pd.DataFrame, path: Path, col: str, unit: str) -> FloatArray:
    raw = df[col].astype(str).str.strip()
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    empty = (raw == "") | (raw.str.lower() == "nan")
    nonnum = np.isnan(values) & ~empty.to_numpy()
    if nonnum.any():
        line = _line(nonnum)
        raise SignalFileError(f"{path}:{line}: column {col!r}: not a number: {raw.iloc[line - 2]!r}")
    infinite = np.isinf(values)
    if infinite.any():
        line = _line(infinite)
        raise SignalFileError(f"{path}:{line}: column {col!r}: not a finite number: {raw.iloc[line - 2]!r}")
    if unit == CI_UNIT and (values < 0).any():  # negative wholesale prices are real; negative CI is not
        line = _line(values < 0)
        raise SignalFileError(f"{path}:{line}: column {col!r}: negative carbon intensity {values[line - 2]} gCO2eq/kWh")
    if unit == CI_UNIT and (values > MAX_CI_G_PER_KWH).any():
        line = _line(values > MAX_CI_G_PER_KWH)
        raise SignalFileError(
            f"{path}:{line}: column {col!r}: carbon intensity {raw.iloc[line - 2]} gCO2eq/kWh is above the plausible "
            f"{MAX_CI_G_PER_KWH:g} (a unit mistake?)"
        )
    if unit == PRICE_UNIT and (np.abs(values) > MAX_ABS_PRICE_USD_PER_MWH).any():
        line = _line(np.abs(values) > MAX_ABS_PRICE_USD_PER_MWH)
        raise SignalFileError(
            f"{path}:{line}: column {col!r}: price {raw.iloc[line - 2]} USD/MWh is outside the plausible "
            f"±{MAX_ABS_PRICE_USD_PER_MWH:g}"
        )
    return values


def _series(
    df: pd.DataFrame,
    path: Path,
    time_col: str,
    value_col: str,
    scale: float,
    unit: str,
    fill: FillRule,
    start: datetime | None,
    end: datetime | None,
) -> HourlySeries:
    times = _times(df, path, time_col)
    values = _numbers(df, path, value_col, unit)
    s = pd.Series(values, index=times).sort_index()
    if start is not None:
        s = s[s.index >= pd.Timestamp(utc_hour(start))]
    if end is not None:
        s = s[s.index < pd.Timestamp(utc_hour(end))]
    if s.empty:
        raise SignalFileError(f"{path}: no rows between {start} and {end}")
    full = pd.date_range(s.index[0], s.index[-1], freq="h")
    raw = np.asarray(s.reindex(full).to_numpy(), dtype=np.float64)
    try:
        filled, n = fill_missing(raw, fill)
    except GapTooLongError as exc:
        gap_start = full[exc.first_index]
        raise SignalFileError(
            f"{path}: column {value_col!r}: {exc.hours} missing hour(s) from {gap_start.isoformat()} cannot be "
            f"filled ({exc}; rule: {fill.describe()}); for a file with separate periods (e.g. one summer per year) load one "
            "period with start=/end="
        ) from exc
    return HourlySeries(
        start_utc=full[0].to_pydatetime(),
        values=filled * scale,
        unit=unit,
        source=f"{path} [{value_col}]",
        filled_hours=n,
        fill_rule=fill.describe() if n else "none",
        filled_mask=np.isnan(raw),
    )


def load_carbon_csv(
    path: str | Path,
    kind: Literal["direct", "lifecycle"] = "direct",
    *,
    fill: FillRule = DEFAULT_FILL_RULE,
    start: datetime | None = None,
    end: datetime | None = None,
) -> HourlySeries:
    """Hourly carbon intensity (g/kWh) from an Electricity Maps export or a derived local-time file.

    ``kind`` picks the direct (operational, the default, as in the paper's CI) or the life-cycle
    column. ``start``/``end`` (tz-aware, end exclusive) keep only that period before reindexing.
    """
    p = Path(path)
    df = _read(p)
    if any(_norm(str(c)) == "datetime_utc" for c in df.columns):
        col = "ci_direct_gco2eq_per_kwh" if kind == "direct" else "ci_lifecycle_gco2eq_per_kwh"
        time_col = _find(df, p, ("datetime_utc",))
        return _series(df, p, time_col, _find(df, p, (col,)), 1.0, CI_UNIT, fill, start, end)
    time_col = _find(df, p, ("Datetime (UTC)",))
    names: tuple[str, ...]
    if kind == "direct":
        names = ("Carbon intensity gCO₂eq/kWh (direct)",)
    else:
        names = ("Carbon intensity gCO₂eq/kWh (Life cycle)", "Carbon intensity gCO₂eq/kWh (LCA)")
    return _series(df, p, time_col, _find(df, p, names), 1.0, CI_UNIT, fill, start, end)


def load_price_csv(
    path: str | Path,
    *,
    fill: FillRule = DEFAULT_FILL_RULE,
    start: datetime | None = None,
    end: datetime | None = None,
) -> HourlySeries:
    """Hourly electricity price ($/kWh) from an ISO price CSV in USD/MWh (÷ 1000)."""
    p = Path(path)
    df = _read(p)
    time_col = _find(df, p, ("Datetime (UTC)",))
    price_col = _find(df, p, ("Price (USD/MWh)",))
    return _series(df, p, time_col, price_col, USD_PER_MWH_TO_USD_PER_KWH, PRICE_UNIT, fill, start, end)
