"""Building a :class:`~casa_sched.experiments.runner.Scenario` from settings and flags.

Workload: the synthetic default (no download) or the Azure Functions 2019 trace; optionally a
seeded random subset of functions; then scaled by R. Signals: hourly CI and price from CSV
files or the embedded 24-hour profiles, placed on the simulation's hours from the local
start time; the cooling factor E_t by local hour.
"""

from __future__ import annotations

import math
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from casa_sched.contract.cluster import ClusterSpec, SimParams
from casa_sched.contract.snapshot import PlannerConfig, site_water
from casa_sched.experiments.defaults import DEFAULT_EPOCHS, DEFAULT_START_LOCAL
from casa_sched.experiments.runner import ORACLE, ForecastMode, Scenario
from casa_sched.forecasting import ForecastError, forecaster_names
from casa_sched.forecasting import create as create_forecaster
from casa_sched.models.cooling import CoolingProfile
from casa_sched.settings import CasaSettings
from casa_sched.signals import (
    FileProvider,
    HourlySeries,
    SignalError,
    load_carbon_csv,
    load_price_csv,
    summer_price,
    tampa_summer_carbon,
)
from casa_sched.signals.providers import SignalProvider
from casa_sched.simulator import HourlySignals
from casa_sched.traces import Workload, WorkloadError, load_azure2019
from casa_sched.traces.synthetic import SyntheticParams, synthetic_workload
from casa_sched.traces.workload import BLOCK_REQUESTS


class ScenarioError(ValueError):
    """Flags or inputs that do not make a runnable scenario; the message says which."""


#: Memory per request of an epoch, bytes: the replay's arrival times and per-request work (peak
#: RSS of one epoch grows by ~21 B per request under bin-packing and ~28 B under CASA, whose
#: validation draws the epoch again, between R = 200 and R = 600 of the synthetic default), rounded
#: up. :meth:`Workload.arrivals_by_function` draws blocks of functions, so its temporaries are
#: bounded: :data:`DRAW_BYTES_PER_BLOCK_REQUEST`.
ARRIVAL_BYTES_PER_REQUEST = 32
#: Temporaries of one block of the draw, bytes per request of the block: about seven int64 arrays
#: of one element per request at once (cell, minute, function, offset, key and the shifted ones).
DRAW_BYTES_PER_BLOCK_REQUEST = 64
#: Start dates accepted: the signals' calendar arithmetic (hours after the start) must stay inside
#: ``datetime``'s range, and a date outside it is a typo rather than a scenario.
START_YEARS = (1970, 2200)


def available_memory_bytes() -> int:
    """Memory the kernel says is available (``MemAvailable``), else the physical memory."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))


def check_memory(wl: Workload, epoch_min: int, n_epochs: int, intensity: float, available_b: int) -> None:
    """Refuse a run whose busiest epoch cannot be drawn in ``available_b`` bytes (pure)."""
    peak = int(wl.epoch_counts(epoch_min)[:, :n_epochs].sum(axis=0).max(initial=0))
    need_b = peak * ARRIVAL_BYTES_PER_REQUEST + min(peak, BLOCK_REQUESTS) * DRAW_BYTES_PER_BLOCK_REQUEST
    if need_b > available_b:
        raise ScenarioError(
            f"--intensity {intensity:g}: the busiest epoch has {peak:.3g} requests, needing ~{need_b / 2**30:.3g} GiB "
            f"({ARRIVAL_BYTES_PER_REQUEST} B per request and the draw's temporaries) but {available_b / 2**30:.3g} GiB are available: "
            "lower --intensity, --functions or --synthetic-functions"
        )


def load_trace(
    settings: CasaSettings, trace: str, trace_dir: Path | None, trace_day: int | None, functions: int | None
) -> Workload:
    seed = settings.planner.seed
    if trace == "synthetic":
        if trace_dir is not None:
            raise ScenarioError("--trace-dir is only used with --trace azure2019")
        wl = synthetic_workload(SyntheticParams(n_functions=settings.workload.synthetic_functions), seed=seed)
    elif trace == "azure2019":
        if settings.workload.synthetic_functions != SyntheticParams().n_functions:
            raise ScenarioError("--synthetic-functions is only used with --trace synthetic (--functions takes a subset)")
        if trace_dir is None:
            raise ScenarioError("--trace azure2019 needs --trace-dir DIR (the trace's CSV files or its sample)")
        wl = load_azure2019(trace_dir, trace_day).workload
    else:
        raise ScenarioError(f"--trace must be 'synthetic' or 'azure2019', got {trace!r}")
    if functions is not None:
        if not 1 <= functions <= wl.n_functions:
            raise ScenarioError(f"--functions must be in 1..{wl.n_functions}, got {functions}")
        wl = wl.random_subset(functions, seed=seed)
    try:
        return wl.scaled(settings.workload.intensity, seed=seed)
    except WorkloadError as exc:
        raise ScenarioError(f"--intensity: {exc}") from None


def hourly_signals(
    settings: CasaSettings, start: datetime, hours: int, ci_csv: Path | None, price_csv: Path | None
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """CI (g/kWh) and price ($/kWh) for ``hours`` hours from ``start``: CSV files when given
    (flags, else ``signals.carbon_csv`` / ``price_csv`` settings), else the embedded profiles."""
    sig = settings.signals
    ci_path = ci_csv or (sig.carbon_csv if sig.carbon_source == "csv" else None)
    price_path = price_csv or (sig.price_csv if sig.price_source == "csv" else None)
    carbon: SignalProvider = FileProvider(load_carbon_csv(ci_path)) if ci_path else tampa_summer_carbon(sig.timezone)
    price: SignalProvider = FileProvider(load_price_csv(price_path)) if price_path else summer_price(sig.timezone)
    ci_series: HourlySeries = carbon.series(start, hours)
    price_series: HourlySeries = price.series(start, hours)
    sources = {
        "ci_source": ci_series.source,
        "ci_filled_hours": ci_series.filled_hours,
        "ci_mean_g_per_kwh": round(float(ci_series.values.mean()), 2),
        "price_source": price_series.source,
        "price_filled_hours": price_series.filled_hours,
        "price_mean_usd_per_kwh": round(float(price_series.values.mean()), 5),
    }
    return ci_series.values.astype(np.float64), price_series.values.astype(np.float64), sources


def build_scenario(
    settings: CasaSettings,
    *,
    trace: str = "synthetic",
    trace_dir: Path | None = None,
    trace_day: int | None = None,
    functions: int | None = None,
    epochs: int | None = None,
    ci_csv: Path | None = None,
    price_csv: Path | None = None,
    start_local: datetime | None = None,
    forecast: ForecastMode = ORACLE,
    workload: Workload | None = None,
) -> tuple[Scenario, dict[str, Any]]:
    """A scenario and a description of it (for the JSON summary)."""
    if forecast != ORACLE and forecast not in forecaster_names():
        raise ScenarioError(f"--forecast must be 'oracle' or one of {', '.join(forecaster_names())}, got {forecast!r}")
    try:
        forecaster = None if forecast == ORACLE else create_forecaster(forecast, settings.forecast)
    except ForecastError as exc:
        raise ScenarioError(str(exc)) from exc
    wl = workload if workload is not None else load_trace(settings, trace, trace_dir, trace_day, functions)
    params = SimParams.from_settings(settings)
    epoch_min = round(params.epoch_s / 60.0)
    available = wl.n_minutes // epoch_min
    n_epochs = min(DEFAULT_EPOCHS, available) if epochs is None else epochs
    if not 1 <= n_epochs <= available:
        raise ScenarioError(f"--epochs must be in 1..{available} for this trace, got {n_epochs}")
    check_memory(wl, epoch_min, n_epochs, settings.workload.intensity, available_memory_bytes())
    tz = ZoneInfo(settings.signals.timezone)
    start = start_local or datetime.fromisoformat(DEFAULT_START_LOCAL)
    if not START_YEARS[0] <= start.year <= START_YEARS[1]:
        raise ScenarioError(f"--start must be a date in {START_YEARS[0]}..{START_YEARS[1]}, got {start.isoformat()}")
    start = start.replace(tzinfo=tz) if start.tzinfo is None else start
    hours = math.ceil(n_epochs * params.epoch_s / 3600.0) + 1
    try:
        ci, price, sources = hourly_signals(settings, start, hours, ci_csv, price_csv)
    except SignalError as exc:
        raise ScenarioError(str(exc)) from exc
    local_hours = np.array([(start + timedelta(hours=h)).astimezone(tz).hour for h in range(hours)])
    cooling = CoolingProfile.of(settings.accounting.cooling_factor_by_hour).factors(local_hours)  # E_t, eq. (3)
    hourly = HourlySignals(
        ci_g_per_kwh=ci,
        price_usd_per_kwh=price,
        cooling_factor=cooling,
        water=site_water(settings),
    )
    cluster = ClusterSpec.uniform(settings.cluster.nodes, settings)
    scenario = Scenario(
        workload=wl,
        cluster=cluster,
        params=params,
        hourly=hourly,
        config=PlannerConfig.from_settings(settings),
        epochs=n_epochs,
        forecast=forecast,
        seed=settings.planner.seed,
        forecaster=forecaster,
    )
    meta = {
        "workload": wl.source or trace,
        "functions": wl.n_functions,
        "requests": int(wl.counts[:, : n_epochs * epoch_min].sum()),
        "nodes": settings.cluster.nodes,
        "intensity": settings.workload.intensity,
        "laxity": settings.slo.laxity,
        "cstr": settings.slo.cstr,
        "epochs": n_epochs,
        "start_local": start.isoformat(),
        "forecast": forecast,
        "utilisation": settings.workload.utilisation,
        "sleep_empty_nodes": settings.cluster.sleep_empty_nodes,
        "seed": settings.planner.seed,
        **sources,
    }
    return scenario, meta
