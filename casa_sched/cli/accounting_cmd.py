"""``casa accounting``: live carbon, energy, cost and SLO accounting, served on ``/metrics``.

Reads node CPU use, meters and latency histograms through Prometheus every ``--interval-s`` and
fills the ``casa_*`` accounting metrics (:mod:`casa_sched.accounting.live`); the autoscaler embeds
the same :class:`~casa_sched.accounting.live.LiveAccountant`. Heavy imports happen only when the
command runs.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import typer

from casa_sched.cli.flags import Overrides, SettingFlag, flag, with_flags

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
    interval_s: float = flag(60.0, "Seconds between accounting ticks (each covers the time since the last).")
    power_models: Path | None = flag(
        None,
        "JSON object {node: casa.dev/power-model document}; nodes not in it use the default node's curve.",
        exists=True,
    )
    t_ave: Path | None = flag(None, "JSON object {function: T_ave seconds}; unset: each histogram's hourly mean.")
    config: Path | None = flag(None, "casa YAML settings file; unset: $CASA_CONFIG, if set.", exists=True)
    log_level: str = flag("INFO", "Python log level.")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"casa accounting: {message}", err=True)
    return typer.Exit(2)


@with_flags(AccountingInputs, ACCOUNTING_SETTINGS)
def accounting_command(*, inputs: AccountingInputs, overrides: Overrides) -> None:
    """Account node power, energy, carbon, cost and SLO violations live from Prometheus."""
    from casa_sched.models.power import PowerCurve, PowerModelError
    from casa_sched.settings import SettingsError, load_settings

    logging.basicConfig(level=inputs.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(inputs.config, overrides.values, flag_names=overrides.flag_names)
    except SettingsError as exc:
        raise _fail(str(exc)) from None
    if not 1 <= inputs.port <= 65535:
        raise _fail(f"--port must be 1..65535, got {inputs.port}")
    if not inputs.interval_s > 0:
        raise _fail(f"--interval-s must be > 0, got {inputs.interval_s}")
    if not settings.autoscaler.prometheus_url.startswith(("http://", "https://")):
        raise _fail(f"--prometheus must be an http(s) URL, got {settings.autoscaler.prometheus_url!r}")
    curves: dict[str, PowerCurve] = {}
    t_ave_s: dict[str, float] = {}
    try:
        if inputs.power_models is not None:
            doc = json.loads(inputs.power_models.read_text())
            if not isinstance(doc, dict):
                raise ValueError("expected a JSON object {node: power model}")
            curves = {str(n): PowerCurve.from_dict(m) for n, m in doc.items()}
    except (OSError, ValueError, PowerModelError, AttributeError) as exc:
        raise _fail(f"--power-models {inputs.power_models}: {exc}") from None
    try:
        if inputs.t_ave is not None:
            doc = json.loads(inputs.t_ave.read_text())
            if not isinstance(doc, dict) or not all(isinstance(v, int | float) and v > 0 for v in doc.values()):
                raise ValueError("expected a JSON object {function: seconds > 0}")
            t_ave_s = {str(f): float(v) for f, v in doc.items()}
    except (OSError, ValueError) as exc:
        raise _fail(f"--t-ave {inputs.t_ave}: {exc}") from None

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
    except OSError as exc:
        typer.echo(f"casa accounting: cannot listen on {inputs.host}:{inputs.port}: {exc}", err=True)
        raise typer.Exit(1) from None
    stop = threading.Event()
    try:
        run(accountant, inputs.interval_s, lambda emulated_s: clock.wait(stop, emulated_s), clock.now)
    except KeyboardInterrupt:
        stop.set()
