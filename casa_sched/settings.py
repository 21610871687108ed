"""One typed settings object for every component (STYLE §6).

Values come, in increasing precedence, from the defaults below, a YAML file (``--config`` or
``CASA_CONFIG``), ``CASA_*`` environment variables (nested with ``__``, e.g.
``CASA_SLO__CSTR=0.1``) and command-line flags (applied by the CLI as overrides). Every field
states its unit and why its default is what it is; defaults the CASA paper does not give are
marked *assumption* and are meant to be changed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

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
    model_config = ConfigDict(extra="forbid", frozen=True)


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
        False, description="Empty nodes sleep at sleep_power_w instead of idling at P(0). Paper keeps all N nodes on."
    )
    sleep_power_w: float = Field(10.0, ge=0, description="Power of a sleeping node in W. *Assumption*: BMC + standby.")
    wake_latency_s: float = Field(
        60.0, ge=0, description="Time before a sleeping node can start containers, s. *Assumption*."
    )


class WorkloadSettings(_Section):
    intensity: float = Field(
        20.0, gt=0, description="R, request-intensity multiplier on the trace. Paper baseline: 20x."
    )
    epoch_s: float = Field(900.0, gt=0, description="Epoch length in s. Paper: 15 minutes.")
    base_cpu_cores: float = Field(2.0, gt=0, description="CPU of one container size unit, cores. Paper §VI.A: 2 cores.")
    base_memory_mb: float = Field(150.0, gt=0, description="DRAM of one container size unit, MB. Paper §VI.A: 150 MB.")
    request_cpu_cores: float = Field(
        0.1,
        gt=0,
        description="CPU share each in-flight request occupies, cores. *Assumption*, calibrated on the real sample "
        "(DESIGN §3): 0.1 makes 5x under- and 40x over-subscribed on 4 nodes, as in the paper's Fig. 9.",
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
    time_budget_s: float = Field(2.0, gt=0, description="Wall-clock budget per epoch, s. Paper allowed 180 s.")
    seed: int = Field(0, description="Seed of every random choice; set once at the entry point.")


class ExtenderSettings(_Section):
    host: str = Field("0.0.0.0", description="Listen address. In-cluster the Service fronts it.")
    port: int = Field(8888, ge=1, le=65535, description="Listen port.")
    url_prefix: str = Field("", description="Path prefix before /filter and /prioritize.")
    plan_file: Path | None = Field(None, description="Read the plan from a file instead of the ConfigMap.")
    plan_stale_after_s: float = Field(
        1800.0, gt=0, description="A plan older than this (two 15-min epochs) is stale: fail open."
    )


class AutoscalerSettings(_Section):
    prometheus_url: str = Field("http://prometheus.casa-system.svc:9090", description="Prometheus for the forecast.")
    dry_run: bool = Field(False, description="Print actions instead of applying them.")
    lease_name: str = Field("casa-autoscaler", description="coordination.k8s.io Lease for leader election.")


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


class CasaSettings(BaseSettings):
    """Everything casa-sched can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix="CASA_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        nested_model_default_partial_update=True,
    )

    cluster: ClusterSettings = ClusterSettings()
    workload: WorkloadSettings = WorkloadSettings()
    overheads: OverheadSettings = OverheadSettings()
    slo: SLOSettings = SLOSettings()
    accounting: EnergyAccountingSettings = EnergyAccountingSettings()
    signals: SignalSettings = SignalSettings()
    planner: PlannerSettings = PlannerSettings()
    extender: ExtenderSettings = ExtenderSettings()
    autoscaler: AutoscalerSettings = AutoscalerSettings()
    profiler: ProfilerSettings = ProfilerSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init (YAML merged with CLI overrides by load_settings) is passed in explicitly, but the
        # environment must still beat the YAML file: load_settings handles that ordering.
        return (init_settings, env_settings)


def _deep_merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _env_tree(environ: Mapping[str, str]) -> dict[str, Any]:
    """``CASA_SLO__CSTR=0.1`` → ``{"slo": {"cstr": "0.1"}}`` (pydantic coerces the strings)."""
    tree: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith("CASA_") or name == "CASA_CONFIG":
            continue
        parts = name[len("CASA_") :].lower().split("__")
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return tree


def load_settings(
    config_path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> CasaSettings:
    """Defaults < YAML file < ``CASA_*`` environment < ``overrides`` (CLI flags).

    ``config_path`` defaults to ``$CASA_CONFIG`` when set. Raises :class:`SettingsError` with one
    readable line per bad field.
    """
    env = dict(os.environ if environ is None else environ)
    path = config_path or (Path(env["CASA_CONFIG"]) if env.get("CASA_CONFIG") else None)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError(f"cannot read config file {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise SettingsError(f"config file {path} is not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise SettingsError(f"config file {path} must hold a mapping at the top level")
        data = loaded or {}
    data = _deep_merge(data, _env_tree(env))
    data = _deep_merge(data, _nest_dotted(overrides or {}))
    try:
        # Environment is already merged in above; skip pydantic-settings' own env pass.
        return CasaSettings.model_validate(data)
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})" for e in exc.errors()]
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
