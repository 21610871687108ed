"""``casa demo``: the whole live loop on this machine, then the same table as ``casa simulate``.

It runs :class:`~casa_sched.emulator.loop.LiveLoop`: ``casa dev-cluster`` (control plane, the
casa extender attached to kube-scheduler, KWOK nodes), one Deployment per function, a
Prometheus, ``casa emulate`` replaying the trace against the pods and ``casa autoscaler``
planning, scaling and resizing them, all on one accelerated clock. After the last epoch it draws
the dashboard's PNGs into ``--out`` as ``casa dashboard render`` does, from the Prometheus that
scraped the extender, the emulator, the autoscaler and the live accounting during the run, and
prints the policy's row of the ``casa simulate`` table for what the emulated cluster did, and
beside it, per epoch, the carbon the live accounting measured from Prometheus. Every process it
started is stopped on exit, on an error and on SIGINT/SIGTERM.

Inputs are checked before anything starts: one line on stderr, exit 2 (bad input) or 1 (a
binary missing, a component that did not start).
"""

from __future__ import annotations

import math
import signal
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

_NAME = "casa demo"


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"{_NAME}: {message}", err=True)
    return typer.Exit(code)


def _summary(records: list[dict[str, Any]], plan_s: list[float], cstr: float) -> dict[str, float]:
    """The keys ``casa simulate``'s table reads, from the emulated epochs."""
    n = max(len(records), 1)
    return {
        "carbon_g": sum(r["carbon_g"] for r in records), "energy_kwh": sum(r["energy_kwh"] for r in records),
        "cost_usd": sum(r["cost_usd"] for r in records),
        "slo_violation_rate": sum(r["slo_violation_rate"] for r in records) / n,
        "epochs_meeting_cstr": float(sum(r["slo_violation_rate"] <= cstr for r in records)),
        "requests": float(sum(r["requests"] for r in records)), "dropped": float(sum(r["dropped"] for r in records)),
        # the simulator's only request-level violation is a drop (deadline passed in the queue)
        "request_violation_rate": sum(r["dropped"] for r in records) / max(sum(r["requests"] for r in records), 1),
        "load": sum(r["load"] for r in records) / n,
        "plan_seconds_mean": sum(plan_s) / len(plan_s) if plan_s else 0.0,
    }  # fmt: skip


def demo_command(
    functions: Annotated[int, typer.Option("--functions", help="Functions of the synthetic trace (1-50).")] = 6,
    epochs: Annotated[int, typer.Option("--epochs", help="Epochs to run (1-16).")] = 3,
    nodes: Annotated[int, typer.Option("--nodes", help="KWOK nodes of the default node (1-20).")] = 2,
    clock_factor: Annotated[float, typer.Option("--clock-factor", help="Emulated seconds per wall-clock second "
                                                "(30: a 15-minute epoch in 30 s; 5-60).")] = 30.0,
    policy: Annotated[str, typer.Option("--policy", help="Planner policy of the autoscaler.")] = "casa",
    workdir: Annotated[Path | None, typer.Option("--workdir", help="Directory for the cluster's state, data and "
                                                 "logs (kept); default: a temporary directory, removed.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Directory for the dashboard PNGs (casa-sched.png and one per "
                                      "panel, as casa dashboard render writes them).")] = Path("out/demo"),
    json_out: Annotated[bool, typer.Option("--json", help="Print the results as JSON instead of the table.")] = False,
) -> None:
    """Run N epochs of the live loop on an emulated cluster and print what it did."""
    checks = [
        (1 <= functions <= 50, f"--functions must be 1..50, got {functions}"),
        (1 <= epochs <= 16, f"--epochs must be 1..16, got {epochs}"),
        (1 <= nodes <= 20, f"--nodes must be 1..20, got {nodes}"),
        (math.isfinite(clock_factor) and 5.0 <= clock_factor <= 60.0, f"--clock-factor must be 5..60, got {clock_factor:g}"),
    ]  # fmt: skip
    for ok, message in checks:
        if not ok:
            raise _fail(message)
    from casa_sched.planners import policy_names

    if policy not in policy_names():
        raise _fail(f"--policy: unknown policy {policy!r}; known: {', '.join(policy_names())}")

    from casa_sched.devcluster.cluster import DevClusterError, preflight
    from casa_sched.devcluster.controlplane import HarnessError
    from casa_sched.emulator.loop import LiveLoop, LoopConfig

    with tempfile.TemporaryDirectory(prefix="casa-demo-") as tmp:
        where = (workdir or Path(tmp)).absolute()
        if where.exists() and not where.is_dir():
            raise _fail(f"--workdir {where}: exists and is not a directory")
        try:
            where.mkdir(parents=True, exist_ok=True)
            preflight(where / "cluster", nodes)
        except DevClusterError as exc:
            raise _fail(f"--workdir {where}: {exc}" if exc.exit_code == 2 else str(exc), exc.exit_code) from None
        except OSError as exc:
            raise _fail(f"--workdir {where}: {exc.strerror or exc}") from None
        from casa_sched.accounting.render import output_names
        from casa_sched.outputs import OutputError, check_output_dir, check_output_file

        try:
            check_output_dir("--out", out)
            for name in output_names():
                check_output_file("--out", out / name)
        except (OutputError, ValueError) as exc:
            raise _fail(str(exc)) from None
        config = LoopConfig(workdir=where, nodes=nodes, functions=functions, epochs=epochs,
                            clock_factor=clock_factor, policy=policy)  # fmt: skip
        _report(_run(LiveLoop(config), json_out, HarnessError, out), config, json_out)


Run = tuple[list[Any], list[float], dict[str, Any]]  # epochs, plan seconds, the dashboard's files


def _run(loop: Any, quiet: bool, harness_error: type[Exception], out: Path) -> Run:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from casa_sched.metricsources.base import MetricsUnavailable

    def _stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _stop)
    lives: list[Any] = []
    dashboard: dict[str, Any] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} epochs"),
                  TimeElapsedColumn(), transient=True, disable=quiet) as bar:  # fmt: skip
        task = bar.add_task("starting", total=loop.config.epochs)
        loop.progress = lambda msg: bar.update(task, description=f"starting {msg}")
        try:
            loop.start()
            bar.update(task, description="epochs")
            lives = loop.run(on_epoch=lambda _e: bar.advance(task))
            plan_s = [float(r["phases_s"]["plan"]) for r in loop.autoscaler_reports()
                      if isinstance(r.get("phases_s"), dict) and "plan" in r["phases_s"]]  # fmt: skip
            bar.update(task, description="dashboard PNGs")
            paths, no_data = loop.dashboard(out)
            dashboard = {"dir": str(out), "files": [str(p) for p in paths], "no_data": no_data}
        except KeyboardInterrupt:
            raise _fail("interrupted: every process it started is stopped", 130) from None
        except (harness_error, RuntimeError, OSError, MetricsUnavailable) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise _fail(first, 1) from None
        finally:
            signal.signal(signal.SIGTERM, previous)
            loop.close()
    return lives, plan_s, dashboard


def _report(run: Run, config: Any, json_out: bool) -> None:
    import json

    from rich.console import Console

    from casa_sched.experiments.report import TABLE_UNITS, summary_table
    from casa_sched.settings import load_settings

    lives, plan_s, dashboard = run
    settings = load_settings(environ={})
    records = [live.emulated for live in lives]
    summary = _summary(records, plan_s, settings.slo.cstr)
    per_epoch = [{"epoch": live.epoch, "emulated_carbon_g": live.emulated["carbon_g"],
                  "accounted_carbon_g": live.accounted.accounting.carbon_g if live.accounted is not None else None,
                  "emulated_sl_ave": live.emulated["slo_violation_rate"], "accounted_sl_ave": live.accounted_sl_ave}
                 for live in lives]  # fmt: skip
    if json_out:
        typer.echo(json.dumps({"policy": config.policy, "summary": summary, "epochs": per_epoch, "dashboard": dashboard},
                              indent=2, allow_nan=False))  # fmt: skip
        return
    console = Console(width=80)
    console.print(f"workload: synthetic, {config.functions} functions · live loop on {config.nodes} KWOK nodes "
                  f"at clock factor {config.clock_factor:g}")
    meta = {"nodes": config.nodes, "intensity": config.intensity, "cstr": settings.slo.cstr}
    console.print(summary_table({config.policy: summary}, meta, config.epochs))
    for line in TABLE_UNITS:
        console.print(line)
    console.print("per epoch, carbon g: emulated (the simulator's models on the live pods) / accounted (Prometheus)")
    for row in per_epoch:
        accounted = row["accounted_carbon_g"]
        console.print(f"  epoch {row['epoch']}: {row['emulated_carbon_g']:.2f} / "
                      + (f"{accounted:.2f}" if accounted is not None else "n/a"))  # fmt: skip
    if dashboard:
        console.print(f"dashboard: {dashboard['files'][0]} and {len(dashboard['files']) - 1} panel PNGs in "
                      f"{dashboard['dir']}", soft_wrap=True)  # fmt: skip
        if dashboard["no_data"]:
            console.print(f"  no data: {', '.join(dashboard['no_data'])}")
