"""The ``casa`` command: one entry point, one sub-command per component.

Every command is registered here, statically; each command module imports only typer and the
settings at module level and defers its heavy imports (pandas, numba, the simulator, FastAPI,
kubernetes) into the command's body, so the long-running ``casa extender`` never loads the
simulator's stack. Usage errors print one line on stderr naming the flag (exit 2).
"""

from __future__ import annotations

from collections.abc import Sequence

from casa_sched.cli.accounting_cmd import accounting_command
from casa_sched.cli.autoscaler_cmd import autoscaler_command
from casa_sched.cli.config_cmd import config_app
from casa_sched.cli.dashboard_cmd import dashboard_app
from casa_sched.cli.demo_cmd import demo_command
from casa_sched.cli.devcluster_cmd import devcluster_app
from casa_sched.cli.emulate_cmd import emulate_command
from casa_sched.cli.entry import command_app, run
from casa_sched.cli.extender_cmd import extender_command
from casa_sched.cli.forecast_cmd import forecast_app
from casa_sched.cli.models_cmd import models_app
from casa_sched.cli.simulate_cmd import experiment, simulate

app = command_app(
    name="casa",
    help="Carbon- and SLO-aware scheduling and autoscaling for serverless functions (CASA).",
    no_args_is_help=True,
)
app.command("simulate")(simulate)
app.command("experiment")(experiment)
app.command("extender")(extender_command)
app.command("accounting")(accounting_command)
app.add_typer(models_app, name="models")
app.add_typer(config_app, name="config")
app.add_typer(dashboard_app, name="dashboard")
app.command("autoscaler")(autoscaler_command)
app.add_typer(forecast_app, name="forecast")
app.command("emulate")(emulate_command)
app.add_typer(devcluster_app, name="dev-cluster")
app.command("demo")(demo_command)


@app.callback()
def _casa() -> None:
    """Carbon- and SLO-aware scheduling and autoscaling for serverless functions (CASA)."""


def main(argv: Sequence[str] | None = None) -> None:
    """The ``casa`` console script."""
    run(app, "casa", argv)
