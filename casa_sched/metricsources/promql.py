"""A configured PromQL pair, for platforms this package does not know.

``forecast.promql_requests_per_s``: requests/s per function (one series per value of
``forecast.function_label``), evaluated at one-minute steps and multiplied by 60 to give
requests per minute (so it should be a rate over a window of about a minute, e.g.
``sum by (fn) (rate(my_requests_total[1m]))``); ``forecast.promql_duration_s``: the mean
execution time per function, s; ``forecast.promql_in_flight`` (optional): requests in flight.
A minute without a value is NaN (a gap), as for the counter-based sources.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from casa_sched._typing import FloatArray
from casa_sched.metricsources.base import PromClient, PrometheusSource, by_label


@dataclass
class PromqlSource(PrometheusSource):
    rate_expr: str = ""
    duration_expr: str = ""

    @classmethod
    def create(cls, client: PromClient, requests_per_s: str, duration_s: str, function_label: str,
               in_flight: str | None = None) -> PromqlSource:  # fmt: skip
        return cls(client=client, function_label=function_label, rate_expr=requests_per_s, duration_expr=duration_s,
                   in_flight_expr=in_flight or "")  # fmt: skip

    def request_counts(self, functions: Sequence[str], end: datetime, minutes: int) -> Mapping[str, FloatArray]:
        if not functions:
            return {}
        first = end - timedelta(minutes=minutes - 1)
        out: dict[str, FloatArray] = {}
        for s in self.client.range(self.rate_expr, first, end, 60):
            fn = self._name(s.get("metric", {}))
            if fn is None or fn not in set(functions):
                continue
            v = np.full(minutes, np.nan)
            for t, value in s.get("values", []):
                i = round((float(t) - first.timestamp()) / 60.0)
                if 0 <= i < minutes:
                    v[i] = 60.0 / self.client.clock.factor * float(value)  # per wall-clock second → per minute
            out[fn] = v
        return out

    def mean_duration_s(self, functions: Sequence[str], end: datetime, minutes: int) -> Mapping[str, float]:
        got = by_label(self.client.instant(self.duration_expr, end), self._name)
        return {f: v for f, v in got.items() if f in set(functions) and v > 0}

    def in_flight(self, functions: Sequence[str]) -> Mapping[str, float]:
        if not self.in_flight_expr:
            return {}
        got = by_label(self._saturation("in_flight", self.in_flight_expr), self._name)
        return {f: max(v, 0.0) for f, v in got.items() if f in set(functions)}
