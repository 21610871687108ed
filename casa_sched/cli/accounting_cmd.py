"""``casa accounting``: live carbon, energy, cost and SLO accounting, served on ``/metrics``.

Reads node CPU use, meters and latency histograms through Prometheus every ``--interval-s`` and
fills the ``casa_*`` accounting metrics (:mod:`casa_sched.accounting.live`); the autoscaler embeds
the same :class:`~casa_sched.accounting.live.LiveAccountant`. Heavy imports happen only when the
command runs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import typer

from casa_sched.cli.flags import Overrides, SettingFlag, configure_logging, flag, with_flags

ACCOUNTING_SETTINGS = (
    SettingFlag("autoscaler.prometheus_url", "--prometheus"),
    SettingFlag("workload.utilisation"),
    SettingFlag("slo.laxity"),
)


@dataclass(frozen=True)
class AccountingInputs:
    """The flags of ``casa accounting`` that are not settings."""

    host: str = flag("127.0.0.1", "Address /metrics listens on.")
    port: int = flag(9109, "Port /metrics listens on.")
    interval_s: float = flag(60.0, "Seconds between accounting ticks (each covers the time since the last); at least 1.")
    power_models: Path | None = flag(
        None,
        "JSON object {node: casa.dev/power-model document}; nodes not in it use the default node's curve.",
        exists=True,
    )
    t_ave: Path | None = flag(None, "JSON object {function: T_ave seconds}; unset: each histogram's hourly mean.")
    config: Path | None = flag(None, "casa YAML settings file; unset: $CASA_CONFIG, if set.", exists=True)
    log_level: str = flag("INFO", "Python log level.")


#: Longest accounting tick, s: a day (a tick covers the time since the last one).
MAX_INTERVAL_S = 86_400.0
#: Shortest accounting tick, s: Prometheus resolves samples to the second; a shorter tick only
#: re-queries it in a busy loop.
MIN_INTERVAL_S = 1.0
#: Longest T_ave accepted from --t-ave, s: a day, far beyond any function's execution time.
MAX_T_AVE_S = 86_400.0


def _fail(message: str) -> typer.Exit:
    typer.echo(f"casa accounting: {message}", err=True)
    return typer.Exit(2)


@with_flags(AccountingInputs, ACCOUNTING_SETTINGS)
def accounting_command(*, inputs: AccountingInputs, overrides: Overrides) -> None:
    """Account node power, energy, carbon, cost and SLO violations live from Prometheus."""
    from casa_sched.models.power import PowerCurve, PowerModelError
    from casa_sched.outputs import InputError, finite, http_url, read_json
    from casa_sched.settings import SettingsError, load_settings

    configure_logging("casa accounting", inputs.log_level)
    try:
        settings = load_settings(inputs.config, overrides.values, flag_names=overrides.flag_names)
    except SettingsError as exc:
        raise _fail(str(exc)) from None
    if not 1 <= inputs.port <= 65535:
        raise _fail(f"--port must be 1..65535, got {inputs.port}")
    try:
        finite("--interval-s", inputs.interval_s, low=MIN_INTERVAL_S, high=MAX_INTERVAL_S)
    except InputError as exc:
        raise _fail(str(exc)) from None
    if not http_url(settings.autoscaler.prometheus_url):
        raise _fail(f"--prometheus must be an http(s) URL with a host, got {settings.autoscaler.prometheus_url!r}")
    curves: dict[str, PowerCurve] = {}
    t_ave_s: dict[str, float] = {}
    try:
        if inputs.power_models is not None:
            doc = read_json("--power-models", inputs.power_models)
            if not isinstance(doc, dict) or not all(isinstance(m, dict) for m in doc.values()):
                raise InputError(f"--power-models {inputs.power_models}: expected a JSON object {{node: power model}}")
            curves = {str(n): PowerCurve.from_dict(m) for n, m in doc.items()}
        if inputs.t_ave is not None:
            doc = read_json("--t-ave", inputs.t_ave)
            if not isinstance(doc, dict) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= MAX_T_AVE_S for v in doc.values()
            ):
                raise InputError(f"--t-ave {inputs.t_ave}: expected a JSON object {{function: seconds in (0, {MAX_T_AVE_S:g}]}}")
            t_ave_s = {str(f): float(v) for f, v in doc.items()}
    except InputError as exc:
        raise _fail(str(exc)) from None
    except PowerModelError as exc:
        raise _fail(f"--power-models {inputs.power_models}: {exc}") from None

    from prometheus_client import start_http_server

    from casa_sched.accounting.live import LiveAccountant, prometheus_query, run
    from casa_sched.autoscaler.epoch_signals import SignalReader
    from casa_sched.clock import Clock
    from casa_sched.metrics import CasaMetrics

    metrics = CasaMetrics()
    clock = Clock.from_settings(settings)  # clock.factor: ticks and windows are emulated seconds
    accountant = LiveAccountant(
        settings, metrics, prometheus_query(settings.autoscaler.prometheus_url, clock=clock),
        SignalReader(settings, metrics, clock=clock.now), curves, t_ave_s=t_ave_s, clock=clock,
    )  # fmt: skip
    try:
        start_http_server(inputs.port, addr=inputs.host, registry=metrics.registry)
    except (OSError, UnicodeError) as exc:  # UnicodeError: a host name longer than DNS allows
        typer.echo(f"casa accounting: cannot listen on {inputs.host}:{inputs.port}: {exc}", err=True)
        raise typer.Exit(1) from None
    stop = threading.Event()
    try:
        run(accountant, inputs.interval_s, lambda emulated_s: clock.wait(stop, emulated_s), clock.now)
    except KeyboardInterrupt:
        stop.set()
