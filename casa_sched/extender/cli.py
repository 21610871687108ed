"""``casa extender``: serve kube-scheduler's filter/prioritize calls.

Flags (contract with the manifests and the end-to-end tests): ``--host``, ``--port``,
``--kubeconfig``, ``--plan-file``, ``--url-prefix``, ``--config``; optional ``--filter-verb``,
``--prioritize-verb``, ``--assume-ttl-s``, ``--max-body-bytes``, ``--log-level``.
Heavy imports (FastAPI, uvicorn, kubernetes) happen only when the command runs.
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Annotated

import typer


def extender_command(
    host: Annotated[str | None, typer.Option(help="Listen address (default 0.0.0.0).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default 8888).")] = None,
    kubeconfig: Annotated[
        Path | None, typer.Option(help="kubeconfig for the pod/node/plan watches; default: in-cluster, else none.")
    ] = None,
    plan_file: Annotated[
        Path | None,
        typer.Option(help="Read the plan from this JSON file (reloaded on change) instead of the ConfigMap."),
    ] = None,
    url_prefix: Annotated[str | None, typer.Option(help="Path prefix before /filter and /prioritize.")] = None,
    config: Annotated[Path | None, typer.Option(help="casa YAML settings file (section `extender:`).")] = None,
    filter_verb: Annotated[str, typer.Option(help="filterVerb of the scheduler's extender config.")] = "filter",
    prioritize_verb: Annotated[
        str, typer.Option(help="prioritizeVerb of the scheduler's extender config.")
    ] = "prioritize",
    assume_ttl_s: Annotated[
        float, typer.Option(min=0.0, help="How long a placement counts before the pod watch shows it bound, s.")
    ] = 30.0,
    max_body_bytes: Annotated[int, typer.Option(min=1024, help="Largest request body accepted, bytes.")] = 64 * 2**20,
    log_level: Annotated[str, typer.Option(help="Python log level.")] = "INFO",
) -> None:
    """Run the carbon- and SLO-aware kube-scheduler extender (filter + prioritize)."""
    from casa_sched.settings import SettingsError, load_settings

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(
            config,
            {
                "extender.host": host,
                "extender.port": port,
                "extender.url_prefix": url_prefix,
                "extender.plan_file": str(plan_file) if plan_file is not None else None,
            },
        ).extender
    except SettingsError as exc:
        typer.echo(f"casa extender: {exc}", err=True)
        raise typer.Exit(2) from None

    import uvicorn

    from casa_sched.extender.app import HotPathApp
    from casa_sched.extender.runtime import build_runtime
    from casa_sched.kube.client import load_api_client

    try:
        api_client = load_api_client(kubeconfig)
    except Exception as exc:  # kubernetes.config.ConfigException, OSError, YAML errors
        typer.echo(f"casa extender: cannot load kubeconfig {kubeconfig}: {exc}", err=True)
        raise typer.Exit(2) from None
    runtime = build_runtime(
        settings,
        api_client=api_client,
        filter_verb=filter_verb,
        prioritize_verb=prioritize_verb,
        assume_ttl_s=assume_ttl_s,
        max_body_bytes=max_body_bytes,
    )
    runtime.start()
    # Long-lived server: move start-up objects out of the collector's way and collect the
    # youngest generation less often (each request allocates a whole Pod tree).
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 100)
    try:
        uvicorn.run(
            HotPathApp(runtime.app), host=settings.host, port=settings.port, log_level="warning", access_log=False
        )
    finally:
        runtime.stop()
