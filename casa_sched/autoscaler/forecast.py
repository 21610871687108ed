"""The next epoch's workload per function (paper §IV: F_e and R_e), from a metrics source.

Two small protocols so better forecasters and real metrics back-ends plug in without touching
the loop:

- :class:`MetricsSource` answers what happened: requests per minute over a past window, mean
  execution time, requests in flight now, and pods' CPU usage (the last two feed intra-epoch
  autoscaling, paper §V.D);
- :class:`Forecaster` turns a source's history into a :class:`~casa_sched.contract.forecast.Forecast`.

:class:`HistoryForecaster` runs any forecaster of ``casa_sched.forecasting`` (``forecast.method``,
last value by default, as ``casa simulate --forecast last``) on the source's history, and
degrades on outages to the last known forecast, then to holding. A function the source has no
data for is *held*: it is left out of the forecast and its pods are left as they are (its
capacity is reserved), because a missing series is not a zero (planning on zero would scale it
away). The Prometheus sources are in ``casa_sched.metricsources``; :class:`FileMetricsSource`
reads a JSON document (re-read when it changes): it serves operators without Prometheus (a
static forecast) and the tests.
"""

from __future__ import annotations

import logging
import math
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np

from casa_sched._typing import FloatArray
from casa_sched.contract.forecast import Forecast
from casa_sched.forecasting import Forecaster as ForecastModel
from casa_sched.forecasting import History
from casa_sched.forecasting import forecast as forecast_with
from casa_sched.forecasting.last import LastValue
from casa_sched.metricsources import MetricsUnavailable
from casa_sched.outputs import InputError, parse_json

if TYPE_CHECKING:
    from casa_sched.settings import CasaSettings

log = logging.getLogger(__name__)



class MetricsError(ValueError):
    """A metrics document or answer that cannot be used; the message names the file and field."""


class MetricsSource(Protocol):
    """What the cluster's functions did and do (Prometheus, a file, ...)."""

    def request_counts(self, functions: Sequence[str], end: datetime, minutes: int) -> Mapping[str, FloatArray]:
        """Requests per minute of each function over the ``minutes`` minutes before ``end``
        (arrays of length ``minutes``); functions without data are absent, never zero-filled."""
        ...

    def mean_duration_s(self, functions: Sequence[str], end: datetime, minutes: int) -> Mapping[str, float]:
        """Mean execution time T_ave per function over the window, s (absent: unknown)."""
        ...

    def in_flight(self, functions: Sequence[str]) -> Mapping[str, float]:
        """Requests each function has in flight now (absent: unknown)."""
        ...

    def cpu_usage_cores(self, pods: Sequence[str]) -> Mapping[str, float]:
        """CPU cores each pod (``namespace/name``) uses now (absent: unknown)."""
        ...


@dataclass(frozen=True)
class FunctionInfo:
    """What the forecaster knows of a function besides its metrics."""

    function: str
    memory_mb: float  # the function container's memory request, MB (plan units are MiB)


@dataclass(frozen=True)
class ForecastResult:
    """The forecast of the functions with data, and those held out for lack of it."""

    forecast: Forecast
    held: tuple[str, ...]


class Forecaster(Protocol):
    def forecast(
        self, epoch: int, start: datetime, epoch_s: float, functions: Sequence[FunctionInfo]
    ) -> ForecastResult:
        """The workload of epoch ``epoch`` starting at ``start`` for ``functions``."""
        ...


# Why a function's history could not be used this epoch: the ``reason`` label of
# casa_signal_fallback_total{signal="forecast"} (besides MetricsUnavailable's unreachable,
# timeout, bad_response).
SERIES_MISSING = "series_missing"  # no series for the function in the window
SERIES_GAP = "series_gap"  # a minute of the last epoch without any sample
BAD_VALUE = "bad_value"  # negative or non-finite counts (a configured PromQL can return them)


@dataclass
class HistoryForecaster:
    """The next epoch from each function's per-minute history, by any registered forecaster.

    Each epoch it reads ``history_minutes`` of request counts from the source and runs the
    ``forecaster`` (``casa_sched.forecasting``; last value by default) on the functions whose
    history is usable. A function whose history is not — Prometheus unreachable or timing out,
    its series missing, a gap in its last epoch — is planned on its **last known forecast** (the
    same per-minute numbers) for up to ``max_stale_epochs`` epochs, then **held**: left out of
    the forecast and listed in ``held``, which the autoscaler turns into "keep its current
    containers" (D_{e-1} for that function). Nothing is invented: a function never read is held
    at once. Every fallback calls ``on_fallback(reason)`` (the caller counts it in
    ``casa_signal_fallback_total{signal="forecast"}``) and ``on_stale(function, epochs)`` keeps
    ``casa_forecast_stale_epochs`` current. Each cause is logged once when it starts and once
    when it clears, not per query. The history begins at the first minute any function's series
    covers (after a fresh start it is as long as the metrics really go back, so the rule for
    unobserved functions, ``forecast.unseen_warmup_epochs``, applies live as it does offline);
    minutes before a later function's series starts count as zero requests (a function deployed
    inside the window); counter resets are compensated by the source.
    """

    source: MetricsSource
    default_t_ave_s: float  # used when the source knows no execution time for a function, s
    forecaster: ForecastModel = field(default_factory=LastValue)
    history_minutes: int = 480
    max_stale_epochs: int = 2
    timezone: str = "UTC"
    on_fallback: Callable[[str], None] | None = None
    on_stale: Callable[[str, int], None] | None = None
    _last: dict[str, tuple[FloatArray, float]] = field(default_factory=dict, init=False, repr=False)
    _stale: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _causes: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def forecast(
        self, epoch: int, start: datetime, epoch_s: float, functions: Sequence[FunctionInfo]
    ) -> ForecastResult:
        minutes = max(1, round(epoch_s / 60.0))
        window = max(self.history_minutes, minutes)
        names = [f.function for f in functions]
        causes: dict[str, str] = {}  # function -> why its history is unusable
        try:
            counts = self.source.request_counts(names, start, window)
            durations = self.source.mean_duration_s(names, start, minutes)
        except MetricsUnavailable as exc:
            counts, durations = {}, {}
            causes = dict.fromkeys(names, exc.reason)
            self._log_causes({exc.reason: str(exc)})
        else:
            for name in names:
                row = counts.get(name)
                if row is None:
                    causes[name] = SERIES_MISSING
                elif np.isnan(row[-minutes:]).any():
                    causes[name] = SERIES_GAP
                elif np.any(np.isinf(row)) or np.nanmin(row, initial=0.0) < 0:
                    causes[name] = BAD_VALUE
            by_cause: dict[str, list[str]] = {}
            for name, c in causes.items():
                by_cause.setdefault(c, []).append(name)
            self._log_causes({c: f"{len(fs)} function(s): {', '.join(fs[:10])}" for c, fs in by_cause.items()})
        fresh = [f for f in functions if f.function not in causes]
        rows: dict[str, tuple[FloatArray, float]] = {}
        if fresh:
            t_ave = [durations.get(f.function, self._t_ave(f.function)) for f in fresh]
            t_ave = [t if math.isfinite(t) and t > 0 else self.default_t_ave_s for t in t_ave]
            rows_seen = np.vstack([np.asarray(counts[f.function], dtype=np.float64) for f in fresh])
            # The history starts where the first series does: minutes before any function was
            # observed (a fresh Prometheus, a new cluster) are not history, so a forecaster sees how
            # long it has really watched (the rule for unobserved functions reads that length).
            # Every fresh row covers its last epoch (no SERIES_GAP), so ``seen`` >= ``minutes``.
            observed = ~np.isnan(rows_seen).all(axis=0)
            seen = window - int(np.argmax(observed))
            history = History(
                function_ids=tuple(f.function for f in fresh),
                counts=np.nan_to_num(rows_seen[:, window - seen :]),
                start_minute_of_day=_minute_of_day(start - timedelta(minutes=seen), self.timezone),
                t_ave_s=np.asarray(t_ave, dtype=np.float64),
                memory_mb=np.asarray([f.memory_mb for f in fresh], dtype=np.float64),
            )
            predicted = forecast_with(self.forecaster, history, epoch, start.timestamp(), minutes).counts
            for i, f in enumerate(fresh):
                rows[f.function] = (predicted[i], t_ave[i])
                self._last[f.function] = rows[f.function]
                self._stale[f.function] = 0
                self._report_stale(f.function, 0)
        held: list[str] = []
        for f in functions:
            if f.function not in causes:
                continue
            if self.on_fallback is not None:
                self.on_fallback(causes[f.function])
            stale = self._stale.get(f.function, 0) + 1
            self._stale[f.function] = stale
            self._report_stale(f.function, stale)
            last = self._last.get(f.function)
            if last is not None and stale <= self.max_stale_epochs and last[0].shape == (minutes,):
                rows[f.function] = last
            else:
                held.append(f.function)
        known = [f for f in functions if f.function in rows]
        return ForecastResult(
            forecast=Forecast(
                epoch=epoch,
                start_s=start.timestamp(),
                function_ids=tuple(f.function for f in known),
                counts=np.vstack([rows[f.function][0] for f in known]) if known else np.zeros((0, minutes)),
                t_ave_s=np.asarray([rows[f.function][1] for f in known], dtype=np.float64),
                memory_mb=np.asarray([f.memory_mb for f in known], dtype=np.float64),
            ),
            held=tuple(held),
        )

    def _t_ave(self, function: str) -> float:
        last = self._last.get(function)
        return last[1] if last is not None else self.default_t_ave_s

    def _report_stale(self, function: str, epochs: int) -> None:
        if self.on_stale is not None:
            self.on_stale(function, epochs)

    def _log_causes(self, now: Mapping[str, str]) -> None:
        """One line when a cause starts, one when it clears; nothing while it persists."""
        for cause, detail in now.items():
            if cause not in self._causes:
                log.warning(
                    "forecast: %s (%s): functions are planned on their last known forecast for up to %d epoch(s), "
                    "then keep their current containers",
                    cause, detail, self.max_stale_epochs,
                )  # fmt: skip
        for cause in set(self._causes) - set(now):
            log.info("forecast: %s cleared", cause)
        self._causes = dict(now)


def history_forecaster(
    settings: CasaSettings,
    source: MetricsSource,
    on_fallback: Callable[[str], None] | None = None,
    on_stale: Callable[[str, int], None] | None = None,
) -> HistoryForecaster:
    """``casa autoscaler``'s forecaster over ``source``, from the ``forecast`` and ``autoscaler`` settings."""
    from casa_sched.forecasting import create as create_forecaster

    f = settings.forecast
    return HistoryForecaster(
        source, settings.autoscaler.default_t_ave_s, create_forecaster(f.method, f),
        history_minutes=f.history_minutes, max_stale_epochs=f.max_stale_epochs, timezone=settings.signals.timezone,
        on_fallback=on_fallback, on_stale=on_stale,
    )  # fmt: skip


def _minute_of_day(t: datetime, timezone: str) -> int:
    local = t.astimezone(ZoneInfo(timezone))
    return local.hour * 60 + local.minute


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise MetricsError(f"{where}: expected a finite number >= 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class _FunctionMetrics:
    requests_per_minute: tuple[float, ...]  # one value: held flat over any window
    t_ave_s: float | None
    in_flight: float | None


def parse_metrics_document(data: Any, where: str) -> tuple[dict[str, _FunctionMetrics], dict[str, float]]:
    """Pure parser of the metrics file format::

        {"functions": {"<id>": {"requests_per_minute": 120 | [120, 130, ...],
                                "t_ave_s": 0.2, "in_flight": 14}},
         "pods": {"<namespace>/<name>": {"cpu_cores": 1.9}}}

    Every field is optional except ``requests_per_minute`` per listed function.
    """
    if not isinstance(data, dict):
        raise MetricsError(f"{where}: the top level must be an object")
    functions: dict[str, _FunctionMetrics] = {}
    raw_functions = data.get("functions") or {}
    if not isinstance(raw_functions, dict):
        raise MetricsError(f"{where}: functions must be an object")
    for name, raw in raw_functions.items():
        w = f"{where}: functions.{name}"
        if not isinstance(raw, dict) or "requests_per_minute" not in raw:
            raise MetricsError(f"{w}: needs requests_per_minute")
        rpm = raw["requests_per_minute"]
        values = [_number(v, f"{w}.requests_per_minute[{i}]") for i, v in enumerate(rpm)] if isinstance(rpm, list) \
            else [_number(rpm, f"{w}.requests_per_minute")]  # fmt: skip
        if not values:
            raise MetricsError(f"{w}.requests_per_minute: expected at least one value")
        t_ave = _number(raw["t_ave_s"], f"{w}.t_ave_s") if raw.get("t_ave_s") is not None else None
        if t_ave is not None and t_ave <= 0:
            raise MetricsError(f"{w}.t_ave_s: expected a duration > 0 s, got {t_ave}")
        in_flight = _number(raw["in_flight"], f"{w}.in_flight") if raw.get("in_flight") is not None else None
        functions[str(name)] = _FunctionMetrics(tuple(values), t_ave, in_flight)
    pods: dict[str, float] = {}
    raw_pods = data.get("pods") or {}
    if not isinstance(raw_pods, dict):
        raise MetricsError(f"{where}: pods must be an object")
    for key, raw in raw_pods.items():
        if not isinstance(raw, dict) or "cpu_cores" not in raw:
            raise MetricsError(f"{where}: pods.{key}: needs cpu_cores")
        pods[str(key)] = _number(raw["cpu_cores"], f"{where}: pods.{key}.cpu_cores")
    return functions, pods


class FileMetricsSource:
    """Metrics from a JSON file (:func:`parse_metrics_document`), re-read when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._signature: tuple[int, int] | None = None
        self._functions: dict[str, _FunctionMetrics] = {}
        self._pods: dict[str, float] = {}
        self.load()

    def load(self) -> None:
        """(Re)read the file when its mtime or size changed; :class:`MetricsError` when unusable."""
        try:
            st = self.path.stat()
            sig = (st.st_mtime_ns, st.st_size)
            if sig == self._signature:
                return
            if not stat.S_ISREG(st.st_mode):  # a directory fails the read; a FIFO would block it
                raise MetricsError(f"metrics file {self.path}: not a regular file")
            data = parse_json(f"metrics file {self.path}", self.path.read_bytes())
        except OSError as exc:
            raise MetricsError(f"metrics file {self.path}: {exc.strerror or exc}") from exc
        except InputError as exc:
            raise MetricsError(str(exc)) from None
        self._functions, self._pods = parse_metrics_document(data, f"metrics file {self.path}")
        self._signature = sig

    def request_counts(self, functions: Sequence[str], end: datetime, minutes: int) -> Mapping[str, FloatArray]:
        self.load()
        out: dict[str, FloatArray] = {}
        for f in functions:
            m = self._functions.get(f)
            if m is None:
                continue
            v = np.asarray(m.requests_per_minute, dtype=np.float64)
            # one value: flat; a series: its last ``minutes`` values, repeated when shorter
            out[f] = np.resize(v[-minutes:], minutes) if v.size > 1 else np.full(minutes, v[0])
        return out

    def mean_duration_s(self, functions: Sequence[str], end: datetime, minutes: int) -> Mapping[str, float]:
        self.load()
        return {f: m.t_ave_s for f in functions if (m := self._functions.get(f)) is not None and m.t_ave_s is not None}

    def in_flight(self, functions: Sequence[str]) -> Mapping[str, float]:
        self.load()
        return {
            f: m.in_flight for f in functions if (m := self._functions.get(f)) is not None and m.in_flight is not None
        }

    def cpu_usage_cores(self, pods: Sequence[str]) -> Mapping[str, float]:
        self.load()
        return {p: self._pods[p] for p in pods if p in self._pods}


class NoMetrics:
    """No metrics back-end configured: every function is held, nothing is invented."""

    def request_counts(self, functions: Sequence[str], end: datetime, minutes: int) -> Mapping[str, FloatArray]:
        return {}

    def mean_duration_s(self, functions: Sequence[str], end: datetime, minutes: int) -> Mapping[str, float]:
        return {}

    def in_flight(self, functions: Sequence[str]) -> Mapping[str, float]:
        return {}

    def cpu_usage_cores(self, pods: Sequence[str]) -> Mapping[str, float]:
        return {}
