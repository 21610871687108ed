"""``casa-stress``: load N cores at a target utilisation for a duration.

    casa-stress --cores 2 --util 0.5 --duration 10 [--backend auto|stress-ng|builtin] [--period 0.1]

Prints the achieved utilisation of the loaded cores when it ends. Ctrl-C or SIGTERM stops every
worker (exit 128 + signal number); bad flags exit 2 with one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer

from casa_sched.cli.entry import command_app, run
from casa_stress.burner import BACKENDS, MAX_DURATION_S, PERIOD_RANGE_S, PERIOD_S, Stress, StressError, available_cores

app = command_app(add_completion=False)


@app.command()
def stress(
    cores: Annotated[int, typer.Option(help="Number of cores to load (the first N this process may use).")] = 1,
    util: Annotated[float, typer.Option(help="Target utilisation of each loaded core, 0..1.")] = 1.0,
    duration: Annotated[float, typer.Option(help="Seconds to run.")] = 10.0,
    backend: Annotated[str, typer.Option(help="auto (stress-ng when installed) | stress-ng | builtin.")] = "auto",
    period: Annotated[float, typer.Option(help="Duty-cycle period of the builtin burner, s.")] = PERIOD_S,
) -> None:
    """Load cores at a target utilisation; Ctrl-C or SIGTERM stops every worker."""
    allowed = available_cores()
    problem = None
    if not 0 <= cores <= len(allowed):
        problem = f"--cores must be in 0..{len(allowed)} (the cores available to this process), got {cores}"
    elif not 0.0 <= util <= 1.0:  # also refuses NaN: every comparison with it is false
        problem = f"--util must be in [0, 1] (a share of each core), got {util}"
    elif not 0 < duration <= MAX_DURATION_S:
        problem = f"--duration must be a number of seconds in (0, {MAX_DURATION_S:g}], got {duration}"
    elif backend not in BACKENDS:
        problem = f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}"
    elif not PERIOD_RANGE_S[0] <= period <= PERIOD_RANGE_S[1]:
        problem = f"--period must be a number of seconds in [{PERIOD_RANGE_S[0]:g}, {PERIOD_RANGE_S[1]:g}], got {period}"
    if problem:
        typer.echo(f"casa-stress: {problem}", err=True)
        raise typer.Exit(2)
    try:
        run = Stress(allowed[:cores], util, duration, backend, period)  # type: ignore[arg-type]
        run.start()
    except StressError as exc:
        typer.echo(f"casa-stress: {exc}", err=True)
        raise typer.Exit(2) from None
    signum = run.wait()
    rep = run.report()
    engine = "stress-ng" if run.uses_stress_ng else "builtin"
    typer.echo(
        f"casa-stress: {engine}, {rep.loaded_cores} core(s) for {rep.wall_s:.1f} s: target {rep.target_pct:.0f} %, "
        f"achieved {rep.achieved_pct:.1f} %" + (f" (stopped by signal {signum})" if signum else "")
    )
    if signum:
        raise typer.Exit(128 + signum)


def main(argv: Sequence[str] | None = None) -> None:
    """The ``casa-stress`` console script (usage errors: one line on stderr, exit 2)."""
    run(app, "casa-stress", argv)
