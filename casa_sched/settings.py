"""One typed settings object for every component.

Values come, in increasing precedence, from the defaults below (for ``casa simulate``'s embedded
scenario, :data:`SIMULATE_DEFAULTS` on top of them), a YAML file (``--config`` or
``CASA_CONFIG``), ``CASA_*`` environment variables (section and field joined by ``__``, e.g.
``CASA_SLO__CSTR=0.1``; tuple-valued fields take JSON, e.g. ``CASA_CLUSTER__SWITCH_HOPS=[2,4]``)
and command-line flags (applied by the CLI as overrides). :func:`load_settings` is the one place
that reads the file and the environment; ``CasaSettings()`` is the built-in defaults and nothing
else. Every field states its unit and why its default is what it is; defaults the CASA paper does
not give are marked *assumption* and are meant to be changed.
"""

from __future__ import annotations

import json
import os
import string
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# A hot-summer site's hourly cooling factor E_t = P_cooling / P_IT (paper eq. 3), local solar
# hour 0..23. *Assumption*: air-cooled room with economiser off in summer; 0.30 at night rising
# to 0.48 in the mid-afternoon heat (a PUE of 1.30..1.48 before other overheads).
DEFAULT_COOLING_FACTOR_BY_HOUR: tuple[float, ...] = (
    0.31, 0.30, 0.30, 0.30, 0.30, 0.30, 0.31, 0.33, 0.36, 0.39, 0.42, 0.44,
    0.46, 0.47, 0.48, 0.48, 0.47, 0.45, 0.42, 0.39, 0.36, 0.34, 0.33, 0.32,
)  # fmt: skip


class SettingsError(ValueError):
    """Settings that cannot be loaded or validated; the message names the field and value."""


class _Section(BaseModel):
    # allow_inf_nan=False: NaN passes every `gt`/`le` bound (all comparisons with it are false) and
    # infinity passes every lower bound; neither is a setting.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ClusterSettings(_Section):
    nodes: int = Field(4, ge=1, le=4096, description="Compute nodes N. Paper baseline: 4.")
    cores_per_node: int = Field(128, ge=1, description="Cores per node; paper: 2x EPYC 7713 = 128.")
    memory_mb_per_node: float = Field(65536.0, gt=0, description="DRAM per node in MB; paper: 64 GB.")
    storage_power_w: float = Field(
        150.0,
        ge=0,
        description="P_S, fixed power of storage nodes in W (eq. 1). *Assumption*: one idle-ish storage server.",
    )
    network_power_w: float = Field(
        100.0, ge=0, description="P_N, fixed network power in W (eq. 1). *Assumption*: one top-of-rack switch."
    )
    image_bandwidth_mb_per_s: float = Field(
        125.0, gt=0, description="B_node, each node's link to image storage in MB/s (eq. 8). *Assumption*: 1 Gbit/s."
    )
    switch_delay_s: float = Field(
        0.001, ge=0, description="T_switch per switch hop in s (eq. 8). *Assumption*: store-and-forward of a burst."
    )
    switch_hops: tuple[int, ...] = Field(
        (2, 4, 6),
        description="NH per node in a three-tier network, cycled over nodes (eq. 8). *Assumption*: same rack, "
        "same pod, other pod as the storage nodes.",
    )
    sleep_empty_nodes: bool = Field(
        False,
        description="Node power management: a node may sleep at sleep_power_w instead of idling at P(0). CASA plans "
        "the sleeping nodes (Plan.sleeping_nodes); the baselines get a cluster-autoscaler-style manager that sleeps "
        "a node empty for scale_down_unneeded_s. Paper keeps all N nodes on (off).",
    )
    sleep_power_w: float = Field(10.0, ge=0, description="Power of a sleeping node in W. *Assumption*: BMC + standby.")
    wake_latency_s: float = Field(
        60.0, ge=0, description="Time before a sleeping node can start containers, s. *Assumption*."
    )
    scale_down_unneeded_s: float = Field(
        600.0,
        ge=0,
        description="With power management, the baselines' node manager sleeps a node that has hosted no container "
        "for this long, s: cluster-autoscaler's --scale-down-unneeded-time default (10 minutes).",
    )


class WorkloadSettings(_Section):
    intensity: float = Field(
        20.0, gt=0, description="R, request-intensity multiplier on the trace. Paper baseline: 20x."
    )
    epoch_s: float = Field(900.0, gt=0, description="Epoch length in s. Paper: 15 minutes.")
    synthetic_functions: int = Field(
        500,
        ge=1,
        le=100_000,
        description="Functions of the embedded synthetic workload (--trace synthetic); at any count their rates, "
        "durations, memory and triggers follow the 500-function Azure 2019 sample's distributions, so the "
        "load at a given R grows with the count.",
    )
    base_cpu_cores: float = Field(2.0, gt=0, description="CPU of one container size unit, cores. Paper §VI.A: 2 cores.")
    base_memory_mb: float = Field(150.0, gt=0, description="DRAM of one container size unit, MB. Paper §VI.A: 150 MB.")
    request_cpu_cores: float = Field(
        0.1,
        gt=0,
        description="CPU share each in-flight request occupies, cores. *Assumption*, calibrated on the real sample "
        "(docs/architecture.md, \"Models\"): 0.1 makes 5x under- and 40x over-subscribed on 4 nodes, as in the paper's Fig. 9.",
    )
    image_mb: float = Field(300.0, gt=0, description="C_cold contribution of one container image, MB. *Assumption*.")
    max_container_size: int = Field(
        32, ge=1, description="Largest container, in base units (k). *Assumption*: 64 cores."
    )
    utilisation: Literal["busy", "allocated"] = Field(
        "busy",
        description="What U_i counts: cores busy with requests and overheads (physically honest) or cores "
        "allocated to containers (one reading of the paper).",
    )


class OverheadSettings(_Section):
    """Container overheads (paper §III.B.1 measured them on Knative but gives no numbers)."""

    starting_cores: float = Field(1.0, ge=0, description="Cores a cold-starting container burns. *Assumption*.")
    idle_cores: float = Field(
        0.05, ge=0, description="Cores a warm idle container burns (runtime + sidecar). *Assumption*."
    )
    stopping_cores: float = Field(0.5, ge=0, description="Cores a stopping container burns. *Assumption*.")
    shutdown_s: float = Field(15.0, ge=0, description="Time to shut a container down, s. Paper §VI.A: 15 s on Knative.")


class SLOSettings(_Section):
    laxity: float = Field(10.0, gt=0, description="Deadline laxity (eq. 6). Paper default 10, swept 10..20.")
    cstr: float = Field(0.05, ge=0, le=1, description="SLO constraint on SL_ave, a ratio. Paper baseline 5 %.")
    max_drop_share: float = Field(
        0.05,
        ge=0,
        le=1,
        description="CASA: bound on the share of all requests a plan may drop (request-weighted), a ratio. SL_ave "
        "is a mean over functions, so without it a plan can meet Cstr by abandoning the busiest function; the "
        "default, equal to the paper's 5 % Cstr, reads the constraint per request as well as per function.",
    )


class SimulationSettings(_Section):
    """How the request-level simulator and the estimator model a FaaS platform within an epoch."""

    autoscale: bool = Field(
        True,
        description="In-epoch autoscaling: after each window, saturated functions grow one container by one unit "
        "in place while the node has unallocated cores (paper §V.D). Off: only the plan's capacity serves.",
    )
    autoscale_interval_s: float = Field(
        10.0,
        gt=0,
        description="Length of one autoscaling window, s. *Assumption*: a few of Knative KPA's 2 s ticks, coarse "
        "enough that the replay stays fast.",
    )
    keepalive_s: float = Field(
        60.0,
        ge=0,
        description="A container started on demand (scale from zero) is removed after this long idle, s. "
        "*Assumption*: Knative's default order (60 s stable window).",
    )


class EnergyAccountingSettings(_Section):
    cooling_factor_by_hour: tuple[float, ...] = Field(
        DEFAULT_COOLING_FACTOR_BY_HOUR,
        description="E_t for local hours 0..23 (eq. 3). *Assumption*: hot-summer air-cooled site.",
    )
    water_l_per_cooling_kwh: float = Field(
        4.5,
        ge=0,
        description="Water evaporated per kWh of cooling energy, L. *Assumption*: US average WUE 1.8 L per IT kWh at E_t ≈ 0.4.",
    )
    water_ci_g_per_l: float = Field(
        0.5, ge=0, description="Carbon of supplying and treating water, g/L. *Assumption*: ~1.2 kWh/m³ at ~400 g/kWh."
    )
    water_price_usd_per_l: float = Field(
        0.0015, ge=0, description="Water and wastewater price, $/L. *Assumption*: ~$5.7 per 1000 gal (Tampa, 2024)."
    )

    @field_validator("cooling_factor_by_hour")
    @classmethod
    def _24_hours(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if len(value) != 24 or any(v < 0 for v in value):
            raise ValueError(f"cooling_factor_by_hour needs 24 values >= 0, got {len(value)}")
        return value


class SignalSettings(_Section):
    carbon_source: Literal["profile", "csv", "electricitymaps", "watttime", "ukci"] = Field(
        "profile", description="Where CI_h comes from. The embedded default is a Tampa summer profile."
    )
    carbon_csv: Path | None = Field(None, description="Electricity Maps export CSV for carbon_source=csv.")
    price_source: Literal["profile", "csv"] = Field("profile", description="Where EP_h comes from.")
    price_csv: Path | None = Field(None, description="ISO price CSV (USD/MWh) for price_source=csv.")
    timezone: str = Field(
        "America/New_York", description="IANA zone of the site; hours of the day (E_t, profiles) are local. Tampa's."
    )
    zone: str = Field(
        "US-FLA-TEC", description="Grid zone / region id for live providers. Paper's site: Tampa Electric."
    )
    api_token: str | None = Field(None, description="Token for Electricity Maps (auth-token header).")
    api_username: str | None = Field(None, description="WattTime user name.")
    api_password: str | None = Field(None, description="WattTime password.")
    api_base_url: str | None = Field(
        None, description="Base URL of the live provider's API (a proxy or a local stand-in); unset: its public address."
    )
    http_timeout_s: float = Field(5.0, gt=0, description="Timeout of one live-provider request, s.")
    http_retries: int = Field(3, ge=0, description="Retries of a failed live-provider request (exponential backoff).")
    fallback: Literal["last", "profile", "fail"] = Field(
        "last",
        description="When a live provider fails after retries: reuse the last good value, use the embedded "
        "profile, or fail. Each fallback is counted in a metric.",
    )


class PlannerSettings(_Section):
    policy: str = Field("casa", description="Planner policy by registry name (casa, score, hybrid, rl, binpack, milp).")
    k: int = Field(5, ge=1, description="K, failed searches before a function is blacklisted. Paper: 5.")
    gen: int = Field(2000, ge=1, description="Iteration ceiling of the dual local search.")
    time_budget_s: float | None = Field(
        None,
        gt=0,
        description="Wall-clock budget per epoch, s. Unset: derived each epoch from the problem size, 2 s per 32 "
        "nodes plus 2 s per 1000 functions forecast to run, at least 2 s and at most 10 % of the epoch (README, "
        "'The planning budget'). Paper allowed 180 s.",
    )
    seed: int = Field(0, ge=0, description="Seed of every random choice; set once at the entry point.")


#: A verb of the extender's URL: one path segment of unreserved characters (RFC 3986).
_URL_SEGMENT = r"^[A-Za-z0-9._~-]+$"


class ExtenderSettings(_Section):
    host: str = Field(
        "0.0.0.0",
        description="Listen address. All interfaces: in a pod the Service forwards to the pod IP; the "
        "NetworkPolicy in manifests/ admits only kube-scheduler. Outside a cluster use 127.0.0.1.",
    )
    port: int = Field(8888, ge=1, le=65535, description="Listen port.")
    url_prefix: str = Field(
        "", pattern=r"^[A-Za-z0-9._~/-]*$", description="Path prefix before /filter and /prioritize."
    )
    plan_file: Path | None = Field(None, description="Read the plan from a file instead of the ConfigMap.")
    plan_stale_after_s: float = Field(
        1800.0, gt=0, description="A plan older than this (two 15-min epochs) is stale: fail open."
    )
    filter_verb: str = Field(
        "filter",
        pattern=_URL_SEGMENT,
        description="filterVerb of the scheduler's extender configuration (manifests/scheduler/).",
    )
    prioritize_verb: str = Field(
        "prioritize",
        pattern=_URL_SEGMENT,
        description="prioritizeVerb of the scheduler's extender configuration (manifests/scheduler/).",
    )
    assume_ttl_s: float = Field(
        30.0,
        ge=0,
        description="How long a placement the extender chose counts on its node before the pod watch shows it "
        "bound, s. *Assumption*: far above the usual bind latency (ms), short enough that a failed binding frees "
        "its slot quickly.",
    )
    max_body_bytes: int = Field(
        64 * 2**20,
        ge=1024,
        description="Largest filter/prioritize request body accepted, bytes (413 above). 64 MiB: a NodeList of "
        "5,000 real nodes (with managedFields and images) is ~40 MB of JSON.",
    )
    max_nodes: int = Field(
        15_000, ge=1, description="Most nodes one request may name (400 above): 3x Kubernetes' 5,000-node limit."
    )
    tls_cert_file: Path | None = Field(
        None, description="Serve HTTPS with this PEM certificate (chain); needs tls_key_file. Unset: plain HTTP."
    )
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file.")

    @model_validator(mode="after")
    def _verbs_differ(self) -> ExtenderSettings:
        if self.filter_verb == self.prioritize_verb:
            raise ValueError(f"filter_verb and prioritize_verb must differ, both are {self.filter_verb!r}")
        return self

    @model_validator(mode="after")
    def _tls_files_together(self) -> ExtenderSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file must be set together (HTTPS needs both)")
        return self


class AutoscalerSettings(_Section):
    prometheus_url: str = Field(
        "http://prometheus.casa-system.svc:9090", description="Prometheus for the forecast and the live accounting."
    )
    dry_run: bool = Field(False, description="Print actions instead of applying them.")
    lease_name: str = Field("casa-autoscaler", description="coordination.k8s.io Lease for leader election.")
    platforms: tuple[str, ...] = Field(
        ("deployment",), description="Platform adapters whose workloads are managed (deployment, openfaas, knative)."
    )
    metrics_file: Path | None = Field(
        None,
        description="JSON metrics document (requests per minute, T_ave, in-flight, pod CPU) read instead of a "
        "metrics back-end; without one every function is held as it is.",
    )
    metrics_port: int = Field(8889, ge=0, le=65535, description="Port of GET /metrics; 0 serves none.")
    intra_interval_s: float = Field(
        15.0, gt=0, description="Intra-epoch autoscaling tick (paper §V.D: 'anytime within an epoch'), s."
    )
    saturation_cpu_ratio: float = Field(
        0.95,
        gt=0,
        le=1,
        description="A pod whose CPU usage reaches this share of its allocation is saturated. *Assumption*: just "
        "below 1 because cgroup throttling keeps usage from reaching the limit exactly.",
    )
    default_t_ave_s: float = Field(
        1.0,
        gt=0,
        description="T_ave of a function whose metrics give no execution time, s. *Assumption*: the Azure 2019 "
        "sample's median is about 1 s.",
    )
    apply_settle_s: float = Field(
        120.0, gt=0, description="How long an epoch's apply keeps converging (new pods Running, resizes) before the "
        "ticks take over, s."
    )
    settle_poll_s: float = Field(2.0, gt=0, description="Pause between convergence passes while applying, s.")
    planner_grace_s: float = Field(
        10.0, ge=0, description="Past planner.time_budget_s + this, a planner that has not answered is abandoned for "
        "D_{e-1}, s."
    )
    # -- node power states (README "Node power management") --------------------------------------
    power_mode: Literal["none", "hook", "cluster-autoscaler"] = Field(
        "none",
        description="How a node the plan puts to sleep is powered down once drained: none (never: sleeping nodes stay "
        "on), hook (power_off_command / power_on_command) or cluster-autoscaler (its protection annotations are "
        "lifted so Cluster Autoscaler or Karpenter removes the empty node). Off by default: powering machines "
        "down needs an operator's opt-in.",
    )
    power_off_command: tuple[str, ...] = Field(
        (),
        description="argv of the power-off hook, run without a shell; each argument may hold {node} and the "
        "placeholders of power_hook_placeholders, substituted per argument, e.g. [\"ipmitool\", \"-I\", "
        "\"lanplus\", \"-H\", \"{bmc}\", \"-U\", \"admin\", \"-f\", \"/etc/casa/ipmi-pass\", \"chassis\", \"power\", \"off\"].",
    )
    power_on_command: tuple[str, ...] = Field((), description="argv of the power-on hook (as power_off_command).")
    power_hook_placeholders: tuple[str, ...] = Field(
        ("bmc=casa.dev/bmc-address",),
        description="NAME=ANNOTATION pairs: {NAME} in a hook argument is the node's ANNOTATION (a node without it "
        "is not powered down: the hook fails for it).",
    )
    power_hook_timeout_s: float = Field(
        60.0, gt=0, description="A hook still running after this is killed and counted failed, s. *Assumption*: "
        "ipmitool answers within seconds; a BMC that does not is retried the next epoch."
    )
    power_drain_timeout_s: float = Field(
        60.0, ge=0, description="How long one pass waits for evicted function pods to be gone before the power-off "
        "(they go after their grace period); past it the node stays draining and the next pass resumes, s."
    )

    @model_validator(mode="after")
    def _power_hook_complete(self) -> AutoscalerSettings:
        pairs = {}
        for pair in self.power_hook_placeholders:
            name, sep, annotation = pair.partition("=")
            if not sep or not name.isidentifier() or not annotation or name == "node":
                raise ValueError(f"power_hook_placeholders: expected NAME=ANNOTATION (NAME an identifier other "
                                 f"than node), got {pair!r}")
            pairs[name] = annotation
        if self.power_mode == "hook":
            for field_name in ("power_off_command", "power_on_command"):
                argv = getattr(self, field_name)
                if not argv:
                    raise ValueError(f"{field_name} must be set (a non-empty argv) when power_mode is hook")
                for arg in argv:
                    try:
                        names = [f for _, f, _, _ in string.Formatter().parse(arg) if f is not None]
                    except ValueError as exc:
                        raise ValueError(f"{field_name}: argument {arg!r} is not a valid template: {exc}") from None
                    unknown = [n for n in names if n != "node" and n not in pairs]
                    if unknown:
                        raise ValueError(f"{field_name}: argument {arg!r} uses {{{unknown[0]}}}, expected {{node}} "
                                         f"or one of power_hook_placeholders ({', '.join(sorted(pairs)) or 'none'})")
        return self


class OpenFaasSettings(_Section):
    gateway_url: str = Field(
        "http://gateway.openfaas.svc:8080", description="OpenFaaS gateway (the chart's in-cluster Service)."
    )
    namespace: str = Field("openfaas-fn", description="Function namespace (CE serves only its default one).")
    username: str = Field("admin", description="Gateway basic-auth user (the chart's basic-auth-user).")
    password_file: Path | None = Field(
        None, description="File holding the gateway password (the mounted basic-auth secret); none: no auth."
    )
    edition: Literal["ce", "pro"] = Field(
        "ce", description="ce: at most 15 functions of 1-5 replicas, the plan is clamped; pro: no such limits."
    )
    timeout_s: float = Field(5.0, gt=0, description="Timeout of one gateway request, s.")


class KnativeSettings(_Section):
    namespaces: tuple[str, ...] = Field((), description="Namespaces whose Services are scaled; empty: all.")
    release: str | None = Field(
        None, description="Knative Serving release (e.g. v1.15.2); unset: read from the controller Deployment."
    )
    serving_namespace: str = Field("knative-serving", description="Where Knative Serving's controller runs.")


class ForecastSettings(_Section):
    """Next-epoch load per function (paper §IV assumes it arrives as a forecast): which
    forecaster, its parameters, where the live history comes from and what an outage does."""

    method: str = Field(
        "last",
        description="Forecaster by registry name: last, ewma, seasonal, care, regressor (casa_sched.forecasting). "
        "Last value is the default (no parameters, no training); on the Azure sample's 80-function mix CASA planned best on ewma "
        "(SL_ave 0.16 % against 0.54 % for last, oracle 0.14 %), on the full sample last value did "
        "(docs/results/forecast-backtest.md).",
    )
    ewma_alpha: float = Field(
        0.5, gt=0, le=1, description="EWMA weight of the latest epoch (1 = last value). *Assumption*: half."
    )
    unseen_floor_per_min: float = Field(
        2.0,
        ge=0,
        description="Requests per minute every forecaster gives a function without a request in a history shorter "
        "than unseen_warmup_epochs (unobserved, not idle), so the planner may warm a container for it; 0 turns the "
        "rule off. Measured: the first epoch of the Azure sample's 80-function mix, planned without history, costs "
        "CASA the least SL_ave at 2 (casa_sched/forecasting/unseen.py).",
    )
    unseen_warmup_epochs: int = Field(
        4, ge=0, description="History (epochs) after which a function without a request in it is idle, not unobserved."
    )
    seasonal_fallback: str = Field(
        "last",
        description="Forecaster the seasonal one uses while the history is shorter than a day (no season yet).",
    )
    care_threshold: float = Field(
        0.5,
        gt=0,
        le=2,
        description="CaRE: recent sMAPE (0..2) of the persistent forecast's epoch totals above which a function "
        "is anomalous and takes the fallback model. *Assumption*: CaRE gives no number; 0.5 is an error of "
        "about 2/3 of the actual.",
    )
    care_window_epochs: int = Field(2, ge=1, description="CaRE: epochs the recent error is averaged over.")
    care_fallback: str = Field("ewma", description="CaRE: the second model used while a function is anomalous.")
    regressor_lags: int = Field(4, ge=1, description="Regressor: epoch totals before the target used as features.")
    regressor_max_train_epochs: int = Field(
        96, ge=2, description="Regressor: most recent epochs it is fitted on (96 = a day of 15-min epochs)."
    )
    regressor_model: Literal["ridge", "gradient_boosting"] = Field(
        "gradient_boosting",
        description="Regressor: histogram gradient boosting (one thread, ~0.1 s per fit on 500 functions; the "
        "more accurate on the Azure sample) or ridge regression in log space (milliseconds).",
    )
    regressor_seed: int = Field(0, description="Regressor: seed of the gradient boosting, for reproducible fits.")
    source: Literal["none", "openfaas", "knative", "promql"] = Field(
        "none",
        description="Where the live history comes from: OpenFaaS gateway metrics, Knative queue-proxy metrics "
        "(generation detected), a configured PromQL pair, or none (every function keeps its containers).",
    )
    knative_generation: Literal["auto", "opencensus", "otel-queueproxy", "otel-serving"] = Field(
        "auto",
        description="Knative metric names: opencensus (<= 1.18, revision_app_request_*), otel-queueproxy "
        "(1.19.0-1.19.7, 1.20.0, kn_queueproxy_*), otel-serving (1.19.8+, 1.20.1+, 1.21+, kn_serving_*); auto "
        "picks the newest one present.",
    )
    selector: str = Field(
        "",
        description='Extra PromQL label matchers for every query, e.g. namespace_name="fn" (no braces).',
    )
    function_label: str | None = Field(
        None, description="Label naming the function; None: the source's own (function_name, service_name, ...)."
    )
    promql_requests_per_s: str | None = Field(
        None, description="source=promql: PromQL of requests/s per function (one series per function label)."
    )
    promql_duration_s: str | None = Field(
        None, description="source=promql: PromQL of the mean execution time per function, s."
    )
    promql_in_flight: str | None = Field(
        None, description="source=promql: PromQL of requests in flight per function (optional)."
    )
    history_minutes: int = Field(
        480, ge=15, description="History window read each epoch, min (8 h: the regressor's lags and CaRE's window)."
    )
    query_timeout_s: float = Field(10.0, gt=0, description="Timeout of one Prometheus query, s.")
    query_retries: int = Field(2, ge=0, description="Retries of a failed query (connection error, timeout, 5xx).")
    max_stale_epochs: int = Field(
        2,
        ge=0,
        description="Epochs a function may be planned on its last known forecast while its history cannot be "
        "read (Prometheus down, timeout, series missing or reset); after that it keeps its current containers.",
    )


class ProfilerSettings(_Section):
    powercap_root: Path = Field(
        Path("/sys/class/powercap"), description="powercap sysfs root (configurable for tests)."
    )
    settle_s: float = Field(10.0, ge=0, description="Time to let power settle at a level before sampling, s.")
    sample_interval_s: float = Field(
        2.0, gt=0, description="Energy sampling interval, s: well inside the RAPL wrap period (minutes on AMD)."
    )
    samples_per_level: int = Field(10, ge=2, description="Energy samples per stress level.")
    max_fit_error_pct: float = Field(10.0, gt=0, description="Refuse a fit whose worst point is off by more, %.")


class ClockSettings(_Section):
    """The one clock every live component reads (README "Emulated cluster"): emulated time runs
    ``factor`` times faster than the wall clock from the real instant ``origin_unix_s``, at which
    it reads ``start_unix_s``. The defaults are the wall clock itself."""

    factor: float = Field(
        1.0,
        gt=0,
        le=10000,
        description="Emulated seconds per wall-clock second (30: a 15-minute epoch in 30 s). 1: real time.",
    )
    origin_unix_s: float = Field(
        0.0, ge=0, description="Wall-clock instant (Unix s) at which the emulated clock reads start_unix_s."
    )
    start_unix_s: float | None = Field(
        None, ge=0, description="Emulated time (Unix s) at origin_unix_s; unset: origin_unix_s itself."
    )

    @model_validator(mode="after")
    def _origin_with_factor(self) -> ClockSettings:
        if self.factor != 1.0 and self.origin_unix_s == 0.0:
            raise ValueError("clock.factor other than 1 needs clock.origin_unix_s, the same on every component")
        return self


class CasaSettings(_Section):
    """Everything casa-sched can be configured with: ``CasaSettings()`` is the built-in defaults
    (no file, no environment); :func:`load_settings` layers a file, the environment and flags on them."""

    cluster: ClusterSettings = ClusterSettings()
    workload: WorkloadSettings = WorkloadSettings()
    overheads: OverheadSettings = OverheadSettings()
    slo: SLOSettings = SLOSettings()
    simulation: SimulationSettings = SimulationSettings()
    accounting: EnergyAccountingSettings = EnergyAccountingSettings()
    signals: SignalSettings = SignalSettings()
    planner: PlannerSettings = PlannerSettings()
    extender: ExtenderSettings = ExtenderSettings()
    autoscaler: AutoscalerSettings = AutoscalerSettings()
    openfaas: OpenFaasSettings = OpenFaasSettings()
    knative: KnativeSettings = KnativeSettings()
    profiler: ProfilerSettings = ProfilerSettings()
    forecast: ForecastSettings = ForecastSettings()
    clock: ClockSettings = ClockSettings()


ENV_PREFIX = "CASA_"
CONFIG_ENV = "CASA_CONFIG"

#: ``casa simulate``'s embedded scenario (the synthetic workload, README "casa simulate"): the
#: settings that command starts from in place of the built-in defaults above, below the YAML
#: file, the environment and the flags (:func:`load_settings` ``defaults``). Nothing else reads
#: them: the live components, ``casa experiment`` and ``--trace azure2019`` keep the paper's set-up.
SIMULATE_DEFAULTS: Mapping[str, Any] = {
    # A paper-sized mix (the paper's epochs had 13-62 active functions): at 500 functions the
    # 4 nodes' 256 container units cannot hold every active function, and no policy meets Cstr.
    "workload.synthetic_functions": 80,
    # R = 30x (80 functions at 30x carry about the requests of 500 at 4.8x): measured, CASA
    # unhurried meets Cstr in every epoch and every baseline emits more; at 20x Hybrid emits less
    # than CASA, at 40x CASA misses Cstr in some epochs (README "casa simulate").
    "workload.intensity": 30.0,
    # Node power management on: with every node on, idle power dominates and the policies land
    # within 0.2 % carbon of one another (docs/results/power-states.md). The live autoscaler
    # keeps it off: sleeping a real node needs an operator's power hook (autoscaler.power_mode).
    "cluster.sleep_empty_nodes": True,
}


def _deep_merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _env_tree(environ: Mapping[str, str]) -> dict[str, Any]:
    """``CASA_SLO__CSTR=0.1`` → ``{"slo": {"cstr": "0.1"}}`` (pydantic coerces the strings).

    Only names with a ``__`` are settings: ``CASA_CONFIG`` and the build scripts' own variables
    (``CASA_K8S_CACHE``, ``CASA_K8S_VERSION``) are not. Tuple-valued fields are parsed as JSON.
    """
    tree: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SettingsError(f"{name}: {'.'.join(parts[:-1])} is a value, not a section")
        node[parts[-1]] = _env_value(name, parts, value)
    return tree


def _env_value(name: str, parts: list[str], raw: str) -> Any:
    section = CasaSettings.model_fields.get(parts[0])
    model = section.annotation if section is not None else None
    if len(parts) != 2 or not (isinstance(model, type) and issubclass(model, BaseModel)):
        return raw  # not a setting: validation names it
    field = model.model_fields.get(parts[1])
    if field is None or get_origin(field.annotation) is not tuple:
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise SettingsError(f"{name} must be a JSON list, e.g. [2, 4, 6], got {raw!r}") from None


_Layer = tuple[dict[str, Any], Callable[[str], str]]


def _source_of(loc: tuple[str | int, ...], layers: list[_Layer]) -> str:
    """Which layer (flag, environment variable, file) gave the value at ``loc``, for error messages."""
    for tree, describe in reversed(layers):
        node: Any = tree
        for depth, part in enumerate(loc):
            if not isinstance(node, Mapping) or part not in node:
                break
            node = node[part]
            if not isinstance(node, Mapping) or depth == len(loc) - 1:
                return describe(".".join(str(p) for p in loc[: depth + 1]))
    return "the defaults"


def load_settings(
    config_path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    flag_names: Mapping[str, str] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> CasaSettings:
    """Defaults < ``defaults`` (a command's own, dotted keys: :data:`SIMULATE_DEFAULTS`) < YAML
    file < ``CASA_*`` environment < ``overrides`` (CLI flags).

    ``environ`` defaults to the process environment, read here and nowhere else; ``config_path``
    defaults to ``$CASA_CONFIG`` when set. ``flag_names`` maps a dotted key of ``overrides`` to
    the flag that set it (``{"slo.cstr": "--cstr"}``), so an error names what the user typed.
    Raises :class:`SettingsError` with one readable line naming each bad field and its source.
    """
    env = dict(os.environ if environ is None else environ)
    path = config_path or (Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else None)
    named = f"{CONFIG_ENV}={path}" if config_path is None else str(path)  # how the user gave the file
    data: dict[str, Any] = {}
    if path is not None:
        if path.exists() and not (path.is_file() or path.is_dir()):  # a FIFO would block the read
            raise SettingsError(f"config file {named} is not a regular file: expected YAML")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except RecursionError:
            raise SettingsError(f"config file {named} nests too deeply to be settings: expected YAML") from None
        except OSError as exc:
            raise SettingsError(f"cannot read config file {named}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise SettingsError(f"config file {named} is not UTF-8 text (byte {exc.start}): expected YAML") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or exc
            raise SettingsError(f"config file {named} is not valid YAML: {' '.join(str(problem).split())}{where}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise SettingsError(f"config file {named} must hold a mapping at the top level")
        data = loaded or {}
    names = flag_names or {}
    layers: list[_Layer] = [
        (_nest_dotted(defaults or {}), lambda key: f"the command's default {key}"),
        (data, lambda key: named),
        (_env_tree(env), lambda key: ENV_PREFIX + key.replace(".", "__").upper()),
        (_nest_dotted(overrides or {}), lambda key: names.get(key, f"override {key}")),
    ]
    merged: dict[str, Any] = {}
    for tree, _ in layers:
        merged = _deep_merge(merged, tree)
    try:
        return CasaSettings.model_validate(merged)
    except ValidationError as exc:
        lines = [
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} "
            f"(got {e.get('input')!r} from {_source_of(tuple(e['loc']), layers)})"
            for e in exc.errors()
        ]
        raise SettingsError("invalid settings: " + "; ".join(lines)) from exc


def _nest_dotted(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"slo.cstr": 0.1}`` → ``{"slo": {"cstr": 0.1}}``; ``None`` values (unset flags) are dropped."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if value is None:
            continue
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out
