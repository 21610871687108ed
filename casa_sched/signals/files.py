"""Hourly signals from files: Electricity Maps CSV exports (carbon) and ISO price CSVs.

Formats (as in the public exports; see the project README):

- Electricity Maps: ``Datetime (UTC)`` and ``Carbon intensity gCO₂eq/kWh (direct)`` (or
  ``(Life cycle)`` / ``(LCA)``; capitalisation varies between exports), hourly, UTC.
- derived local-time files: ``datetime_utc`` and ``ci_direct_gco2eq_per_kwh``.
- ISO prices: ``Datetime (UTC)`` (with ``+00:00``) and ``Price (USD/MWh)``; converted to $/kWh.

Rows are reindexed to a complete hourly range; empty cells and absent hours are filled by
:func:`~casa_sched.signals.series.fill_missing` and counted. Duplicate hours, naive or
unparsable timestamps, missing columns and non-numeric cells raise :class:`SignalFileError`
naming the file, column and line.
"""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from casa_sched.signals.series import HourlySeries, SignalError, fill_missing

FILL_RULE = "linear interpolation for gaps <= 3 h, else the same hour one day (up to a week) away"


class SignalFileError(SignalError):
    """A signal file that is missing or malformed."""


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise SignalFileError(f"{path}: no such file")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise SignalFileError(f"{path}: not a readable CSV ({exc})") from exc


def _find(df: pd.DataFrame, path: Path, candidates: tuple[str, ...]) -> str:
    norm = {c.lower().replace("₂", "2").strip(): c for c in df.columns}
    for cand in candidates:
        hit = norm.get(cand.lower().replace("₂", "2"))
        if hit is not None:
            return hit
    raise SignalFileError(f"{path}: missing column {candidates[0]!r} (columns: {', '.join(df.columns)})")


def _series(df: pd.DataFrame, path: Path, time_col: str, value_col: str, scale: float, unit: str) -> HourlySeries:
    raw_t = df[time_col]
    times = pd.to_datetime(raw_t, utc=False, errors="coerce", format="mixed")
    bad = times.isna()
    if bad.any():
        line = int(np.flatnonzero(bad.to_numpy())[0]) + 2
        raise SignalFileError(f"{path}:{line}: column {time_col!r}: not a date-time: {raw_t.iloc[line - 2]!r}")
    if times.dt.tz is None:
        if "utc" not in time_col.lower():
            raise SignalFileError(f"{path}: column {time_col!r} has no time zone and is not labelled UTC")
        times = times.dt.tz_localize(UTC)
    else:
        times = times.dt.tz_convert(UTC)
    if (times != times.dt.floor("h")).any():
        line = int(np.flatnonzero((times != times.dt.floor("h")).to_numpy())[0]) + 2
        raise SignalFileError(f"{path}:{line}: column {time_col!r}: not an hour start")
    dup = times.duplicated()
    if dup.any():
        line = int(np.flatnonzero(dup.to_numpy())[0]) + 2
        raise SignalFileError(f"{path}:{line}: duplicate hour {times.iloc[line - 2].isoformat()}")
    raw_v = df[value_col].astype(str).str.strip()
    values = pd.Series(pd.to_numeric(raw_v.to_numpy(), errors="coerce"), index=raw_v.index, dtype=np.float64)
    nonnum = values.isna() & (raw_v != "") & (raw_v.str.lower() != "nan")
    if nonnum.any():
        line = int(np.flatnonzero(nonnum.to_numpy())[0]) + 2
        raise SignalFileError(f"{path}:{line}: column {value_col!r}: not a number: {raw_v.iloc[line - 2]!r}")
    if unit != "$/kWh" and (values < 0).any():  # negative wholesale prices are real; negative CI is not
        line = int(np.flatnonzero((values < 0).to_numpy())[0]) + 2
        raise SignalFileError(f"{path}:{line}: column {value_col!r}: negative value {values.iloc[line - 2]}")
    s = pd.Series(values.to_numpy(dtype=np.float64), index=pd.DatetimeIndex(times)).sort_index()
    full = pd.date_range(s.index[0], s.index[-1], freq="h")
    s = s.reindex(full)
    raw = s.to_numpy(dtype=np.float64)
    try:
        filled, n = fill_missing(raw)
    except SignalError as exc:
        raise SignalFileError(f"{path}: {exc}") from exc
    return HourlySeries(
        start_utc=full[0].to_pydatetime(),
        values=filled * scale,
        unit=unit,
        source=str(path),
        filled_hours=n,
        fill_rule=FILL_RULE if n else "none",
        filled_mask=np.isnan(raw),
    )


def load_carbon_csv(path: str | Path, kind: Literal["direct", "lifecycle"] = "direct") -> HourlySeries:
    """Hourly carbon intensity (g/kWh) from an Electricity Maps export or a derived local-time file."""
    p = Path(path)
    df = _read(p)
    if df.empty:
        raise SignalFileError(f"{p}: no rows")
    if "datetime_utc" in df.columns:
        col = "ci_direct_gco2eq_per_kwh" if kind == "direct" else "ci_lifecycle_gco2eq_per_kwh"
        return _series(df, p, "datetime_utc", _find(df, p, (col,)), 1.0, "g/kWh")
    time_col = _find(df, p, ("Datetime (UTC)",))
    names: tuple[str, ...]
    if kind == "direct":
        names = ("Carbon intensity gCO₂eq/kWh (direct)",)
    else:
        names = ("Carbon intensity gCO₂eq/kWh (Life cycle)", "Carbon intensity gCO₂eq/kWh (LCA)")
    return _series(df, p, time_col, _find(df, p, names), 1.0, "g/kWh")


def load_price_csv(path: str | Path) -> HourlySeries:
    """Hourly electricity price ($/kWh) from an ISO price CSV in USD/MWh."""
    p = Path(path)
    df = _read(p)
    if df.empty:
        raise SignalFileError(f"{p}: no rows")
    time_col = _find(df, p, ("Datetime (UTC)",))
    return _series(df, p, time_col, _find(df, p, ("Price (USD/MWh)",)), 1.0 / 1000.0, "$/kWh")
