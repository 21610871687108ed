"""``casa simulate`` (one run) and ``casa experiment NAME`` (one of the paper's sweeps).

Both replay a trace on a simulated cluster under CASA and its baselines. Their flags are derived
(:mod:`casa_sched.cli.flags`): the settings flags from the settings fields, the input flags from
:class:`ScenarioInputs`. The simulator, planners and pandas are imported when a command runs,
not when ``casa`` starts.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from casa_sched.cli.flags import Overrides, SettingFlag, flag, setting_field, with_default, with_flags
from casa_sched.experiments.defaults import DEFAULT_EPOCHS, DEFAULT_START_LOCAL
from casa_sched.experiments.paper import EXPERIMENTS, PAPER_POLICIES
from casa_sched.outputs import check_output_dir, check_output_file, json_text
from casa_sched.settings import SIMULATE_DEFAULTS, load_settings

if TYPE_CHECKING:
    from casa_sched.contract.snapshot import PlannerConfig
    from casa_sched.experiments.runner import Scenario
    from casa_sched.planners import Planner

# The paper's policies plus bin-packing: what `casa simulate` compares when --policies is unset.
DEFAULT_POLICIES = ("casa", "score", "hybrid", "rl", "binpack")

SCENARIO_SETTINGS = (
    SettingFlag("cluster.nodes"),
    SettingFlag("workload.intensity"),
    SettingFlag("workload.synthetic_functions"),
    SettingFlag("slo.laxity"),
    SettingFlag("slo.cstr"),
    SettingFlag("planner.seed"),
    SettingFlag("planner.time_budget_s", "--time-budget"),
    SettingFlag("workload.utilisation"),
    SettingFlag("cluster.sleep_empty_nodes"),
)


def _simulate_flag(setting: SettingFlag) -> SettingFlag:
    """``casa simulate``'s flag of a setting its embedded scenario starts from (its help shows that
    default, and the built-in one the Azure trace starts from)."""
    if setting.key not in SIMULATE_DEFAULTS:
        return setting
    shown = str(SIMULATE_DEFAULTS[setting.key])
    if setting.key != "workload.synthetic_functions":  # the Azure trace does not read it
        shown += f"; {setting_field(setting.key).default} with --trace azure2019"
    return replace(setting, shown_default=shown)


SIMULATE_SETTINGS = tuple(_simulate_flag(s) for s in SCENARIO_SETTINGS)


@dataclass(frozen=True)
class ScenarioInputs:
    """The flags that pick the workload, its signals and the run's length (inputs, not settings)."""

    trace: Literal["synthetic", "azure2019"] = flag(
        "synthetic", "The embedded synthetic workload (no download) or the Azure Functions 2019 trace."
    )
    trace_dir: Path | None = flag(None, "Directory of the Azure Functions 2019 trace or its sample.", exists=True)
    trace_day: int | None = flag(None, "Day dNN of the public Azure trace.")
    functions: int | None = flag(None, "Keep a seeded random subset of this many functions.")
    epochs: int | None = flag(None, f"Epochs to simulate; unset: {DEFAULT_EPOCHS}, or every epoch of a shorter trace.")
    ci_csv: Path | None = flag(
        None, "Hourly carbon intensity, Electricity Maps CSV export; unset: Tampa's summer profile.", exists=True
    )
    price_csv: Path | None = flag(
        None, "Hourly price, ISO CSV (USD/MWh); unset: an embedded summer profile.", exists=True
    )
    start: str = flag(DEFAULT_START_LOCAL, "Local date-time of the trace's first minute, ISO 8601.")
    forecast: str = flag(
        "oracle",
        "Plan on the epoch's true counts ('oracle', the paper's assumption) or on a forecaster's prediction from "
        "the trace's history: last, ewma, seasonal, care, regressor (`casa forecast backtest` compares them).",
    )
    config: Path | None = flag(None, "YAML settings file; unset: $CASA_CONFIG, if set.", exists=True)


ScenarioFactory = Callable[[Mapping[str, Any]], "tuple[Scenario, dict[str, Any]]"]


@contextmanager
def _interruptible(command: str) -> Iterator[None]:
    """SIGINT/SIGTERM end the run with one line, exit 128 + signal, and no output set written
    (the writers replace their previous set only after every file of it is written)."""
    received: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except KeyboardInterrupt:
        signum = received[0] if received else int(signal.SIGINT)
        typer.echo(f"casa {command}: stopped by {signal.Signals(signum).name}; no outputs written", err=True)
        raise typer.Exit(128 + signum) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def _write_failure(command: str) -> Iterator[None]:
    """Outputs that cannot be written after the run (disk full, a NaN figure): one line, exit 1."""
    try:
        yield
    except (OSError, ValueError) as exc:
        typer.echo(f"casa {command}: cannot write the outputs: {str(exc).splitlines()[0]}", err=True)
        raise typer.Exit(1) from None


def _check_out(out: Path, names: tuple[str, ...]) -> None:
    """``--out`` accepts the run's files, checked before the run: a directory (created if need be)
    in which no output name is taken by a directory."""
    check_output_dir("--out", out)
    for name in names:
        check_output_file("--out", out / name)


@contextmanager
def _bad_input(command: str) -> Iterator[None]:
    """Bad flags, files or settings: one line on stderr naming them, exit 2."""
    from casa_sched.experiments.inputs import ScenarioError
    from casa_sched.planners import PlannerError
    from casa_sched.settings import SettingsError

    try:
        yield
    except (SettingsError, ScenarioError, PlannerError, ValueError, OSError) as exc:
        message = str(exc).replace("\n", " ")
        typer.echo(f"casa {command}: {message}", err=True)
        raise typer.Exit(2) from None


def simulate_defaults(trace: str) -> Mapping[str, Any]:
    """The settings ``casa simulate`` starts from on ``trace``: its embedded scenario's
    (:data:`~casa_sched.settings.SIMULATE_DEFAULTS`) on the synthetic workload, none (the
    built-in defaults, the paper's set-up) on the Azure trace."""
    return SIMULATE_DEFAULTS if trace == "synthetic" else {}


def _scenario_factory(
    inputs: ScenarioInputs, overrides: Overrides, defaults: Mapping[str, Any] | None = None
) -> ScenarioFactory:
    """Builds the scenario for extra settings overrides (an experiment's grid point) on top of the
    flags; ``defaults`` are the command's own (:func:`simulate_defaults`), below file and environment."""
    from datetime import datetime

    from casa_sched.experiments.inputs import ScenarioError, build_scenario

    try:
        start = datetime.fromisoformat(inputs.start)
    except ValueError:
        raise ScenarioError(
            f"--start must be an ISO 8601 date-time such as 2024-07-10T08:00, got {inputs.start!r}"
        ) from None

    def make(point: Mapping[str, Any]) -> tuple[Scenario, dict[str, Any]]:
        settings = load_settings(
            inputs.config, {**overrides.values, **point}, flag_names=overrides.flag_names, defaults=defaults
        )
        return build_scenario(
            settings,
            trace=inputs.trace,
            trace_dir=inputs.trace_dir,
            trace_day=inputs.trace_day,
            functions=inputs.functions,
            epochs=inputs.epochs,
            ci_csv=inputs.ci_csv,
            price_csv=inputs.price_csv,
            start_local=start,
            forecast=inputs.forecast,
        )

    return make


def _policy_names(policies: str | None, default: tuple[str, ...]) -> list[str]:
    from casa_sched.experiments.inputs import ScenarioError
    from casa_sched.planners import policy_names

    if policies is None:
        known = policy_names()
        return [p for p in default if p in known]
    names = [p.strip() for p in policies.split(",") if p.strip()]
    if not names:
        raise ScenarioError("--policies is empty")
    return names


def _planners(names: list[str], config: PlannerConfig) -> dict[str, Planner]:
    from casa_sched.experiments.inputs import ScenarioError
    from casa_sched.planners import PlannerError, create

    try:
        return {n: create(n, config) for n in names}
    except PlannerError as exc:
        raise ScenarioError(f"--policies: {exc}") from None


_POLICIES_HELP = "Comma-separated policies by registry name (casa, score, hybrid, rl, binpack, milp)."
OutFlag = Annotated[Path, typer.Option(help="Directory for CSV, JSON and PNG outputs.")]


@with_flags(ScenarioInputs, SIMULATE_SETTINGS)
def simulate(
    policies: Annotated[str | None, typer.Option(help=with_default(_POLICIES_HELP, ",".join(DEFAULT_POLICIES)))] = None,
    *,
    inputs: ScenarioInputs,
    overrides: Overrides,
    out: OutFlag = Path("out"),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON summary on stdout instead of the table.")
    ] = False,
    experiment: Annotated[str | None, typer.Option(help="Deprecated: use `casa experiment NAME`.", hidden=True)] = None,
    serve_metrics: Annotated[
        int | None,
        typer.Option(
            help="Serve the run's carbon, energy, cost and SLO under the live metric names on this loopback port, "
            "paced by --speed, and keep serving after the run until interrupted (one policy; default casa)."
        ),
    ] = None,
    speed: Annotated[float, typer.Option(help="With --serve-metrics: simulated seconds per wall-clock second.")] = 60.0,
) -> None:
    """Replay a workload on a simulated cluster under each policy and compare carbon, cost and SLO.

    With no arguments: the embedded synthetic workload of 80 functions at R = 30x on 4 nodes,
    empty nodes sleeping (node power management), 16 epochs (README "casa simulate").
    """
    if experiment is not None:
        typer.echo(f"casa simulate: --experiment is deprecated; use `casa experiment {experiment}`", err=True)
        _experiment(experiment, policies, out, inputs, overrides, command="simulate")
        return
    from casa_sched.experiments.report import OUTPUT_FILES

    with _bad_input("simulate"):
        scenario, meta = _scenario_factory(inputs, overrides, simulate_defaults(inputs.trace))({})
        names = _policy_names(policies, ("casa",) if serve_metrics is not None else DEFAULT_POLICIES)
        if serve_metrics is not None:
            if not 1 <= serve_metrics <= 65535:
                raise ValueError(f"--serve-metrics must be a port 1..65535, got {serve_metrics}")
            if not speed > 0:
                raise ValueError(f"--speed must be > 0, got {speed}")
            if len(names) != 1:
                raise ValueError(f"--serve-metrics serves one policy, got --policies {','.join(names)}")
        planners = _planners(names, scenario.config)
        _check_out(out, OUTPUT_FILES)
    publish = None if serve_metrics is None else _serve(serve_metrics, scenario.params.epoch_s / speed)
    with _interruptible("simulate"):
        _run_once(scenario, meta, planners, out, as_json, publish)
        if serve_metrics is not None:
            typer.echo(f"casa simulate: run done; serving http://127.0.0.1:{serve_metrics}/metrics until interrupted",
                       err=True)  # fmt: skip
            threading.Event().wait()


def _serve(port: int, pause_s: float) -> Callable[[str, int, Any, float], None]:
    """Start /metrics on 127.0.0.1:port; the returned callback publishes an epoch, then waits ``pause_s``."""
    from prometheus_client import start_http_server

    from casa_sched.accounting.simulated import publish_epoch
    from casa_sched.metrics import CasaMetrics

    metrics = CasaMetrics()
    try:
        start_http_server(port, addr="127.0.0.1", registry=metrics.registry)
    except OSError as exc:
        typer.echo(f"casa simulate: --serve-metrics cannot listen on 127.0.0.1:{port}: {exc}", err=True)
        raise typer.Exit(1) from None

    def publish(policy: str, epoch: int, result: Any, solve_s: float) -> None:
        publish_epoch(metrics, result, solve_s)
        time.sleep(pause_s)

    return publish


@with_flags(ScenarioInputs, SCENARIO_SETTINGS)
def experiment(
    name: Annotated[
        str, typer.Argument(help=f"One of the experiments: {', '.join(EXPERIMENTS)}.", show_default=False)
    ],
    policies: Annotated[str | None, typer.Option(help=with_default(_POLICIES_HELP, ",".join(PAPER_POLICIES)))] = None,
    *,
    inputs: ScenarioInputs,
    overrides: Overrides,
    out: OutFlag = Path("out"),
) -> None:
    """Run one of the paper's experiments, figures 8-11 of §VI.B (or power-states-full, node power
    management on and off): a sweep of runs and a markdown report with the paper's ratios beside
    ours; each grid point's settings override the flags'."""
    _experiment(name, policies, out, inputs, overrides, command="experiment")


def _experiment(
    name: str, policies: str | None, out: Path, inputs: ScenarioInputs, overrides: Overrides, *, command: str
) -> None:
    from rich.console import Console

    from casa_sched.experiments.inputs import ScenarioError
    from casa_sched.experiments.paper import run_experiment, write_report
    from casa_sched.experiments.report import write_outputs

    with _bad_input(command):
        if name not in EXPERIMENTS:
            raise ScenarioError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
        make = _scenario_factory(inputs, overrides)
        scenario, meta = make({})  # checks the flags before the sweep starts
        names = _policy_names(policies, PAPER_POLICIES)
        _planners(names, scenario.config)
        _check_out(out, (f"{name}.md",))
        _check_out(out / name, ())
    exp = EXPERIMENTS[name]
    console = Console()
    with _interruptible(command):
        results = run_experiment(
            exp,
            lambda point: make(point)[0],
            names,
            on_point=lambda label: console.print(f"[bold]{exp.name}[/bold]: {label}"),
        )
        with _write_failure(command):
            for point, runs in results:
                write_outputs(runs, out / name / _slug(point.label), {**meta, "point": point.label})
            report = write_report(exp, results, out)
    console.print(f"wrote {report}")


def _run_once(
    scenario: Scenario,
    meta: dict[str, Any],
    planners: dict[str, Planner],
    out: Path,
    as_json: bool,
    publish: Callable[[str, int, Any, float], None] | None = None,
) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from casa_sched.experiments.report import (
        SUMMARY_KEYS,
        TABLE_UNITS,
        comparison_lines,
        summary,
        summary_table,
        time_bound_notes,
        write_outputs,
    )
    from casa_sched.experiments.runner import run_policies

    console = Console(stderr=as_json)
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, disable=not sys.stderr.isatty() and as_json,
    ) as progress:  # fmt: skip
        task = progress.add_task("simulating", total=scenario.epochs * len(planners))

        def on_epoch(policy: str, epoch: int, result: Any, solve_s: float) -> None:
            progress.update(task, advance=1, description=f"{policy} epoch {epoch + 1}/{scenario.epochs}")
            if publish is not None:
                publish(policy, epoch, result, solve_s)

        runs = run_policies(scenario, list(planners), on_epoch=on_epoch, planners=planners)
    meta = {**meta, "wall_seconds": round(time.perf_counter() - started, 2)}
    with _write_failure("simulate"):
        paths = write_outputs(runs, out, meta)
    result = summary(runs)
    if as_json:
        sys.stdout.write(json_text({n: {k: v[k] for k in SUMMARY_KEYS} for n, v in result.items()}, indent=2))
        return
    console.print(f"workload: {meta['workload']}", highlight=False)
    console.print(summary_table(result, meta, scenario.epochs))
    for line in TABLE_UNITS:
        console.print(line, highlight=False)
    for note in time_bound_notes(result, scenario.epochs, scenario.config.time_budget_s):
        console.print(note, highlight=False)
    console.print("wrote " + ", ".join(str(p) for p in paths), highlight=False)
    for line in comparison_lines(result, scenario.epochs):
        console.print(line, highlight=False)


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label).strip("-").lower()
