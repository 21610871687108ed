"""``casa simulate``: replay a trace on a simulated cluster under CASA and its baselines."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from casa_sched.experiments.inputs import ScenarioError, build_scenario
from casa_sched.experiments.paper import EXPERIMENTS, PAPER_POLICIES, run_experiment, write_report
from casa_sched.experiments.report import SUMMARY_KEYS, summary, write_outputs
from casa_sched.experiments.runner import Scenario, run_policies
from casa_sched.planners import PlannerError, policy_names
from casa_sched.settings import SettingsError, load_settings

# The paper's policies plus bin-packing, those this build registers (one module per policy).
DEFAULT_POLICIES = "default"
_DEFAULT_ORDER = ("casa", "score", "hybrid", "rl", "binpack")


def simulate(
    policies: Annotated[
        str,
        typer.Option(
            help="Comma-separated policies (casa, score, hybrid, rl, binpack, milp, ...); default: casa and every registered baseline.",
            show_default=False,
        ),
    ] = DEFAULT_POLICIES,
    nodes: Annotated[int | None, typer.Option(help="Compute nodes N (default 4).")] = None,
    intensity: Annotated[float | None, typer.Option(help="Request-intensity multiplier R (default 20).")] = None,
    laxity: Annotated[float | None, typer.Option(help="Deadline laxity (eq. 6) (default 10).")] = None,
    cstr: Annotated[float | None, typer.Option(help="SLO constraint on SL_ave, a ratio (default 0.05).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs to simulate (default 16 (4 h)).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of every random choice (default 0).")] = None,
    trace: Annotated[str, typer.Option(help="'synthetic' (embedded default) or 'azure2019'.")] = "synthetic",
    trace_dir: Annotated[
        Path | None, typer.Option(help="Directory of the Azure Functions 2019 trace or its sample.")
    ] = None,
    trace_day: Annotated[int | None, typer.Option(help="Day dNN of the public Azure trace.")] = None,
    functions: Annotated[int | None, typer.Option(help="Keep a seeded random subset of this many functions.")] = None,
    ci_csv: Annotated[Path | None, typer.Option(help="Hourly carbon intensity, Electricity Maps CSV export.")] = None,
    price_csv: Annotated[Path | None, typer.Option(help="Hourly price, ISO CSV (USD/MWh).")] = None,
    start: Annotated[
        str | None,
        typer.Option(help="Local date-time of the trace's first minute, ISO 8601 (default 2024-07-10T08:00)."),
    ] = None,
    forecast: Annotated[
        str, typer.Option(help="'oracle' (the epoch's true counts) or 'last' (previous epoch's).")
    ] = "oracle",
    time_budget: Annotated[
        float | None, typer.Option(help="Planner wall-clock budget per epoch, s (default 2).")
    ] = None,
    utilisation: Annotated[str | None, typer.Option(help="U_i: 'busy' (default) or 'allocated' cores.")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML settings file.")] = None,
    out: Annotated[Path, typer.Option(help="Directory for CSV, JSON and PNG outputs.")] = Path("out"),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON summary on stdout instead of the table.")
    ] = False,
    experiment: Annotated[
        str | None, typer.Option(help=f"Run one of the paper's experiments: {', '.join(EXPERIMENTS)}.")
    ] = None,
) -> None:
    """Replay a workload on a simulated cluster under each policy and compare carbon, cost and SLO."""
    console = Console(stderr=as_json)
    flags: dict[str, Any] = {
        "cluster.nodes": nodes,
        "workload.intensity": intensity,
        "slo.laxity": laxity,
        "slo.cstr": cstr,
        "planner.seed": seed,
        "planner.time_budget_s": time_budget,
        "workload.utilisation": utilisation,
    }

    def make(overrides: dict[str, Any]) -> tuple[Scenario, dict[str, Any]]:
        if forecast not in ("oracle", "last"):
            raise ScenarioError(f"--forecast must be 'oracle' or 'last', got {forecast!r}")
        settings = load_settings(config, overrides={**flags, **overrides})
        return build_scenario(
            settings,
            trace=trace,
            trace_dir=trace_dir,
            trace_day=trace_day,
            functions=functions,
            epochs=epochs,
            ci_csv=ci_csv,
            price_csv=price_csv,
            start_local=datetime.fromisoformat(start) if start else None,
            forecast=forecast,  # type: ignore[arg-type]
        )

    try:
        if experiment is not None:
            if experiment not in EXPERIMENTS:
                raise ScenarioError(f"unknown --experiment {experiment!r}; known: {', '.join(EXPERIMENTS)}")
            if policies == DEFAULT_POLICIES:
                policies = ",".join(PAPER_POLICIES)
        scenario, meta = make({})
        if policies == DEFAULT_POLICIES:
            known = policy_names()
            policies = ",".join(p for p in _DEFAULT_ORDER if p in known)
        names = [p.strip() for p in policies.split(",") if p.strip()]
        if not names:
            raise ScenarioError("--policies is empty")
        from casa_sched.planners import create

        planners = {n: create(n) for n in names}
    except (SettingsError, ScenarioError, PlannerError, ValueError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None

    if experiment is not None:
        exp = EXPERIMENTS[experiment]
        results = run_experiment(
            exp,
            lambda overrides: make(dict(overrides))[0],
            names,
            on_point=lambda label: console.print(f"[bold]{exp.name}[/bold]: {label}"),
        )
        for point, runs in results:
            write_outputs(runs, out / experiment / _slug(point.label), {**meta, "point": point.label})
        report = write_report(exp, results, out)
        console.print(f"wrote {report}")
        return

    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, disable=not sys.stderr.isatty() and as_json,
    ) as progress:  # fmt: skip
        task = progress.add_task("simulating", total=scenario.epochs * len(names))

        def on_epoch(policy: str, epoch: int, *_: Any) -> None:
            progress.update(task, advance=1, description=f"{policy} epoch {epoch + 1}/{scenario.epochs}")

        runs = run_policies(scenario, names, on_epoch=on_epoch, planners=planners)
    meta = {**meta, "wall_seconds": round(time.perf_counter() - started, 2)}
    paths = write_outputs(runs, out, meta)
    result = summary(runs)
    if as_json:
        sys.stdout.write(json.dumps({n: {k: v[k] for k in SUMMARY_KEYS} for n, v in result.items()}, indent=2) + "\n")
        return
    table = Table(
        title=f"{meta['workload']} · N={meta['nodes']} · R={meta['intensity']}x · Cstr={meta['cstr']:.0%} · {scenario.epochs} epochs"
    )
    for col in ("policy", "carbon (g)", "energy (kWh)", "cost ($)", "SL_ave", "epochs ≤ Cstr", "dropped", "load", "plan s (mean)"):
        table.add_column(col, justify="right" if col != "policy" else "left")
    for name, s in result.items():
        table.add_row(
            name, f"{s['carbon_g']:.1f}", f"{s['energy_kwh']:.3f}", f"{s['cost_usd']:.4f}",
            f"{s['slo_violation_rate']:.2%}", f"{int(s['epochs_meeting_cstr'])}/{scenario.epochs}",
            f"{s['dropped'] / max(s['requests'], 1):.2%}", f"{s['load']:.1%}", f"{s['plan_seconds_mean']:.2f}",
        )  # fmt: skip
    console.print(table)
    for name, s in result.items():
        if s["plan_epochs_time_bound"]:
            console.print(
                f"{name}: the {scenario.config.time_budget_s:g} s planning budget, not planner.gen, ended the search in "
                f"{int(s['plan_epochs_time_bound'])}/{scenario.epochs} epochs, so these numbers depend on this "
                "machine's speed and load; for a reproducible run raise --time-budget until this note goes away "
                "(or lower planner.gen).",
                highlight=False,
            )
    console.print("wrote " + ", ".join(str(p) for p in paths))


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label).strip("-").lower()
