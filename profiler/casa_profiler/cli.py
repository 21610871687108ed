"""``casa-profiler``: measure a node's power curve, fit P(U) (paper eq. 2), publish it on the Node.

    casa-profiler run --output model.json [--samples-csv samples.csv] [--plot fit.png] [--meter powercap]
                      [--levels 0,12.8,...] [--settle 10] [--interval 2] [--samples 10] [--backend auto]
    casa-profiler fit --input samples.csv --output model.json [--plot fit.png] [--max-error-pct 10]
    casa-profiler publish --model model.json --node NAME   (NAME defaults to $NODE_NAME, the downward API)
    casa-profiler show --node NAME

Every failure is one line on stderr that says what is wrong and how to fix it: exit 2 for a bad
flag, input file, output path or setting (all checked before a sweep starts), 1 for what fails at
run time (the meter, the stress, a refused fit, the cluster).
"""

from __future__ import annotations

import json
import math
import signal
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import numpy as np
import typer
from casa_stress import BACKENDS, StressError, available_cores

from casa_profiler.fit import MAX_CORES, FitRejectedError, FitResult, fit, plot, plot_formats, read_samples
from casa_profiler.meters import MeterError, create, meter_names
from casa_profiler.meters.ipmi import DEFAULT_COMMAND
from casa_profiler.meters.powercap import MAX_PLAUSIBLE_POWER_W
from casa_profiler.meters.prometheus import DEFAULT_COUNTER
from casa_profiler.profile import LevelSample, default_levels, parse_levels, profile, write_samples
from casa_profiler.publish import KubeconfigError, PublishError, publish, show
from casa_sched.cli.entry import command_app, run
from casa_sched.models.power import PowerModelError
from casa_sched.outputs import (
    InputError,
    OutputError,
    OutputSet,
    check_output_file,
    finite,
    http_url,
    input_file,
    json_text,
    read_text,
)
from casa_sched.settings import SettingsError, load_settings

app = command_app(add_completion=False, no_args_is_help=True,
                  help="Measure a node's power curve P(U), fit it (paper eq. 2) and publish it on the Node.")  # fmt: skip


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"casa-profiler: {message}", err=True)
    return typer.Exit(code)


def _usage(message: str) -> typer.Exit:
    """A flag out of range or of the wrong kind: exit 2 (usage)."""
    return _fail(message, 2)


def _check_outputs(output: Path, plot_png: Path | None, *extra: tuple[str, Path]) -> str | None:
    """Every output path accepts a file and names a file of its own, checked before any work; the
    plot's matplotlib format."""
    check_output_file("--output", output)
    named = {"--output": output, **dict(extra)}
    for flag, path in extra:
        check_output_file(flag, path)
    if plot_png is not None:
        check_output_file("--plot", plot_png, plot_formats())
        named["--plot"] = plot_png
    seen: dict[Path, str] = {}
    for flag, path in named.items():
        other = seen.setdefault(path.absolute().resolve(), flag)
        if other != flag:
            raise InputError(f"{flag} {path}: the same file as {other}; each output needs its own path")
    return None if plot_png is None else plot_png.suffix.lower().lstrip(".")


def _write_model(result: FitResult, output: Path, plot_png: Path | None, fmt: str | None) -> None:
    """The model JSON and its plot, as one set: both replace their previous versions or neither."""
    try:
        with OutputSet() as out:
            out.write_text(output, json_text(result.model_dict(), indent=2, sort_keys=True))
            if plot_png is not None:
                plot(result, out.temp_path(plot_png), fmt)
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot write {output}{' and ' + str(plot_png) if plot_png else ''}: {exc}") from None


def _meter_options(meter: str, **given: Any) -> dict[str, Any]:
    wanted = {
        "powercap": ("root", "include_dram", "max_power_w"),
        "prometheus": ("url", "counters", "window_s"),
        "ipmi": ("command",),
        "pyrapl": (),
    }.get(meter, ())
    return {k: v for k, v in given.items() if k in wanted}


@app.command("run")
def run_cmd(
    output: Annotated[Path, typer.Option(help="Where to write the fitted model JSON.")],
    samples_csv: Annotated[
        Path | None, typer.Option("--samples-csv", help="Per-level samples CSV (default: <output>.samples.csv).")
    ] = None,
    plot_png: Annotated[Path | None, typer.Option("--plot", help="Also draw points and curve to this PNG.")] = None,
    meter: Annotated[str, typer.Option(help=f"Energy meter: {', '.join(meter_names())}.")] = "powercap",
    powercap_root: Annotated[Path | None, typer.Option(help="powercap sysfs root (default from settings).")] = None,
    dram: Annotated[bool, typer.Option(help="powercap: add the DRAM zones to the packages.")] = True,
    max_power_w: Annotated[
        float, typer.Option(help="powercap: plausible maximum power per zone, W (bounds the read interval).")
    ] = MAX_PLAUSIBLE_POWER_W,
    prometheus_url: Annotated[str, typer.Option(help="prometheus: server URL.")] = "http://localhost:9090",
    prometheus_counter: Annotated[
        list[str] | None,
        typer.Option(
            help=f"prometheus: joules counter selector for this node, repeatable, summed (default "
            f"{DEFAULT_COUNTER}; Kepler: kepler_node_cpu_joules_total)."
        ),
    ] = None,
    ipmi_command: Annotated[str, typer.Option(help="ipmi: the command printing the DCMI reading.")] = " ".join(
        DEFAULT_COMMAND
    ),
    levels: Annotated[
        str | None,
        typer.Option(help="Busy-core levels, comma-separated, fractions allowed (default: 0..all in --steps)."),
    ] = None,
    steps: Annotated[int, typer.Option(help="Default levels: 0 to all cores in this many equal steps.")] = 10,
    settle: Annotated[float | None, typer.Option(help="Seconds to let power settle at each level.")] = None,
    interval: Annotated[float | None, typer.Option(help="Seconds between energy reads.")] = None,
    samples: Annotated[int | None, typer.Option(help="Energy reads per level.")] = None,
    backend: Annotated[str, typer.Option(help="Stress backend: auto | stress-ng | builtin.")] = "auto",
    max_error_pct: Annotated[
        float | None, typer.Option(help="Refuse a fit whose worst point is off by more, % (default from settings).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="casa YAML settings (section profiler:).")] = None,
) -> None:
    """Stress 0..all cores, sample power at each level, fit P(U), write the model and the samples."""
    try:
        prof = load_settings(config).profiler
    except SettingsError as exc:
        raise _usage(str(exc)) from None
    settle_s = prof.settle_s if settle is None else settle
    interval_s = prof.sample_interval_s if interval is None else interval
    n_samples = prof.samples_per_level if samples is None else samples
    max_err = prof.max_fit_error_pct if max_error_pct is None else max_error_pct
    if not (math.isfinite(settle_s) and math.isfinite(interval_s)) or settle_s < 0 or interval_s <= 0 \
            or n_samples < 2 or steps < 1:  # fmt: skip
        raise _usage(f"need --settle ≥ 0 s, --interval > 0 s, --samples ≥ 2 and --steps ≥ 1 "
                     f"(got {settle_s:g} s, {interval_s:g} s, {n_samples}, {steps})")  # fmt: skip
    if backend not in BACKENDS:
        raise _usage(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if meter not in meter_names():
        raise _usage(f"unknown meter {meter!r}; known: {', '.join(meter_names())}")
    cores = available_cores()
    try:
        finite("--settle", settle_s, low=0, high=3600)
        finite("--interval", interval_s, low=0, high=3600, low_open=True)
        finite("--max-power-w", max_power_w, low=0, high=1e6, low_open=True)
        finite("--max-error-pct", max_err, low=0, high=100, low_open=True)
        if not 2 <= n_samples <= 100_000 or not 1 <= steps <= 10_000:
            raise InputError(f"need --samples in 2..100000 and --steps in 1..10000, got {n_samples} and {steps}")
        lv = parse_levels(levels, len(cores)) if levels is not None else default_levels(len(cores), steps)
        if powercap_root is not None and not powercap_root.is_dir():
            raise InputError(f"--powercap-root {powercap_root}: not a directory")
        if meter == "prometheus" and not http_url(prometheus_url):
            raise InputError(f"--prometheus-url must be an http(s) URL such as http://127.0.0.1:9090, "
                             f"got {prometheus_url!r}")  # fmt: skip
    except ValueError as exc:
        raise _usage(str(exc)) from None
    try:  # before the sweep, which takes minutes
        check_output_file("--output", output)  # first: the default samples CSV is named after it
        csv_path = samples_csv or output.with_name(output.stem + ".samples.csv")
        plot_fmt = _check_outputs(output, plot_png, ("--samples-csv", csv_path))
    except (InputError, OutputError) as exc:
        raise _usage(str(exc)) from None

    def progress(row: LevelSample) -> None:
        typer.echo(f"  {row.cores:7.2f} cores  {row.power_w:8.2f} W ± {row.power_std_w:5.2f}  "
                   f"busy {row.achieved_util_pct:5.1f} % (target {row.target_util_pct:5.1f} %)", err=True)  # fmt: skip

    def terminated(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # unwinds through the stress's context manager, which stops every worker

    signal.signal(signal.SIGTERM, terminated)  # pod deletion: stop the stress cleanly, not by dying
    try:
        options = _meter_options(
            meter, root=powercap_root or prof.powercap_root, include_dram=dram, max_power_w=max_power_w,
            url=prometheus_url, counters=prometheus_counter or [DEFAULT_COUNTER], window_s=interval_s, command=ipmi_command,
        )  # fmt: skip
        m = create(meter, **options)
        typer.echo(f"profiling {len(cores)} cores at {len(lv)} levels with meter {meter}", err=True)
        rows = profile(m, lv, cores, settle_s, n_samples, interval_s,
                       lambda msg: typer.echo(f"warning: {msg}", err=True), backend, progress)  # fmt: skip
    except (MeterError, StressError) as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        typer.echo("casa-profiler: interrupted: the stress is stopped and nothing was written", err=True)
        raise typer.Exit(130) from None
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with OutputSet() as out:  # kept even when the fit is refused: the evidence of why
            write_samples(rows, out.temp_path(csv_path))
    except OSError as exc:
        raise _fail(f"cannot write {csv_path}: {exc}") from None
    try:
        result = fit(np.array([r.cores for r in rows]), np.array([r.power_w for r in rows]), len(cores), max_err,
                     source=f"casa-profiler run ({m.name}, {len(cores)} cores)")  # fmt: skip
    except FitRejectedError as exc:
        raise _fail(f"{exc} (samples kept in {csv_path})") from None
    _write_model(result, output, plot_png, plot_fmt)
    typer.echo(f"wrote {output} and {csv_path}: {result.summary()}")


@app.command("fit")
def fit_cmd(
    input_csv: Annotated[Path, typer.Option("--input", help="CSV with cores,power_w (extra columns allowed).")],
    output: Annotated[Path, typer.Option(help="Where to write the model JSON.")],
    cores: Annotated[int | None, typer.Option(help="Cores of the node (default: the largest in the CSV).")] = None,
    max_error_pct: Annotated[
        float | None, typer.Option(help="Refuse a fit whose worst point is off by more, % (default from settings).")
    ] = None,
    plot_png: Annotated[Path | None, typer.Option("--plot", help="Also draw points and curve to this PNG.")] = None,
    config: Annotated[Path | None, typer.Option(help="casa YAML settings (section profiler:).")] = None,
) -> None:
    """Fit the 4th-degree P(U) to measured points; refuse a bad or non-increasing fit."""
    try:
        max_err = load_settings(config).profiler.max_fit_error_pct if max_error_pct is None else max_error_pct
    except SettingsError as exc:
        raise _usage(str(exc)) from None
    try:
        finite("--max-error-pct", max_err, low=0, high=100, low_open=True)
        if cores is not None and not 1 <= cores <= MAX_CORES:
            raise InputError(f"--cores must be in 1..{MAX_CORES} (the node's cores), got {cores}")
        input_file("--input", input_csv)  # missing, a directory, a FIFO: a bad flag, before anything
        plot_fmt = _check_outputs(output, plot_png)
    except (InputError, OutputError) as exc:
        raise _usage(str(exc)) from None
    try:
        x, y = read_samples(input_csv)
        n = cores if cores is not None else max(1, int(np.ceil(np.max(x))))
        result = fit(x, y, n, max_err, source=str(input_csv))
    except FitRejectedError as exc:
        raise _fail(str(exc)) from None
    _write_model(result, output, plot_png, plot_fmt)
    typer.echo(result.summary())
    for p in result.report.points:
        typer.echo(
            f"  {p.cores:7.1f} cores  measured {p.measured_w:8.1f} W  fitted {p.fitted_w:8.1f} W  "
            f"residual {p.error_w:+7.2f} W ({p.error_pct:+6.2f} %)"
        )


@app.command("publish")
def publish_cmd(
    model: Annotated[Path, typer.Option(help="Model JSON written by run or fit.")],
    node: Annotated[
        str | None,
        typer.Option(envvar="NODE_NAME", help="Node name; unset: $NODE_NAME (the downward API's spec.nodeName)."),
    ] = None,
    kubeconfig: Annotated[
        Path | None, typer.Option(help="kubeconfig (default: the in-cluster service account).")
    ] = None,
) -> None:
    """Write the model to the Node annotation casa.dev/power-model (a merge patch)."""
    name = node
    if not name:
        raise _usage("no node name: pass --node or set NODE_NAME (downward API fieldRef spec.nodeName)")
    try:
        text = read_text("--model", model)
        if kubeconfig is not None:
            input_file("--kubeconfig", kubeconfig)
    except InputError as exc:
        raise _usage(str(exc)) from None
    try:
        publish(text, name, kubeconfig)
    except PowerModelError as exc:
        raise _usage(f"--model {model}: {exc}") from None
    except PublishError as exc:
        raise _fail(str(exc), 2 if isinstance(exc, KubeconfigError) else 1) from None
    typer.echo(f"published {model} on node {name}")


@app.command("show")
def show_cmd(
    node: Annotated[str | None, typer.Option(envvar="NODE_NAME", help="Node name; unset: $NODE_NAME.")] = None,
    kubeconfig: Annotated[Path | None, typer.Option(help="kubeconfig.")] = None,
) -> None:
    """Print a node's published power model."""
    name = node
    if not name:
        raise _usage("no node name: pass --node or set NODE_NAME")
    try:
        if kubeconfig is not None:
            input_file("--kubeconfig", kubeconfig)
    except InputError as exc:
        raise _usage(str(exc)) from None
    try:
        data = show(name, kubeconfig)
    except (PowerModelError, PublishError) as exc:
        raise _fail(str(exc), 2 if isinstance(exc, KubeconfigError) else 1) from None
    if data is None:
        raise _fail(f"node {name} has no casa.dev/power-model annotation yet")
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


def main(argv: Sequence[str] | None = None) -> None:
    """The ``casa-profiler`` console script (usage errors: one line on stderr, exit 2)."""
    run(app, "casa-profiler", argv)
