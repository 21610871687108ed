"""Live accounting: node power, energy, carbon, cost and SLO violations from Prometheus (CASA eqs. 1-7).

Each :meth:`LiveAccountant.tick` covers the window since the previous successful tick:

1. **U_i** per node: cores busy, ``sum by (node) (rate(container_cpu_usage_seconds_total[w]))``
   from cAdvisor, or, under ``workload.utilisation: allocated``, the CPU requested by the node's
   containers (kube-state-metrics' ``kube_pod_container_resource_requests{resource="cpu"}``),
   the same two readings of U the simulator offers. Clamped to the node's cores.
2. **P_i**: *measured* where a meter exists (:data:`MEASURED_POWER_QUERIES`, in order of
   preference: IPMI DCMI at the wall, Kepler's CPU+DRAM zones, node_exporter's RAPL
   package+DRAM counters; note that the latter two leave out fans, disks and PSU losses), else the
   node's eq. (2) curve ``P_i(U_i)`` (its ``casa.dev/power-model`` annotation, or the default
   node). ``casa_node_power_watts{node,source}`` says which.
3. **Eq. (1)**: ``P_IT = Σ P_i + P_S + P_N`` (:func:`casa_sched.models.cooling.it_power_w`), held
   over the window, split over its minutes, and eqs. (3)-(5) via
   :func:`casa_sched.models.accounting.account_hours` with each minute's ``E_t``, ``CI`` and price
   from the configured signal providers: the simulator's own accounting functions.
4. **SLO** (eqs. 6-7): per function, requests ``N`` = the increase of the latency histogram's
   ``+Inf`` bucket over the window, violations ``V`` = requests slower than ``laxity · T_ave``,
   *estimated from the histogram buckets by linear interpolation inside the bucket holding the
   deadline* (:func:`casa_sched.models.slo.count_above`; a deadline above the last finite bucket
   counts that bucket as on time, so ``V`` is then a lower bound). ``T_ave`` is the caller's value
   for the function (the profile the planner uses) or else the histogram's mean over the last hour.

The power over a window is ``P(mean U)``, not the mean of ``P(U)``: Prometheus gives the mean
rate over the window; with a curve this flat (eq. 2 of the default node) and one-minute windows
the difference is small, and it is why ticks should stay short.

A tick whose queries fail counts nothing and leaves the window open, so the next successful tick
covers the gap (up to ``max_window_s``; beyond that the oldest part is dropped with a warning).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

import numpy as np

from casa_sched.clock import WALL, Clock
from casa_sched.contract.forecast import EpochSignals
from casa_sched.metrics import CasaMetrics
from casa_sched.models.accounting import J_PER_KWH, Accounting, WaterFactors, account_hours
from casa_sched.models.cooling import it_power_w
from casa_sched.models.power import DEFAULT_NODE_CURVE, PowerCurve
from casa_sched.models.slo import count_above, request_violation_rate, sl_ave
from casa_sched.settings import CasaSettings

log = logging.getLogger(__name__)

Sample = tuple[dict[str, str], float]
"""One instant-vector element: its labels and its value."""

_RAPL_PKG = "sum by (node) (rate(node_rapl_package_joules_total[{w}]))"
_RAPL_DRAM = "sum by (node) (rate(node_rapl_dram_joules_total[{w}]))"
# Measured node power, most complete meter first; ``{w}`` is the window as a PromQL duration.
MEASURED_POWER_QUERIES: tuple[tuple[str, str], ...] = (
    ("ipmi", "sum by (node) (ipmi_dcmi_power_consumption_watts)"),
    ("kepler", 'sum by (node) (kepler_node_cpu_watts{{zone=~"package|dram"}})'),
    ("rapl", _RAPL_PKG + " + (" + _RAPL_DRAM + " or " + _RAPL_PKG + " * 0)"),  # DRAM where the CPU has a counter
)
BUSY_QUERY = 'sum by (node) (rate(container_cpu_usage_seconds_total{{container!="",container!="POD"}}[{w}]))'
ALLOCATED_QUERY = 'sum by (node) (kube_pod_container_resource_requests{{resource="cpu"}})'
T_AVE_WINDOW_S = 3600.0


class AccountingError(RuntimeError):
    """A Prometheus query failed or answered something unusable; the message names the query."""


class PrometheusQuery(Protocol):
    """Evaluates an instant PromQL query at a Unix time and returns its samples."""

    def __call__(self, promql: str, at_unix_s: float) -> list[Sample]: ...


class SignalsNow(Protocol):
    """Per-minute CI, price and E_t from ``start`` (what the autoscaler's signal reader answers)."""

    def read(self, start: datetime, epoch_s: float) -> EpochSignals: ...


@dataclass(frozen=True)
class LatencyHistogram:
    """The request-latency histogram of the functions, as the platform exports it.

    Default: Knative's queue-proxy ``revision_app_request_latencies`` (milliseconds, label
    ``service_name``; releases up to 1.18). Newer releases export
    ``kn_serving_invocation_duration_seconds`` (seconds): give its name, function label and 1.0.
    """

    metric: str = "revision_app_request_latencies"
    function_label: str = "service_name"
    seconds_per_unit: float = 0.001


@dataclass(frozen=True)
class TickResult:
    """What one tick accounted: the window, each node's U and power (W, source), eq. (1)'s P_IT,
    eqs. (3)-(5)'s totals, and per function ``(N, V)``."""

    window_s: float
    busy_cores: Mapping[str, float]
    node_power: Mapping[str, tuple[float, str]]
    it_power_w: float
    accounting: Accounting
    functions: Mapping[str, tuple[float, float]] = field(default_factory=dict)


def prometheus_query(url: str, timeout_s: float = 5.0, clock: Clock = WALL) -> PrometheusQuery:
    """A :class:`PrometheusQuery` over Prometheus' HTTP API at ``url``; ``at_unix_s`` is on
    ``clock`` and asked at its wall-clock instant (:mod:`casa_sched.clock`)."""
    from prometheus_api_client import PrometheusConnect
    from prometheus_api_client.exceptions import PrometheusApiClientException
    from requests import RequestException

    client = PrometheusConnect(url=url, disable_ssl=False)

    def query(promql: str, at_unix_s: float) -> list[Sample]:
        try:
            data = client.custom_query(promql, params={"time": f"{clock.real_unix_s(at_unix_s):.3f}"},
                                       timeout=timeout_s)  # fmt: skip
        except (PrometheusApiClientException, RequestException, ValueError) as exc:
            raise AccountingError(f"Prometheus at {url}: query {promql!r} failed: {exc}") from exc
        out: list[Sample] = []
        for item in data:
            try:
                out.append((dict(item["metric"]), float(item["value"][1])))
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise AccountingError(f"Prometheus at {url}: query {promql!r}: not an instant vector") from exc
        return out

    return query


def _duration(seconds: float, clock: Clock = WALL) -> str:
    """A PromQL range of ``seconds`` on ``clock`` (whole seconds on the wall clock)."""
    return f"{max(1, round(seconds))}s" if clock.real else clock.promql_duration(seconds)


class LiveAccountant:
    """Fills the accounting metrics of ``metrics`` from Prometheus, one window per :meth:`tick`."""

    def __init__(
        self,
        settings: CasaSettings,
        metrics: CasaMetrics,
        query: PrometheusQuery,
        signals: SignalsNow,
        curves: Mapping[str, PowerCurve] | None = None,
        *,
        latency: LatencyHistogram | None = LatencyHistogram(),
        t_ave_s: Mapping[str, float] | None = None,
        utilisation: Literal["busy", "allocated"] | None = None,
        max_window_s: float = 3600.0,
        default_curve: PowerCurve = DEFAULT_NODE_CURVE,
        clock: Clock = WALL,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._query = query
        self._signals = signals
        self.curves: dict[str, PowerCurve] = dict(curves or {})
        self._latency = latency
        self.t_ave_s: dict[str, float] = dict(t_ave_s or {})
        self._utilisation = utilisation or settings.workload.utilisation
        self._max_window_s = max_window_s
        self._default_curve = default_curve
        self._clock = clock  # windows are emulated seconds: queried over their wall-clock length
        acc = settings.accounting
        self._water = WaterFactors(acc.water_l_per_cooling_kwh, acc.water_ci_g_per_l, acc.water_price_usd_per_l)
        self._last_unix_s: float | None = None
        self._power_source: dict[str, str] = {}

    def set_curves(self, curves: Mapping[str, PowerCurve]) -> None:
        """Replace the nodes' power curves (the autoscaler calls this with each snapshot's nodes)."""
        self.curves = dict(curves)

    def _by_node(self, promql: str, now: float) -> dict[str, float]:
        out: dict[str, float] = {}
        for labels, value in self._query(promql, now):
            node = labels.get("node")
            if node is not None and math.isfinite(value):
                out[node] = value
        return out

    def _curve(self, node: str) -> PowerCurve:
        return self.curves.get(node, self._default_curve)

    def tick(self, now_unix_s: float) -> TickResult | None:
        """Account the window since the last tick; ``None`` for the first tick (it only starts the
        window). Raises :class:`AccountingError` when Prometheus fails (the window stays open)."""
        if self._last_unix_s is None or now_unix_s <= self._last_unix_s:
            self._last_unix_s = now_unix_s if self._last_unix_s is None else self._last_unix_s
            return None
        window_s = now_unix_s - self._last_unix_s
        if window_s > self._max_window_s:
            log.warning("accounting gap of %.0f s: only the last %.0f s are accounted", window_s, self._max_window_s)
            window_s = self._max_window_s
        w = _duration(window_s, self._clock)
        usage_q = BUSY_QUERY if self._utilisation == "busy" else ALLOCATED_QUERY
        used = self._by_node(usage_q.format(w=w), now_unix_s)
        measured: dict[str, tuple[float, str]] = {}
        for source, template in reversed(MEASURED_POWER_QUERIES):  # preferred sources overwrite
            for node, watts in self._by_node(template.format(w=w), now_unix_s).items():
                measured[node] = (watts, source)
        functions = self._slo(now_unix_s, w) if self._latency is not None else {}
        start = datetime.fromtimestamp(now_unix_s - window_s, UTC)
        signals = self._signals.read(start, window_s)

        nodes = sorted(set(self.curves) | set(used) | set(measured))
        busy = {n: min(max(used.get(n, 0.0), 0.0), float(self._curve(n).cores)) for n in nodes}
        power: dict[str, tuple[float, str]] = {
            n: measured.get(n, (self._curve(n).power_w(busy[n]), "model")) for n in nodes
        }
        cluster = self._settings.cluster
        p_it = float(it_power_w(np.array([p for p, _ in power.values()] or [0.0]),
                                cluster.storage_power_w, cluster.network_power_w))  # fmt: skip
        minutes = signals.ci_g_per_kwh.size
        energy_j = np.full(minutes, p_it * window_s / minutes)  # W held over the window's minutes → J
        account = account_hours(
            energy_j, signals.cooling_factor, signals.ci_g_per_kwh, signals.price_usd_per_kwh, self._water
        )
        self._publish(now_unix_s, busy, power, account, functions)
        self._last_unix_s = now_unix_s
        return TickResult(window_s, busy, power, p_it, account, functions)

    def _slo(self, now: float, w: str) -> dict[str, tuple[float, float]]:
        assert self._latency is not None
        h = self._latency
        fl = h.function_label
        rows = self._query(f"sum by ({fl}, le) (increase({h.metric}_bucket[{w}]))", now)
        buckets: dict[str, list[tuple[float, float]]] = {}
        for labels, value in rows:
            fn, le = labels.get(fl), labels.get("le")
            if fn is None or le is None or not math.isfinite(value):
                continue
            buckets.setdefault(fn, []).append((float(le), value))
        means: dict[str, float] = {}
        missing = [fn for fn in buckets if fn not in self.t_ave_s]
        if missing:
            mean_q = (f"sum by ({fl}) (rate({h.metric}_sum[{_duration(T_AVE_WINDOW_S, self._clock)}])) / "
                      f"sum by ({fl}) (rate({h.metric}_count[{_duration(T_AVE_WINDOW_S, self._clock)}]))")  # fmt: skip
            for labels, value in self._query(mean_q, now):
                fn = labels.get(fl)
                if fn is not None and math.isfinite(value) and value > 0:
                    means[fn] = value * h.seconds_per_unit
        laxity = self._settings.slo.laxity
        out: dict[str, tuple[float, float]] = {}
        for fn, pairs in buckets.items():
            pairs.sort()
            t_ave = self.t_ave_s.get(fn, means.get(fn))
            requests = max(pairs[-1][1], 0.0)
            if t_ave is None or requests <= 0:
                out[fn] = (requests, 0.0)
                continue
            bounds_s = [le * h.seconds_per_unit if math.isfinite(le) else le for le, _ in pairs]
            counts = np.maximum.accumulate(np.maximum([c for _, c in pairs], 0.0))  # increase() jitter
            out[fn] = (requests, min(count_above(bounds_s, counts, laxity * t_ave), requests))  # eq. (6)
        return out

    def _publish(
        self,
        now: float,
        busy: Mapping[str, float],
        power: Mapping[str, tuple[float, str]],
        account: Accounting,
        functions: Mapping[str, tuple[float, float]],
    ) -> None:
        m = self._metrics
        for node, cores in busy.items():
            m.node_busy_cores.labels(node=node).set(cores)
        for node, (watts, source) in power.items():
            previous = self._power_source.get(node)
            if previous is not None and previous != source:  # a meter appeared or went away
                m.node_power_watts.remove(node, previous)
            self._power_source[node] = source
            m.node_power_watts.labels(node=node, source=source).set(watts)
        m.energy_joules_total.inc(account.energy_kwh * J_PER_KWH)
        m.carbon_grams_total.inc(account.carbon_g)
        m.energy_cost_dollars_total.inc(account.cost_usd)
        m.water_liters_total.inc(account.water_l)
        for fn, (n, v) in functions.items():
            m.function_requests_total.labels(function=fn).inc(n)
            m.slo_violations_total.labels(function=fn).inc(v)
            if n > 0:
                m.slo_violation_ratio.labels(function=fn).set(v / n)  # eq. (7): V_f / N_f
        requests = [n for n, _ in functions.values()]
        violations = [v for _, v in functions.values()]
        if sum(requests) > 0:  # SL_ave and the request-weighted rate over the window's functions
            m.slo_sl_ave_ratio.set(sl_ave(violations, requests))
            m.slo_request_violation_ratio.set(request_violation_rate(violations, requests))
        m.accounting_last_tick_seconds.set(now)


def run(
    accountant: LiveAccountant, interval_s: float, stop: Callable[[float], bool], clock: Callable[[], float]
) -> None:
    """Tick every ``interval_s`` until ``stop(timeout)`` (e.g. ``threading.Event.wait``) returns True;
    a failing tick is logged and retried at the next interval."""
    accountant.tick(clock())
    while not stop(interval_s):
        try:
            accountant.tick(clock())
        except AccountingError as exc:
            log.warning("accounting tick failed, the window stays open: %s", exc)
