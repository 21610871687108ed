"""Fitting P(U) to profiler samples (paper eq. 2) and judging the fit.

The 4th-degree least-squares fit is :func:`casa_sched.models.power.fit_power_curve`; this module
adds leave-one-out cross-validation (scikit-learn: PolynomialFeatures(4) + LinearRegression),
the refusal rules, and the plot.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from casa_sched.models.power import FitReport, PowerCurve, PowerModelError, fit_power_curve

MAX_DIP_W = 1.0  # largest decrease of the fitted curve tolerated inside the measured range, W
#: Largest node power accepted from a samples CSV, W: above any single server (an 8-GPU node draws
#: ~10 kW); a larger value is a unit mistake or a corrupted file, not a measurement.
MAX_NODE_POWER_W = 20_000.0
#: Largest busy-core count accepted from a samples CSV (and by ``--cores``).
MAX_CORES = 4096


class FitRejectedError(ValueError):
    """A fit that must not be published; the message says why."""


@dataclass(frozen=True)
class FitResult:
    """The fit, its per-point residuals, and its leave-one-out cross-validated error (None
    with five points or fewer: every point is needed to pin the five coefficients)."""

    report: FitReport
    cv_rmse_w: float | None
    cv_max_abs_error_w: float | None

    def model_dict(self) -> dict[str, Any]:
        """The model JSON: :meth:`PowerCurve.to_dict` plus a ``fit`` summary (ignored by readers)."""
        rep = self.report
        return {
            **rep.curve.to_dict(),
            "fit": {
                "r2": round(rep.r2, 6),
                "rmse_w": round(rep.rmse_w, 3),
                "max_abs_error_w": round(rep.max_abs_error_w, 3),
                "max_abs_error_pct": round(rep.max_abs_error_pct, 3),
                "loo_rmse_w": None if self.cv_rmse_w is None else round(self.cv_rmse_w, 3),
                "points": [[p.cores, round(p.measured_w, 3), round(p.fitted_w, 3)] for p in rep.points],
            },
        }

    def summary(self) -> str:
        rep = self.report
        loo = "n/a" if self.cv_rmse_w is None else f"{self.cv_rmse_w:.2f} W"
        return (
            f"R² {rep.r2:.4f}, RMSE {rep.rmse_w:.2f} W, max error {rep.max_abs_error_w:.2f} W "
            f"({rep.max_abs_error_pct:.2f} %), leave-one-out RMSE {loo}"
        )


def read_samples(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``cores`` and ``power_w`` columns (others allowed); clear errors for anything else."""
    from casa_sched.outputs import InputError, read_text

    try:
        read_text("--input", path)  # missing, a directory, binary, not UTF-8
    except InputError as exc:
        raise FitRejectedError(str(exc)) from None
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)  # raw cells, quoted as written in errors
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise FitRejectedError(f"{path}: not a readable CSV ({str(exc).strip()})") from None
    missing = [c for c in ("cores", "power_w") if c not in df.columns]
    if missing:
        raise FitRejectedError(f"{path}: missing column(s) {', '.join(missing)} (need cores,power_w)")
    if df.empty:
        raise FitRejectedError(f"{path}: no data rows below the header (need one row per measured level)")
    out = []
    for col, high in (("cores", float(MAX_CORES)), ("power_w", MAX_NODE_POWER_W)):
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values) | (values < 0) | (values > high)
        if bad.any():
            line = int(np.flatnonzero(bad)[0]) + 2
            raise FitRejectedError(
                f"{path}:{line}: column {col!r}: expected a number in [0, {high:g}], got {df[col].iloc[line - 2]!r}"
            )
        out.append(values)
    return out[0], out[1]


def loo_errors_w(cores: np.ndarray, power_w: np.ndarray, n_cores: int) -> np.ndarray:
    """Leave-one-out prediction errors of the quartic fit, watts."""
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import LeaveOneOut
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures

    x = (cores / n_cores).reshape(-1, 1)
    errs = []
    for train, test in LeaveOneOut().split(x):
        model = make_pipeline(PolynomialFeatures(4), LinearRegression())
        model.fit(x[train], power_w[train])
        errs.append(float(model.predict(x[test])[0] - power_w[test][0]))
    return np.array(errs)


def max_dip_w(curve: PowerCurve, lo: float, hi: float) -> float:
    """Largest fall of the curve below its running maximum over ``[lo, hi]`` busy cores, W (pure).

    Tolerated up to :data:`MAX_DIP_W`: a quartic through a real, slightly wavy curve dips a little
    (the R6515's SPECpower curve fits with a dip well under a watt)."""
    values = curve.power_w_array(np.linspace(lo, hi, 400))
    return float(np.max(np.maximum.accumulate(values) - values))


def fit(cores: np.ndarray, power_w: np.ndarray, n_cores: int, max_error_pct: float, source: str) -> FitResult:
    """Fit P(U) and judge it: refused (:class:`FitRejectedError`) when its worst point is off by
    more than ``max_error_pct`` or the curve decreases inside the measured range."""
    try:
        report = fit_power_curve(cores, power_w, n_cores, source=source)
    except PowerModelError as exc:
        raise FitRejectedError(str(exc)) from exc
    if report.max_abs_error_pct > max_error_pct:
        raise FitRejectedError(
            f"fit error {report.max_abs_error_pct:.1f} % at the worst point exceeds {max_error_pct:g} %: "
            "re-profile with more samples per level or check for background load"
        )
    lo, hi = float(np.min(cores)), float(np.max(cores))
    drop_w = max_dip_w(report.curve, lo, hi)
    if drop_w > MAX_DIP_W:
        raise FitRejectedError(
            f"fitted curve decreases by {drop_w:.1f} W between {lo:g} and {hi:g} cores: the samples are too noisy to publish"
        )
    if cores.size <= 5:  # leave-one-out needs a spare point beyond the quartic's five coefficients
        return FitResult(report, None, None)
    cv = loo_errors_w(cores, power_w, n_cores)
    return FitResult(report, float(np.sqrt(np.mean(cv**2))), float(np.max(np.abs(cv))))


def plot_formats() -> tuple[str, ...]:
    """File suffixes :func:`plot` can write (matplotlib's formats), e.g. ``.png``, ``.svg``, ``.pdf``."""
    from matplotlib.backend_bases import FigureCanvasBase

    return tuple(f".{ext}" for ext in FigureCanvasBase.get_supported_filetypes())


def plot(result: FitResult, path: Path, fmt: str | None = None) -> None:
    """Points and curve to ``path``, in format ``fmt`` (default: from the suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = result.report.curve
    xs = np.linspace(0, curve.cores, 200)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(xs, curve.power_w_array(xs), label="P(U) 4th-degree fit")
    ax.scatter(
        [p.cores for p in result.report.points],
        [p.measured_w for p in result.report.points],
        color="k",
        s=14,
        label="measured",
    )
    ax.set_xlabel("busy cores U")
    ax.set_ylabel("power (W)")
    ax.set_title(f"R² = {result.report.r2:.4f}, max error {result.report.max_abs_error_pct:.1f} %")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120, format=fmt)
    plt.close(fig)
