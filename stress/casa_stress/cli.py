"""``casa-stress``: load N cores at a target utilisation for a duration."""

from __future__ import annotations

from typing import Annotated

import typer

from casa_stress.burner import Backend, Stress, StressError, available_cores

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def stress(
    cores: Annotated[int, typer.Option(min=0, help="Number of cores to load (the first N this process may use).")] = 1,
    util: Annotated[float, typer.Option(min=0.0, max=1.0, help="Target utilisation of each loaded core, 0..1.")] = 1.0,
    duration: Annotated[float, typer.Option(min=0.1, help="Seconds to run.")] = 10.0,
    backend: Annotated[str, typer.Option(help="auto (stress-ng when installed) | stress-ng | builtin.")] = "auto",
) -> None:
    """Load cores at a target utilisation; Ctrl-C or SIGTERM stops every worker."""
    allowed = available_cores()
    if cores > len(allowed):
        typer.echo(f"casa-stress: asked for {cores} cores but only {len(allowed)} are available", err=True)
        raise typer.Exit(2)
    if backend not in ("auto", "stress-ng", "builtin"):
        typer.echo(f"casa-stress: --backend must be auto, stress-ng or builtin, got {backend!r}", err=True)
        raise typer.Exit(2)
    try:
        run = Stress(allowed[:cores], util, duration, backend)  # type: ignore[arg-type]
        run.start()
    except StressError as exc:
        typer.echo(f"casa-stress: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        run.wait()
    except KeyboardInterrupt:
        run.stop()
        raise typer.Exit(130) from None


def main() -> None:
    app()


__all__ = ["Backend", "main"]
