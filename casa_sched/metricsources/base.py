"""Prometheus as the forecast's metrics source: one query client and the shared PromQL shapes.

A source answers, per function: requests per minute over a history window, the mean execution
time T_ave, requests in flight now (the intra-epoch autoscaler's saturation signal, paper §V.D)
and pods' CPU use. Each platform (OpenFaaS, Knative by metric generation, a configured PromQL
pair) is one module giving the metric names and labels; the arithmetic is here, once.

Requests per minute come from the raw request counters, not from ``increase()``: a range query
of every counter series at one-minute steps (from one minute before the window, as a baseline),
then per-series differences summed per function. That is exact for minute-aligned scrapes and
handles a counter *reset* (a gateway or queue-proxy restart) explicitly: a drop counts the value
after the reset as that minute's requests, as Prometheus' own ``increase()`` does. A minute with
no sample of any of a function's series is NaN (a gap), never zero: the caller decides. A series
that appears inside the window counts from zero (a pod created then).

Errors are typed by cause, so the caller can count and log each once: :class:`MetricsUnavailable`
with ``reason`` ``unreachable`` (connection refused, DNS), ``timeout`` or ``bad_response`` (HTTP
status, PromQL error, unexpected JSON), after ``retries`` retries with exponential backoff.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import requests
import urllib3
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from casa_sched._typing import BoolArray, FloatArray
from casa_sched.clock import WALL, Clock

log = logging.getLogger(__name__)

UNREACHABLE = "unreachable"
TIMEOUT = "timeout"
BAD_RESPONSE = "bad_response"


class MetricsUnavailable(RuntimeError):  # noqa: N818 - reads as the condition it reports
    """Prometheus could not answer; ``reason`` is one of unreachable, timeout, bad_response."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class PromClient:
    """Instant and range queries with a timeout per request and retries on transient failures.

    Times and windows are on ``clock`` (:mod:`casa_sched.clock`): a query about emulated time is
    asked at its wall-clock instant, and a range query's sample times come back emulated.
    """

    url: str
    timeout_s: float = 10.0
    retries: int = 2
    backoff_s: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    clock: Clock = WALL
    _prom: PrometheusConnect = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # no urllib3 retries underneath: they would turn a read timeout into a connection error
        # and multiply the wait; this class retries, and tells the causes apart
        self._prom = PrometheusConnect(url=self.url, disable_ssl=True, timeout=self.timeout_s,
                                       retry=Retry(total=0, read=False))  # fmt: skip

    def _call(self, what: str, fn: Callable[[], Any]) -> list[dict[str, Any]]:
        last = (UNREACHABLE, "")
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                data = fn()
            except requests.Timeout as exc:
                last = (TIMEOUT, f"{type(exc).__name__}")
                continue
            except (requests.ConnectionError, urllib3.exceptions.HTTPError, OSError) as exc:
                last = (UNREACHABLE, f"{type(exc).__name__}")
                continue
            except PrometheusApiClientException as exc:
                text = str(exc)
                if "HTTP Status Code 5" in text and "execution" not in text:
                    last = (BAD_RESPONSE, text[:160])
                    continue
                raise MetricsUnavailable(BAD_RESPONSE, f"{self.url}: {what}: {text[:200]}") from exc
            except (ValueError, KeyError) as exc:
                raise MetricsUnavailable(BAD_RESPONSE, f"{self.url}: {what}: not a Prometheus answer") from exc
            if not isinstance(data, list):
                raise MetricsUnavailable(BAD_RESPONSE, f"{self.url}: {what}: expected a vector or matrix")
            return data
        raise MetricsUnavailable(last[0], f"{self.url}: {what}: {last[0]} after {self.retries + 1} attempts {last[1]}")

    def instant(self, query: str, at: datetime | None = None) -> list[dict[str, Any]]:
        params = {"time": f"{self.clock.real_unix_s(at.timestamp()):.3f}"} if at is not None else None
        return self._call(query, lambda: self._prom.custom_query(query, params=params))

    def range(self, query: str, start: datetime, end: datetime, step_s: float) -> list[dict[str, Any]]:
        c = self.clock
        step = f"{step_s:g}s" if c.real else c.promql_duration(step_s)
        data = self._call(query, lambda: self._prom.custom_query_range(
            query, c.real_datetime(start), c.real_datetime(end), step))  # fmt: skip
        if c.real:
            return data
        return [{**s, "values": [[c.emulated_unix_s(float(t)), v] for t, v in s.get("values", [])]} for s in data]

    def window(self, emulated_s: float) -> str:
        """A PromQL range covering ``emulated_s`` of emulated time."""
        return self.clock.promql_duration(emulated_s) if not self.clock.real else f"{emulated_s:g}s"


def matchers(*parts: str) -> str:
    """``{a="1",b="2"}`` from label matchers (empty parts dropped); ``""`` when there are none."""
    inner = ",".join(p for p in parts if p)
    return "{" + inner + "}" if inner else ""


def quoted_in(label: str, values: Sequence[str]) -> str:
    """A matcher ``label=~"a|b"`` for exactly these values (regex-escaped)."""
    import re

    return f'{label}=~"' + "|".join(re.escape(v).replace("\\", "\\\\") for v in values) + '"'


def per_minute_requests(
    series: Sequence[Mapping[str, Any]], key: Callable[[Mapping[str, str]], str | None], first_s: float, minutes: int
) -> dict[str, FloatArray]:
    """Requests per minute per function from counter series sampled at one-minute steps.

    ``series`` is a range-query matrix whose steps are ``first_s - 60, first_s, ..., first_s +
    (minutes - 1) · 60`` (the first step is the baseline). Minute i is the increase up to step
    i; a drop (reset) counts the new value; a step without a sample is missing for that series,
    and a minute no series of the function covers is NaN.
    """
    totals: dict[str, FloatArray] = {}
    covered: dict[str, BoolArray] = {}
    for s in series:
        fn = key(s.get("metric", {}))
        if fn is None:
            continue
        v = np.full(minutes + 1, np.nan)
        for t, value in s.get("values", []):
            i = round((float(t) - (first_s - 60.0)) / 60.0)
            if 0 <= i <= minutes:
                v[i] = float(value)
        prev, cur = v[:-1], v[1:]
        inc = np.where(np.isnan(prev), cur, np.where(cur < prev, cur, cur - prev))  # new series / reset / normal
        ok = ~np.isnan(cur)
        totals.setdefault(fn, np.zeros(minutes))
        covered.setdefault(fn, np.zeros(minutes, dtype=bool))
        totals[fn][ok] += inc[ok]
        covered[fn] |= ok
    return {fn: np.where(covered[fn], totals[fn], np.nan) for fn in totals}


def by_label(result: Sequence[Mapping[str, Any]], key: Callable[[Mapping[str, str]], str | None]) -> dict[str, float]:
    """An instant vector as {function: value}, dropping NaN / infinite values (e.g. 0/0)."""
    out: dict[str, float] = {}
    for r in result:
        fn = key(r.get("metric", {}))
        if fn is None:
            continue
        value = float(r["value"][1])
        if math.isfinite(value):
            out[fn] = out.get(fn, 0.0) + value
    return out


@dataclass
class PrometheusSource:
    """A metrics source over Prometheus; subclasses set the names (see the platform modules).

    ``counter``: the request counter (or histogram ``_count``); ``duration_sum``/``_count``: the
    latency histogram's series and ``duration_scale`` to seconds; ``in_flight_expr``: PromQL
    (``{sel}`` is replaced by the selector) of in-flight requests summed by the function label.
    """

    client: PromClient
    function_label: str
    selector: str = ""
    counter: str = ""
    duration_sum: str = ""
    duration_count: str = ""
    duration_scale: float = 1.0
    in_flight_expr: str = ""
    function_suffix: str = ""  # stripped from label values (OpenFaaS' ".namespace")
    # the saturation signals (in flight, CPU) are "unknown" (empty) while Prometheus fails: the
    # intra-epoch autoscaler then grows nothing; each failure calls on_unavailable(signal, reason)
    on_unavailable: Callable[[str, str], None] | None = None
    _failing: set[str] = field(default_factory=set, init=False, repr=False)
    cpu_expr: str = (
        'sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{container!="",container!="POD"}[{w}]))'
    )
    cpu_window_s: float = 300.0

    def _name(self, labels: Mapping[str, str]) -> str | None:
        value = labels.get(self.function_label)
        if value is None:
            return None
        if self.function_suffix and value.endswith(self.function_suffix):
            value = value[: -len(self.function_suffix)]
        return value

    def _sel(self, functions: Sequence[str] = ()) -> str:
        fns = [f + self.function_suffix for f in functions] + ([*functions] if self.function_suffix else [])
        return matchers(self.selector, quoted_in(self.function_label, fns) if functions else "")

    def request_counts(self, functions: Sequence[str], end: datetime, minutes: int) -> Mapping[str, FloatArray]:
        """Requests in each of the ``minutes`` minutes before ``end``; functions without series are absent."""
        if not functions:
            return {}
        first = end - timedelta(minutes=minutes - 1)
        data = self.client.range(f"{self.counter}{self._sel(functions)}", first - timedelta(minutes=1), end, 60)
        wanted = set(functions)
        counts = per_minute_requests(data, self._name, first.timestamp(), minutes)
        return {f: v for f, v in counts.items() if f in wanted}

    def mean_duration_s(self, functions: Sequence[str], end: datetime, minutes: int) -> Mapping[str, float]:
        if not functions or not self.duration_sum:
            return {}
        sel, w, lab = self._sel(functions), self.client.window(minutes * 60.0), self.function_label
        q = (f"sum by ({lab}) (increase({self.duration_sum}{sel}[{w}])) / "
             f"sum by ({lab}) (increase({self.duration_count}{sel}[{w}]))")  # fmt: skip
        got = by_label(self.client.instant(q, end), self._name)
        return {f: v * self.duration_scale for f, v in got.items() if f in set(functions) and v > 0}

    def _saturation(self, signal: str, query: str) -> list[dict[str, Any]]:
        """An instant query of a saturation signal; on failure nothing (unknown), logged once per cause."""
        try:
            result = self.client.instant(query)
        except MetricsUnavailable as exc:
            if signal not in self._failing:
                log.warning("%s unknown while Prometheus fails (%s): no intra-epoch growth from it", signal, exc)
                self._failing.add(signal)
            if self.on_unavailable is not None:
                self.on_unavailable(signal, exc.reason)
            return []
        if signal in self._failing:
            log.info("%s readable again", signal)
            self._failing.discard(signal)
        return result

    def in_flight(self, functions: Sequence[str]) -> Mapping[str, float]:
        if not functions or not self.in_flight_expr:
            return {}
        result = self._saturation("in_flight", self.in_flight_expr.replace("{sel}", self._sel(functions)))
        got = by_label(result, self._name)
        return {f: max(v, 0.0) for f, v in got.items() if f in set(functions)}

    def cpu_usage_cores(self, pods: Sequence[str]) -> Mapping[str, float]:
        if not pods:
            return {}
        got: dict[str, float] = {}
        for r in self._saturation("cpu_usage", self.cpu_expr.replace("{w}", self.client.window(self.cpu_window_s))):
            m = r.get("metric", {})
            key = f"{m.get('namespace')}/{m.get('pod')}"
            if key in set(pods):
                got[key] = float(r["value"][1])
        return got
