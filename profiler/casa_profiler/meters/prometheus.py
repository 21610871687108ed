"""Node energy counters through Prometheus's HTTP query API (plain ``requests``).

Sources, chosen with ``counters`` (PromQL series selectors of joules counters, summed):

- node_exporter's rapl collector: ``node_rapl_package_joules_total`` (the default), plus
  ``node_rapl_dram_joules_total`` for DRAM (two selectors: ``rate`` drops the metric name, so one
  regex over both names would collide); silently empty when node_exporter cannot read
  energy_uj (root-only).
- Kepler ≥ 0.10: ``kepler_node_cpu_joules_total{zone="package"}`` (older Kepler:
  ``kepler_node_package_joules_total``).

A power meter: each reading is ``sum(rate(counter[window]))`` (summed over the counters), the average power over the last
``window_s`` (the profiler's sampling interval). ``rate`` handles counter resets and needs two
scrapes inside the window, so the interval must exceed twice the scrape interval. The counter
must come from one node: a selector that matches several instances is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import requests

from casa_profiler.meters.base import MeterBase, MeterError, MeterKind, register

DEFAULT_COUNTER = "node_rapl_package_joules_total"


@register("prometheus")
class PrometheusMeter(MeterBase):
    name = "prometheus"
    kind: MeterKind = "power"

    def __init__(
        self,
        url: str = "http://localhost:9090",
        counters: Sequence[str] | str = (DEFAULT_COUNTER,),
        window_s: float = 30.0,
        timeout_s: float = 5.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.counters = tuple(c.strip() for c in ([counters] if isinstance(counters, str) else counters))
        if not self.counters:
            raise MeterError("--prometheus-counter: at least one joules counter selector is needed")
        for c in self.counters:
            if not c or "[" in c:
                raise MeterError(f"--prometheus-counter must be a series selector without a range, got {c!r}")
        if not window_s >= 0.001:
            raise MeterError(f"rate window must be ≥ 1 ms, got {window_s} s")
        self.window_s = window_s
        self.timeout_s = timeout_s
        for c in self.counters:
            series = self._query(f"count by (instance) ({c})")
            if not series:
                raise MeterError(
                    f"Prometheus at {self.url} has no series for {c}: is node_exporter's rapl collector able to "
                    "read energy_uj (root), or is Kepler installed (kepler_node_cpu_joules_total)?"
                )
            instances = sorted(str(s.get("metric", {}).get("instance", "?")) for s in series)
            if len(instances) > 1:
                raise MeterError(
                    f"{c} matches {len(instances)} instances ({', '.join(instances[:4])}): select this node's, "
                    f"e.g. --prometheus-counter '{c.split('{')[0]}{{instance=\"{instances[0]}\"}}'"
                )

    def _query(self, promql: str) -> list[dict[str, Any]]:
        try:
            resp = requests.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise MeterError(f"Prometheus at {self.url} unreachable: {type(exc).__name__}") from None
        try:
            data: Any = resp.json()
        except ValueError:
            data = None
        if resp.status_code != 200 or not isinstance(data, dict) or data.get("status") != "success":
            detail = data.get("error") if isinstance(data, dict) else resp.text[:200]
            raise MeterError(f"Prometheus query {promql!r} failed: HTTP {resp.status_code}: {detail}")
        result = data.get("data", {}).get("result", [])
        return list(result) if isinstance(result, list) else []

    def power_w(self) -> float:
        window = f"{round(self.window_s * 1000)}ms"
        promql = " + ".join(f"sum(rate({c}[{window}]))" for c in self.counters)
        result = self._query(promql)
        if not result:
            raise MeterError(
                f"{promql} is empty: fewer than two scrapes of a counter in the last {self.window_s:g} s; "
                "sample less often (--interval above twice the scrape interval)"
            )
        return float(result[0]["value"][1])
