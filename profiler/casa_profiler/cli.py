"""``casa-profiler``: measure a node's power curve, fit P(U), publish it on the Node.

    casa-profiler run --output model.json [--samples-csv samples.csv] [--meter powercap] [--levels 0,8,16,...]
    casa-profiler fit --input samples.csv --output model.json [--plot fit.png]
    casa-profiler publish --model model.json --node NAME   (NAME defaults to $NODE_NAME)
    casa-profiler show --node NAME

Every failure exits ≠ 0 with one line that says what is wrong and how to fix it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from casa_stress import StressError, available_cores

from casa_profiler.fit import FitRejectedError, fit, plot, read_samples
from casa_profiler.meters import MeterError, create, meter_names
from casa_profiler.profile import profile, write_samples
from casa_profiler.publish import PublishError, publish, show
from casa_sched.models.power import PowerCurve, PowerModelError
from casa_sched.settings import SettingsError, load_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Measure a node's power curve P(U), fit it (paper eq. 2) and publish it on the Node.")  # fmt: skip


def _fail(message: str) -> typer.Exit:
    typer.echo(f"casa-profiler: {message}", err=True)
    return typer.Exit(1)


@app.command("run")
def run_cmd(
    output: Annotated[Path, typer.Option(help="Where to write the fitted model JSON.")],
    samples_csv: Annotated[
        Path | None, typer.Option("--samples-csv", help="Also write the per-level samples CSV here.")
    ] = None,
    meter: Annotated[str, typer.Option(help=f"Energy meter: {', '.join(meter_names())}.")] = "powercap",
    powercap_root: Annotated[Path | None, typer.Option(help="powercap sysfs root (default from settings).")] = None,
    prometheus_url: Annotated[str, typer.Option(help="Prometheus for --meter prometheus.")] = "http://localhost:9090",
    levels: Annotated[
        str | None, typer.Option(help="Busy-core levels, comma-separated (default: 0 to all in ~10 steps).")
    ] = None,
    settle: Annotated[float | None, typer.Option(help="Seconds to let power settle at each level.")] = None,
    interval: Annotated[float | None, typer.Option(help="Seconds between energy reads.")] = None,
    samples: Annotated[int | None, typer.Option(help="Energy reads per level.")] = None,
    backend: Annotated[str, typer.Option(help="Stress backend: auto | stress-ng | builtin.")] = "auto",
    config: Annotated[Path | None, typer.Option(help="casa YAML settings (section profiler:).")] = None,
) -> None:
    """Stress 0..all cores, sample energy at each level, fit P(U), write the model (and samples)."""
    try:
        prof = load_settings(config).profiler
    except SettingsError as exc:
        raise _fail(str(exc)) from None
    cores = available_cores()
    try:
        options: dict[str, object] = {}
        if meter == "powercap":
            options["root"] = powercap_root or prof.powercap_root
        elif meter == "prometheus":
            options["url"] = prometheus_url
        m = create(meter, **options)
        lv = [int(x) for x in levels.split(",")] if levels else sorted({round(len(cores) * i / 10) for i in range(11)})
        if any(not 0 <= x <= len(cores) for x in lv):
            raise _fail(f"--levels must lie in 0..{len(cores)} (the cores available here)")
        rows = profile(
            m, lv, cores, prof.settle_s if settle is None else settle, prof.samples_per_level if samples is None else samples,
            prof.sample_interval_s if interval is None else interval, lambda msg: typer.echo(f"warning: {msg}", err=True), backend,
        )  # fmt: skip
    except (MeterError, StressError) as exc:
        raise _fail(str(exc)) from None
    except ValueError as exc:
        raise _fail(f"bad --levels: {exc}") from None
    if samples_csv is not None:
        write_samples(rows, samples_csv)
    try:
        result = fit(np.array([r.cores for r in rows], dtype=float), np.array([r.power_w for r in rows]), len(cores),
                     prof.max_fit_error_pct, source=f"casa-profiler run ({m.name})")  # fmt: skip
    except FitRejectedError as exc:
        raise _fail(str(exc)) from None
    output.write_text(result.report.curve.to_json() + "\n")
    typer.echo(f"wrote {output}: R² {result.report.r2:.4f}, max error {result.report.max_abs_error_pct:.1f} %")


@app.command("fit")
def fit_cmd(
    input_csv: Annotated[Path, typer.Option("--input", help="CSV with cores,power_w (extra columns allowed).")],
    output: Annotated[Path, typer.Option(help="Where to write the model JSON.")],
    cores: Annotated[int | None, typer.Option(help="Cores of the node (default: the largest in the CSV).")] = None,
    max_error_pct: Annotated[float, typer.Option(help="Refuse a fit whose worst point is off by more, %.")] = 10.0,
    plot_png: Annotated[Path | None, typer.Option("--plot", help="Also draw points and curve to this PNG.")] = None,
) -> None:
    """Fit the 4th-degree P(U) to measured points; refuse a bad or non-increasing fit."""
    try:
        x, y = read_samples(input_csv)
        n = cores or int(np.max(x))
        result = fit(x, y, n, max_error_pct, source=str(input_csv))
    except FitRejectedError as exc:
        raise _fail(str(exc)) from None
    output.write_text(result.report.curve.to_json() + "\n")
    if plot_png is not None:
        plot(result, plot_png)
    rep = result.report
    typer.echo(f"R² {rep.r2:.4f}  RMSE {rep.rmse_w:.2f} W  max error {rep.max_abs_error_w:.2f} W ({rep.max_abs_error_pct:.2f} %)  "
               f"leave-one-out RMSE {result.cv_rmse_w:.2f} W")  # fmt: skip
    for p in rep.points:
        typer.echo(
            f"  {p.cores:7.1f} cores  measured {p.measured_w:8.1f} W  fitted {p.fitted_w:8.1f} W  error {p.error_pct:+6.2f} %"
        )


@app.command("publish")
def publish_cmd(
    model: Annotated[Path, typer.Option(help="Model JSON written by run or fit.")],
    node: Annotated[str | None, typer.Option(help="Node name (default: $NODE_NAME from the downward API).")] = None,
    kubeconfig: Annotated[
        Path | None, typer.Option(help="kubeconfig (default: in-cluster, else ~/.kube/config).")
    ] = None,
) -> None:
    """Write the model to the Node annotation casa.dev/power-model."""
    name = node or os.environ.get("NODE_NAME")
    if not name:
        raise _fail("no node name: pass --node or set NODE_NAME (downward API spec.nodeName)")
    try:
        curve = PowerCurve.from_json(model.read_text())
        publish(curve, name, kubeconfig)
    except OSError as exc:
        raise _fail(f"cannot read {model}: {exc.strerror}") from None
    except (PowerModelError, PublishError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"published {model} on node {name}")


@app.command("show")
def show_cmd(
    node: Annotated[str | None, typer.Option(help="Node name (default: $NODE_NAME).")] = None,
    kubeconfig: Annotated[Path | None, typer.Option(help="kubeconfig.")] = None,
) -> None:
    """Print a node's published power model."""
    name = node or os.environ.get("NODE_NAME")
    if not name:
        raise _fail("no node name: pass --node or set NODE_NAME")
    try:
        curve = show(name, kubeconfig)
    except (PowerModelError, PublishError) as exc:
        raise _fail(str(exc)) from None
    if curve is None:
        raise _fail(f"node {name} has no casa.dev/power-model annotation yet")
    typer.echo(json.dumps(curve.to_dict(), indent=2))


def main() -> None:
    app()
