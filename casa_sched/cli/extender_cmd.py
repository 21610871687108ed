"""``casa extender``: serve kube-scheduler's filter/prioritize calls.

Flags (contract with the manifests and the end-to-end tests): ``--host``, ``--port``,
``--kubeconfig``, ``--plan-file``, ``--url-prefix``, ``--config``; optional ``--filter-verb``,
``--prioritize-verb``, ``--assume-ttl-s``, ``--max-body-bytes``, ``--max-nodes``, ``--tls-cert-file``,
``--tls-key-file`` (HTTPS when both are given), ``--log-level``. Every flag but
``--kubeconfig``, ``--config`` and ``--log-level`` overrides an ``extender.*`` setting (its help is
the setting's). Heavy imports (FastAPI, uvicorn, kubernetes) happen only when the command runs.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path

import typer

from casa_sched.cli.flags import Overrides, SettingFlag, configure_logging, flag, with_flags

EXTENDER_SETTINGS = tuple(
    SettingFlag(f"extender.{name}")
    for name in (
        "host", "port", "plan_file", "url_prefix", "filter_verb", "prioritize_verb", "assume_ttl_s", "max_body_bytes",
        "max_nodes", "tls_cert_file", "tls_key_file",
    )
)  # fmt: skip


@dataclass(frozen=True)
class ExtenderInputs:
    """The flags of ``casa extender`` that are not settings."""

    kubeconfig: Path | None = flag(None, "kubeconfig for the pod/node/plan watches; unset: in-cluster, else none.")
    config: Path | None = flag(
        None, "casa YAML settings file (section `extender:`); unset: $CASA_CONFIG, if set.", exists=True
    )
    log_level: str = flag("INFO", "Python log level.")


@with_flags(ExtenderInputs, EXTENDER_SETTINGS)
def extender_command(*, inputs: ExtenderInputs, overrides: Overrides) -> None:
    """Run the carbon- and SLO-aware kube-scheduler extender (filter + prioritize)."""
    from casa_sched.settings import SettingsError, load_settings

    configure_logging("casa extender", inputs.log_level)
    try:
        settings = load_settings(inputs.config, overrides.values, flag_names=overrides.flag_names).extender
    except SettingsError as exc:
        typer.echo(f"casa extender: {exc}", err=True)
        raise typer.Exit(2) from None

    from casa_sched.extender.runtime import TLSConfigError, TLSFiles, build_runtime, listen_socket
    from casa_sched.kube.client import load_api_client
    from casa_sched.outputs import InputError, input_file, one_line

    try:
        if inputs.kubeconfig is not None:
            input_file("--kubeconfig", inputs.kubeconfig)  # a FIFO would block the client's read
        plan_file = settings.plan_file
        if plan_file is not None and plan_file.exists() and not plan_file.is_file():
            raise InputError(f"--plan-file {plan_file}: not a regular file, expected a plan JSON file")
        TLSFiles.from_settings(settings)  # before the port is taken; the runtime loads them again
    except (InputError, TLSConfigError) as exc:
        typer.echo(f"casa extender: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        api_client = load_api_client(inputs.kubeconfig)
    except Exception as exc:  # kubernetes.config.ConfigException, OSError, YAML errors
        typer.echo(f"casa extender: cannot load kubeconfig {inputs.kubeconfig}: {one_line(exc)}", err=True)
        raise typer.Exit(2) from None
    try:
        sock = listen_socket(settings.host, settings.port)
    except (OSError, UnicodeError) as exc:  # UnicodeError: a host name longer than DNS allows
        message = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        typer.echo(f"casa extender: cannot listen on {settings.host}:{settings.port}: {message}", err=True)
        raise typer.Exit(1) from None
    try:
        runtime = build_runtime(settings, api_client=api_client)
    except TLSConfigError as exc:
        sock.close()
        typer.echo(f"casa extender: {exc}", err=True)
        raise typer.Exit(2) from None
    runtime.start()
    # Long-lived server: move start-up objects out of the collector's way and collect the
    # youngest generation less often (each request allocates a whole Pod tree).
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 100)
    try:
        runtime.serve(sock)
    finally:
        runtime.stop()
