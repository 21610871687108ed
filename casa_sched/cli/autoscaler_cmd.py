"""``casa autoscaler``: the live epoch loop (plan, store, scale, resize in place), leader only.

Flags are checked before anything long starts; a bad flag, settings file, metrics file or
kubeconfig is one line on stderr and exit 2; a cluster that cannot be reached is exit 1.
Heavy imports (kubernetes, the planners) happen only when the command runs.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from casa_sched.cli.flags import configure_logging

_NAME = "casa autoscaler"


# The flag each settings override comes from, so an invalid value names what the user typed.
_FLAG_NAMES = {
    "workload.epoch_s": "--epoch-s", "autoscaler.intra_interval_s": "--intra-interval-s", "planner.policy": "--policy",
    "planner.time_budget_s": "--time-budget", "autoscaler.platforms": "--platforms",
    "autoscaler.metrics_file": "--metrics-file", "autoscaler.metrics_port": "--metrics-port",
    "autoscaler.dry_run": "--dry-run",
}  # fmt: skip


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"{_NAME}: {message}", err=True)
    return typer.Exit(code)


def autoscaler_command(
    kubeconfig: Annotated[
        Path | None, typer.Option(help="kubeconfig of the cluster; default: in-cluster credentials.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="casa YAML settings file (section `autoscaler:`).")] = None,
    once: Annotated[bool, typer.Option("--once", help="Run the current epoch once and exit.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Plan and print the actions; write nothing (implies no Lease).")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print each epoch's report as one JSON line.")] = False,
    epoch_s: Annotated[float | None, typer.Option(help="Epoch length, s (default 900, the paper's 15 min).")] = None,
    intra_interval_s: Annotated[
        float | None, typer.Option(help="Intra-epoch autoscaling tick, s (default 15).")
    ] = None,
    policy: Annotated[str | None, typer.Option(help="Planner policy by registry name (default casa).")] = None,
    time_budget: Annotated[float | None, typer.Option(help="Planner wall-clock budget per epoch, s.")] = None,
    platforms: Annotated[
        str | None, typer.Option(help="Comma-separated platform adapters (default deployment).")
    ] = None,
    metrics_file: Annotated[
        Path | None,
        typer.Option(help="JSON metrics document to forecast from (see casa_sched/autoscaler/forecast.py)."),
    ] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Port of GET /metrics; 0: none (default 8889).")] = None,
    identity: Annotated[str | None, typer.Option(help="Lease holder identity (default: host name and pid).")] = None,
    log_level: Annotated[str, typer.Option(help="Python log level.")] = "INFO",
) -> None:
    """Run the CASA epoch loop: snapshot, forecast, plan, store the plan, scale and resize."""
    from casa_sched.settings import SettingsError, load_settings

    configure_logging(_NAME, log_level, stream=sys.stderr)
    # urllib3 logs each of its own connection retries; the autoscaler reports the outcome once
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    try:
        settings = load_settings(config, {
            "workload.epoch_s": epoch_s,
            "autoscaler.intra_interval_s": intra_interval_s,
            "planner.policy": policy,
            "planner.time_budget_s": time_budget,
            "autoscaler.platforms": [p.strip() for p in platforms.split(",") if p.strip()] if platforms else None,
            "autoscaler.metrics_file": str(metrics_file) if metrics_file is not None else None,
            "autoscaler.metrics_port": metrics_port,
            "autoscaler.dry_run": dry_run or None,
        }, flag_names=_FLAG_NAMES)  # fmt: skip
    except SettingsError as exc:
        raise _fail(str(exc), 2) from None
    a = settings.autoscaler
    dry_run = a.dry_run

    from casa_sched.planners import policy_names

    if settings.planner.policy not in policy_names():
        raise _fail(f"--policy: unknown policy {settings.planner.policy!r}; known: {', '.join(policy_names())}", 2)

    from casa_sched.autoscaler.adapters import UnknownPlatformError, adapter_names

    known = adapter_names()
    bad = [p for p in a.platforms if p not in known]
    if bad or not a.platforms:
        given = ", ".join(map(repr, bad)) or "(none given)"
        raise _fail(f"--platforms: unknown platform {given}; known: {', '.join(known)}", 2)

    from casa_sched.autoscaler.forecast import FileMetricsSource, MetricsError, MetricsSource, NoMetrics

    try:
        source: MetricsSource = FileMetricsSource(a.metrics_file) if a.metrics_file is not None else NoMetrics()
        if a.metrics_file is None and settings.forecast.source != "none":
            from casa_sched.metricsources import SourceError, create_source

            try:
                source = create_source(settings)
            except SourceError as exc:  # settings only: Prometheus is first queried in the loop
                raise _fail(str(exc), 2) from None
    except MetricsError as exc:
        raise _fail(f"--metrics-file: {exc}", 2) from None

    from casa_sched.signals import SignalError

    stop = threading.Event()
    try:
        runtime = build_autoscaler(settings, kubeconfig, source, dry_run=dry_run, identity=identity, stop=stop)
    except SignalError as exc:
        raise _fail(f"signals: {exc}", 2) from None
    except UnknownPlatformError as exc:
        raise _fail(f"--platforms: {exc}", 2) from None
    except _KubeconfigError as exc:
        raise _fail(str(exc), 2) from None
    except _UnreachableError as exc:
        raise _fail(str(exc), 1) from None

    autoscaler, elector = runtime
    if not once and a.metrics_port:
        from prometheus_client import start_http_server

        try:
            start_http_server(a.metrics_port, registry=autoscaler.metrics.registry)
        except OSError as exc:
            raise _fail(f"--metrics-port {a.metrics_port}: {exc.strerror or exc}", 2) from None

    def _stop(signum: int, frame: Any) -> None:
        logging.getLogger(__name__).info("signal %d: releasing the lease and exiting", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    from casa_sched.autoscaler.actions import action_table
    from casa_sched.autoscaler.adapters.base import AdapterError
    from casa_sched.autoscaler.loop import EpochReport, run_forever

    def show(report: EpochReport) -> None:
        if json_out:
            typer.echo(json.dumps(report.to_dict(), sort_keys=True))
            return
        typer.echo(f"epoch {report.epoch} ({report.start.isoformat()}): {report.status}, "
                   f"{report.plan.container_count() if report.plan else 0} containers, plan {report.plan_hash}, "
                   f"{report.writes} write call(s){' (dry run)' if dry_run else ''}")  # fmt: skip
        if report.outcomes:
            typer.echo(action_table([o.action for o in report.outcomes]))
        for d in report.deferred:
            typer.echo(f"deferred: {d.function} {d.pod}: {d.reason}")

    try:
        run_forever(autoscaler, elector, stop, once=once or False, on_report=show)
    except AdapterError as exc:  # only with --once: the one epoch could not be run
        raise _fail(f"cannot run the epoch: {exc}", 1) from None


class _KubeconfigError(Exception):
    pass


class _UnreachableError(Exception):
    pass


def build_autoscaler(
    settings: Any,
    kubeconfig: Path | None,
    source: Any,
    *,
    dry_run: bool,
    identity: str | None,
    stop: threading.Event,
) -> tuple[Any, Any]:
    """The autoscaler and its (started) elector, after one API call that proves the cluster answers."""
    from casa_sched.autoscaler.adapters import AdapterContext, create_adapter
    from casa_sched.autoscaler.apply import Executor
    from casa_sched.autoscaler.epoch_signals import SignalReader
    from casa_sched.autoscaler.forecast import history_forecaster
    from casa_sched.autoscaler.kubeapi import api_error, counting_api_client, request_json
    from casa_sched.autoscaler.loop import Autoscaler
    from casa_sched.autoscaler.store import PlanStore
    from casa_sched.metrics import CasaMetrics
    from casa_sched.outputs import one_line

    metrics = CasaMetrics()
    from casa_sched.metricsources.base import PrometheusSource

    if isinstance(source, PrometheusSource):  # saturation signals unknown while Prometheus fails: counted
        source.on_unavailable = lambda signal, reason: metrics.signal_fallback_total.labels(
            signal=signal, reason=reason
        ).inc()

    def on_write(verb: str, url: str) -> None:
        metrics.autoscaler_api_writes_total.labels(verb=verb).inc()

    from casa_sched.outputs import InputError, input_file

    try:
        if kubeconfig is not None:
            input_file("--kubeconfig", kubeconfig)  # a FIFO would block the client's read
    except InputError as exc:
        raise _KubeconfigError(str(exc)) from None
    try:
        api = counting_api_client(kubeconfig, read_only=dry_run, on_write=on_write)
    except Exception as exc:  # kubernetes.config.ConfigException, OSError, YAML errors
        raise _KubeconfigError(f"--kubeconfig {kubeconfig}: cannot load it ({type(exc).__name__}: {one_line(exc)})"
                               ) from None  # fmt: skip
    if api is None:
        raise _KubeconfigError("no cluster: pass --kubeconfig, or run inside a pod with a service account")
    try:
        request_json(api, "GET", "/version")
    except Exception as exc:
        raise _UnreachableError(
            f"the API server {api.configuration.host} does not answer: {one_line(api_error(exc, 'GET /version'))}"
        ) from None
    import logging
    import os
    import socket

    from casa_sched.autoscaler.lease import LeaderElector
    from casa_sched.autoscaler.resize import PodResizer, server_supports_resize
    from casa_sched.clock import Clock

    clock = Clock.from_settings(settings)  # clock.factor: epochs, ticks and settle times are emulated
    a = settings.autoscaler
    support = server_supports_resize(api)
    if not support.supported:
        logging.getLogger(__name__).warning("%s", support.warning)
    context = AdapterContext(api_client=api, settings=settings)
    adapters = [create_adapter(p, context) for p in a.platforms]
    executor = Executor(api, {ad.platform: ad for ad in adapters}, PodResizer(api), metrics, dry_run=dry_run,
                        sleep=clock.sleep, clock=clock.monotonic)  # fmt: skip
    elector: Any = _NoElection()
    if not dry_run:
        # The Lease has its own client: its renewals (one PUT every 2 s) are not the plan's writes.
        lease_api = counting_api_client(kubeconfig)
        elector = LeaderElector(lease_api, identity or f"{socket.gethostname()}-{os.getpid()}", name=a.lease_name)
        elector.start()
    autoscaler = Autoscaler(
        settings,
        api,
        adapters,
        history_forecaster(
            settings,
            source,
            on_fallback=lambda reason: metrics.signal_fallback_total.labels(signal="forecast", reason=reason).inc(),
            on_stale=lambda fn, n: metrics.forecast_stale_epochs.labels(function=fn).set(n),
        ),
        source,
        SignalReader(settings, metrics, clock=clock.now),
        PlanStore(api),
        executor,
        metrics,
        resize_supported=support.supported,
        leader=lambda: elector.is_leader() and not stop.is_set(),
        clock=clock.now,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        real_s=clock.real_s,
    )
    return autoscaler, elector


class _NoElection:
    """Dry runs take no Lease (taking one is a write): they always act, and release nothing."""

    def is_leader(self) -> bool:
        return True

    def release(self) -> None:
        return None
