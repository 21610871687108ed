"""``casa forecast``: the forecasters of next-epoch load, measured (``backtest``).

The scenario flags are ``casa simulate``'s (trace, signals, R, N, ...), declared once there;
``--forecast`` is ignored here, since every forecaster in ``--forecasters`` is run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from casa_sched.cli.entry import command_app
from casa_sched.cli.flags import Overrides, with_flags
from casa_sched.cli.simulate_cmd import (
    SCENARIO_SETTINGS,
    OutFlag,
    ScenarioInputs,
    _bad_input,
    _check_out,
    _interruptible,
    _scenario_factory,
    _write_failure,
)
from casa_sched.settings import load_settings

forecast_app = command_app(help="Next-epoch load forecasters: measure them on a trace.", no_args_is_help=True)

ALL = "all"


@forecast_app.command("backtest")
@with_flags(ScenarioInputs, SCENARIO_SETTINGS)
def backtest(
    forecasters: Annotated[
        str, typer.Option(help="Comma-separated forecasters, 'oracle' for the reference; 'all': oracle and every one.")
    ] = ALL,
    policy: Annotated[str, typer.Option(help="Policy that plans on each forecast.")] = "casa",
    *,
    inputs: ScenarioInputs,
    overrides: Overrides,
    out: OutFlag = Path("out"),
) -> None:
    """Each forecaster's error on the trace, and SL_ave / drops / carbon of the policy planning on it."""
    from rich.console import Console

    from casa_sched.experiments.forecast_backtest import BACKTEST_FILES, run_backtest, write_backtest
    from casa_sched.experiments.inputs import ScenarioError
    from casa_sched.experiments.runner import ORACLE
    from casa_sched.forecasting import ForecastError, forecaster_names
    from casa_sched.planners import PlannerError, create

    with _bad_input("forecast backtest"):
        known = forecaster_names()
        names = [ORACLE, *known] if forecasters == ALL else [n.strip() for n in forecasters.split(",") if n.strip()]
        unknown = [n for n in names if n != ORACLE and n not in known]
        if unknown or not names:
            raise ScenarioError(
                f"--forecasters: unknown {', '.join(unknown) or '(empty)'}; known: oracle, {', '.join(known)}"
            )
        settings = load_settings(inputs.config, overrides.values, flag_names=overrides.flag_names)
        scenario, meta = _scenario_factory(inputs, overrides)({})
        try:
            create(policy, scenario.config)
        except (PlannerError, ForecastError) as exc:
            raise ScenarioError(f"--policy: {exc}") from None
        _check_out(out, BACKTEST_FILES)
    console = Console(stderr=True)
    with _interruptible("forecast backtest"):
        rows = run_backtest(scenario, names, settings.forecast, policy,
                            on_forecaster=lambda n: console.print(f"[bold]{n}[/bold]: planning and simulating"))  # fmt: skip
        with _write_failure("forecast backtest"):
            paths = write_backtest(rows, meta, policy, out)
    typer.echo(paths[0].read_text(), nl=False)
    console.print("wrote " + ", ".join(str(p) for p in paths), highlight=False)
