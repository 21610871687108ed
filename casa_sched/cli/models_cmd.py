"""``casa models …``: inspect the physical models and their calibration."""

from __future__ import annotations

from casa_sched.cli.entry import command_app

models_app = command_app(help="Inspect the physical models and their calibration.", no_args_is_help=True)


@models_app.command("power")
def power() -> None:
    """Show the default node's power curve P(U) against its SPECpower points, with the error at each."""
    from rich.console import Console
    from rich.table import Table

    from casa_sched.models.power import default_node_fit

    report = default_node_fit()
    curve = report.curve
    console = Console()
    a, b, c, d, e = curve.coeffs
    console.print(f"[bold]{curve.source}[/bold]")
    console.print(
        f"P(U) = {a:.6e}·U^4 + {b:.6e}·U^3 + {c:.6e}·U^2 + {d:.6e}·U + {e:.4f}  W  (U in cores, 0..{curve.cores})"
    )
    table = Table("busy cores", "load %", "SPECpower-derived W", "fitted W", "error W", "error %")
    for p in report.points:
        table.add_row(
            f"{p.cores:.1f}",
            f"{100 * p.cores / curve.cores:.0f}",
            f"{p.measured_w:.1f}",
            f"{p.fitted_w:.1f}",
            f"{p.error_w:+.1f}",
            f"{p.error_pct:+.2f}",
        )
    console.print(table)
    console.print(
        f"R² = {report.r2:.4f}   RMSE = {report.rmse_w:.2f} W   max |error| = {report.max_abs_error_w:.2f} W "
        f"({report.max_abs_error_pct:.2f} %)   increasing on [0, {curve.cores}]: {curve.is_increasing()}"
    )
