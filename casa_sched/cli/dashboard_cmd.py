"""``casa dashboard generate --out DIR``: write the Grafana dashboard JSON and its provisioning ConfigMap."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

dashboard_app = typer.Typer(help="The Grafana dashboard of casa-sched's metrics.", no_args_is_help=True)


@dashboard_app.command("generate")
def generate(
    out: Annotated[Path, typer.Option(help="Directory for casa-sched.json and dashboard-configmap.yaml.")] = Path(
        "manifests/grafana"
    ),
) -> None:
    """Write the dashboard (Grafana JSON) and a ConfigMap labelled grafana_dashboard: "1"."""
    from casa_sched.accounting.dashboards import write

    if out.exists() and not out.is_dir():
        typer.echo(f"casa dashboard generate: --out {out} is not a directory", err=True)
        raise typer.Exit(2)
    try:
        paths = write(out)
    except OSError as exc:
        typer.echo(f"casa dashboard generate: cannot write --out {out}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo("wrote " + ", ".join(str(p) for p in paths))
