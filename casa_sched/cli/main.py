"""The ``casa`` command: one entry point, one sub-command per component."""

from __future__ import annotations

import typer

from casa_sched.cli.config_cmd import config_app
from casa_sched.cli.models_cmd import models_app
from casa_sched.cli.simulate_cmd import simulate
from casa_sched.extender.cli import extender_command

app = typer.Typer(
    name="casa",
    help="Carbon- and SLO-aware scheduling and autoscaling for serverless functions (CASA).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("simulate")(simulate)
app.add_typer(models_app, name="models")
app.add_typer(config_app, name="config")
app.command("extender")(extender_command)


def main() -> None:
    app()
