"""Live carbon, energy, cost and SLO accounting from Prometheus (CASA eqs. 1-7), for a running cluster.

:class:`~casa_sched.accounting.live.LiveAccountant` reads node CPU use (or allocations), measured
node power where a meter exists, and function latency histograms through Prometheus, and turns
them into the ``casa_*`` accounting metrics of :mod:`casa_sched.metrics` with the same model
functions the simulator uses (:mod:`casa_sched.models`).
"""

from casa_sched.accounting.live import (
    MEASURED_POWER_QUERIES,
    AccountingError,
    LatencyHistogram,
    LiveAccountant,
    PrometheusQuery,
    Sample,
    SignalsNow,
    TickResult,
)

__all__ = [
    "MEASURED_POWER_QUERIES",
    "AccountingError",
    "LatencyHistogram",
    "LiveAccountant",
    "PrometheusQuery",
    "Sample",
    "SignalsNow",
    "TickResult",
]
