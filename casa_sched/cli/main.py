"""The ``casa`` command: one entry point, one sub-command per component."""

from __future__ import annotations

import sys

import typer

from casa_sched.extender.cli import extender_command

app = typer.Typer(
    name="casa",
    help="Carbon- and SLO-aware scheduling and autoscaling for serverless functions (CASA).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("extender")(extender_command)


@app.callback()
def _casa() -> None:
    """Carbon- and SLO-aware scheduling and autoscaling for serverless functions (CASA)."""


_registered = False


def full_app() -> typer.Typer:
    """The app with every sub-command. simulate / models / config pull in pandas and the
    simulator; the long-running extender does not need them, so ``casa extender`` skips them."""
    global _registered  # noqa: PLW0603 - registration happens once per process
    if _registered:
        return app
    _registered = True
    from casa_sched.cli.config_cmd import config_app
    from casa_sched.cli.models_cmd import models_app
    from casa_sched.cli.simulate_cmd import simulate

    app.command("simulate")(simulate)
    app.add_typer(models_app, name="models")
    app.add_typer(config_app, name="config")
    return app


def main() -> None:
    if len(sys.argv) >= 2 and sys.argv[1] == "extender":
        app()
    else:
        full_app()()
