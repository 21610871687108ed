"""A simulated run under the live metric names, so dashboards can be tried without a cluster.

``casa simulate --serve-metrics PORT --speed X`` calls :func:`publish_epoch` after each simulated
epoch and then waits ``epoch_s / X`` seconds: counters step once per epoch (the simulator's
per-epoch totals, eqs. 4-5 and 7), so ``rate()`` over a window of a few epochs is the epoch rate.
Per-node power and the plan's containers per node are not in the simulator's epoch results and
are not served; the carbon intensity and price gauges are the epoch's energy-weighted means
(carbon / energy, energy cost / energy).
"""

from __future__ import annotations

from casa_sched.contract.results import EpochResult
from casa_sched.metrics import CasaMetrics
from casa_sched.models.accounting import J_PER_KWH


def publish_epoch(metrics: CasaMetrics, result: EpochResult, solve_s: float) -> None:
    """Add one simulated epoch's totals to ``metrics`` (counters) and set its gauges."""
    acc = result.accounting
    metrics.energy_joules_total.inc(acc.energy_kwh * J_PER_KWH)
    metrics.carbon_grams_total.inc(acc.carbon_g)
    metrics.energy_cost_dollars_total.inc(acc.cost_usd)
    metrics.water_liters_total.inc(acc.water_l)
    if acc.energy_kwh > 0:
        metrics.carbon_intensity_grams_per_kwh.set(acc.carbon_g / acc.energy_kwh)
        metrics.energy_price_dollars_per_kwh.set(acc.energy_cost_usd / acc.energy_kwh)
    for fn, stats in result.functions.items():
        metrics.function_requests_total.labels(function=fn).inc(stats.requests)
        metrics.slo_violations_total.labels(function=fn).inc(stats.dropped)
        if stats.requests:
            metrics.slo_violation_ratio.labels(function=fn).set(stats.violation_rate)  # eq. (7)
    if result.requests:
        metrics.slo_sl_ave_ratio.set(result.slo_violation_rate)
        metrics.slo_request_violation_ratio.set(result.request_violation_rate)
    metrics.plan_solve_seconds.observe(solve_s)
    metrics.plan_epoch.set(result.epoch)
