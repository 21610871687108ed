"""Every Prometheus metric casa-sched exports, declared once (README "Metrics").

Names carry their unit (``_total``, ``_seconds``, ``_watts``, ``_ratio``, ``_grams``, ``_joules``,
``_dollars``) and every metric has a fixed label set, listed here and nowhere else. Components
never call ``prometheus_client`` constructors themselves: they instantiate :class:`CasaMetrics`
once per process (or per test, which gives each test its own registry and avoids the
"Duplicated timeseries" error of the global registry) and use its attributes.

Components only touch the metrics they own; the others simply stay at zero / absent in that
process. Metrics whose value is a physical quantity (carbon, energy, cost, power) are written by
the autoscaler's accounting loop; the extender owns the ``casa_extender_*`` family and the plan
gauges it can see.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "EXTENDER_LATENCY_BUCKETS_S", "FAIL_OPEN_REASONS", "CasaMetrics", "FailOpenReason"]

# The scheduler's default extender timeout is 5 s and the manifests use 1 s; the target is a few
# ms, so the buckets are dense below 25 ms and sparse up to the timeout.
EXTENDER_LATENCY_BUCKETS_S: Final[tuple[float, ...]] = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
)  # fmt: skip
PLAN_SOLVE_BUCKETS_S: Final[tuple[float, ...]] = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 180.0)


class FailOpenReason(StrEnum):
    """Why the extender answered "all nodes, neutral scores" instead of following the plan: the
    values of the ``reason`` label of ``casa_extender_fail_open_total``, listed only here."""

    PLAN_MISSING = "plan_missing"
    PLAN_STALE = "plan_stale"
    PLAN_INVALID = "plan_invalid"
    INTERNAL_ERROR = "internal_error"


FAIL_OPEN_REASONS: Final[tuple[str, ...]] = tuple(r.value for r in FailOpenReason)


class CasaMetrics:
    """All casa-sched metrics, registered in one :class:`CollectorRegistry` of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry

        # -- physical accounting (autoscaler; eqs. 1-5) ------------------------------------------
        self.carbon_grams_total = Counter(
            "casa_carbon_grams_total", "Operational carbon emitted by the cluster, gCO2eq (eq. 4).", registry=r
        )
        self.energy_joules_total = Counter(
            "casa_energy_joules_total", "IT plus cooling energy used by the cluster, J (eqs. 1, 3).", registry=r
        )
        self.energy_cost_dollars_total = Counter(
            "casa_energy_cost_dollars_total", "Electricity and water cost, USD (eq. 5).", registry=r
        )
        self.water_liters_total = Counter(
            "casa_water_liters_total", "Cooling water evaporated, L (eq. 5, water term).", registry=r
        )
        self.node_power_watts = Gauge(
            "casa_node_power_watts",
            "Node power P_i, W: measured where a meter exists (source = kepler | rapl | ipmi), else the node's "
            "eq. (2) model P_i(U_i) (source = model).",
            ["node", "source"],
            registry=r,
        )
        self.node_busy_cores = Gauge(
            "casa_node_busy_cores", "U_i, cores in use on the node over the last accounting tick.", ["node"], registry=r
        )
        self.carbon_intensity_grams_per_kwh = Gauge(
            "casa_carbon_intensity_grams_per_kwh", "Carbon intensity CI_h in use, gCO2eq/kWh.", registry=r
        )
        self.energy_price_dollars_per_kwh = Gauge(
            "casa_energy_price_dollars_per_kwh", "Electricity price EP_h in use, USD/kWh.", registry=r
        )

        # -- SLO (eqs. 6-7) -------------------------------------------------------------------------
        self.slo_violation_ratio = Gauge(
            "casa_slo_violation_ratio",
            "SL_f,e (eq. 7): violated over received requests in the last accounting window.",
            ["function"],
            registry=r,
        )
        self.slo_sl_ave_ratio = Gauge(
            "casa_slo_sl_ave_ratio",
            "SL_ave (eq. 7): the unweighted mean of SL_f over the functions with requests in the last accounting "
            "window (casa simulate --serve-metrics: the last epoch).",
            registry=r,
        )
        self.slo_request_violation_ratio = Gauge(
            "casa_slo_request_violation_ratio",
            "Violated over received requests of all functions together in the same window as casa_slo_sl_ave_ratio: "
            "the request-weighted rate beside SL_ave, so one busy function missing its deadlines shows.",
            registry=r,
        )
        self.function_requests_total = Counter(
            "casa_function_requests_total", "Requests a function received (N_f, eq. 7).", ["function"], registry=r
        )
        self.slo_violations_total = Counter(
            "casa_slo_violations_total",
            "Requests that missed their deadline, laxity x T_ave (V_f, eqs. 6-7); live: estimated from latency "
            "histogram buckets, so fractional.",
            ["function"],
            registry=r,
        )
        self.accounting_last_tick_seconds = Gauge(
            "casa_accounting_last_tick_timestamp_seconds",
            "Unix time of the last accounting tick that integrated energy.",
            registry=r,
        )

        # -- plan (autoscaler writes, extender mirrors what it acts on) -----------------------------
        self.plan_containers = Gauge(
            "casa_plan_containers",
            "Planned containers of a function on a node in the current plan.",
            ["function", "node"],
            registry=r,
        )
        self.plan_epoch = Gauge("casa_plan_epoch", "Epoch number of the plan in use.", registry=r)
        self.plan_solve_seconds = Histogram(
            "casa_plan_solve_seconds",
            "Wall-clock time the planner took for one epoch, s.",
            buckets=PLAN_SOLVE_BUCKETS_S,
            registry=r,
        )
        self.plan_stale_total = Counter(
            "casa_plan_stale_total",
            "Decisions that found the current plan stale (older than plan_stale_after_s).",
            registry=r,
        )
        self.plan_reloads_total = Counter(
            "casa_plan_reloads_total",
            "Plan documents loaded, by outcome (ok | invalid | missing).",
            ["outcome"],
            registry=r,
        )

        # -- extender -------------------------------------------------------------------------------
        self.extender_request_seconds = Histogram(
            "casa_extender_request_seconds",
            "Time to answer one scheduler extender call, from body received to reply built, s.",
            ["verb"],
            buckets=EXTENDER_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.extender_requests_total = Counter(
            "casa_extender_requests_total", "Extender calls by verb and HTTP status code.", ["verb", "code"], registry=r
        )
        self.extender_fail_open_total = Counter(
            "casa_extender_fail_open_total",
            "Extender calls answered with all nodes and neutral scores, by reason.",
            ["reason"],
            registry=r,
        )
        self.extender_plan_info = Gauge(
            "casa_extender_plan_info",
            "1 for the extender's plan status (ok | missing | invalid) and why (the plan source's own "
            "words, e.g. the validation error of an invalid plan; at most 200 characters).",
            ["status", "reason"],
            registry=r,
        )
        self.extender_assumed_pods = Gauge(
            "casa_extender_assumed_pods",
            "Pods placed by the scheduler but not yet seen bound by the pod watch.",
            registry=r,
        )
        self.watch_restarts_total = Counter(
            "casa_watch_restarts_total",
            "Kubernetes list/watch restarts by resource and reason (gone = 410 re-list, error, timeout).",
            ["resource", "reason"],
            registry=r,
        )

        # -- signals --------------------------------------------------------------------------------
        self.signal_fallback_total = Counter(
            "casa_signal_fallback_total",
            "Signal reads that fell back (last value, profile) after a provider failure.",
            ["signal", "reason"],
            registry=r,
        )
        self.forecast_stale_epochs = Gauge(
            "casa_forecast_stale_epochs",
            "Epochs a function's forecast has been its last known one because its history could not be read "
            "(0: fresh); past forecast.max_stale_epochs the function keeps its current containers.",
            ["function"],
            registry=r,
        )
        self.signal_age_seconds = Gauge(
            "casa_signal_age_seconds",
            "Age of the signal value in use: 0 while its provider answers, else since the last good read, s.",
            ["signal"],
            registry=r,
        )

        # -- autoscaler (the live epoch loop) -------------------------------------------------------
        self.autoscaler_api_writes_total = Counter(
            "casa_autoscaler_api_writes_total",
            "Write calls (POST, PUT, PATCH, DELETE) the autoscaler made to the Kubernetes API, by verb.",
            ["verb"],
            registry=r,
        )
        self.autoscaler_phase_seconds = Gauge(
            "casa_autoscaler_phase_seconds",
            "Wall-clock time of each phase of the last epoch (snapshot, forecast, signals, plan, store, apply), s.",
            ["phase"],
            registry=r,
        )
        self.autoscaler_epoch = Gauge("casa_autoscaler_epoch", "Last epoch the autoscaler applied.", registry=r)
        self.autoscaler_leader = Gauge(
            "casa_autoscaler_leader", "1 while this replica holds the autoscaler Lease, else 0.", registry=r
        )
        self.autoscaler_actions_total = Counter(
            "casa_autoscaler_actions_total",
            "Actions executed, by kind (scale | deletion_cost | resize) and outcome (applied | unchanged | "
            "skipped | failed).",
            ["kind", "outcome"],
            registry=r,
        )
        self.autoscaler_resize_total = Counter(
            "casa_autoscaler_resize_total",
            "In-place resizes by how they ended (applied | deferred | infeasible | error).",
            ["outcome"],
            registry=r,
        )
        self.autoscaler_api_retries_total = Counter(
            "casa_autoscaler_api_retries_total",
            "Retryable API failures (timeouts, 409, 429, 5xx) the autoscaler backed off from, by phase.",
            ["phase"],
            registry=r,
        )
        self.autoscaler_plan_fallback_total = Counter(
            "casa_autoscaler_plan_fallback_total",
            "Epochs whose planner did not give a plan (error | overrun) and that kept D_{e-1} instead.",
            ["reason"],
            registry=r,
        )
        self.autoscaler_held_functions = Gauge(
            "casa_autoscaler_held_functions",
            "Functions left out of the last plan because the metrics source had no data for them.",
            registry=r,
        )
        self.autoscaler_ticks_total = Counter(
            "casa_autoscaler_ticks_total", "Intra-epoch passes run (convergence and growth).", registry=r
        )
        self.autoscaler_intra_grows_total = Counter(
            "casa_autoscaler_intra_grows_total",
            "Intra-epoch in-place growths of a saturated function's pod by one unit (paper §V.D).",
            registry=r,
        )
        self.node_power_model_invalid = Gauge(
            "casa_node_power_model_invalid",
            "1 when the node's casa.dev/power-model annotation is malformed and the default curve is used.",
            ["node"],
            registry=r,
        )

        # -- node power states (autoscaler; README "Node power management") ------------------------
        self.node_power_state = Gauge(
            "casa_node_power_state",
            "1 for the node's casa.dev/power-state (on | draining | sleeping | waking) after the last power pass, "
            "0 for the other states.",
            ["node", "state"],
            registry=r,
        )
        self.node_power_actions_total = Counter(
            "casa_node_power_actions_total",
            "Node power steps by action (cordon | evict | power_off | power_on | uncordon | blocked: planned to sleep "
            "but runs pods that are not function pods) and result (applied | failed | throttled: refused by a "
            "PodDisruptionBudget | gone | skipped | dry_run).",
            ["action", "result"],
            registry=r,
        )

        for reason in FAIL_OPEN_REASONS:  # export zeros so alerts can use rate() from the start
            self.extender_fail_open_total.labels(reason=reason)

    def exposition(self) -> bytes:
        """The registry in Prometheus text format (for ``GET /metrics``)."""
        return generate_latest(self.registry)
