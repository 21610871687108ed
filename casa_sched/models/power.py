"""Node power as a function of busy cores: the 4th-degree polynomial of CASA eq. (2).

``P_i(U) = A·U^4 + B·U^3 + C·U^2 + D·U + E`` watts, with ``U`` the cores in use on node i
(0..cores). Everything here is pure: curves are frozen values, fitting takes arrays and returns
a new curve plus a report of its error at every point.

``node_power_w`` is eq. (2) itself: plain arithmetic (Horner's form), element-wise over arrays,
compiled as is into the simulator's kernel (numba), so the simulator, the estimator and the
extender evaluate the one polynomial.

The default node (2x AMD EPYC 7713, 128 cores) is calibrated from SPECpower figures
(docs/architecture.md "Models"): HPE DL365 Gen10 Plus with 2x EPYC 7713 measures 109 W at active idle and 468 W at
100 % load (SPEC result of March 2021). No 11-point curve exists for a 7713 system, so the shape
between those two points is taken from the 11-point SPECpower curve of an HPE DL345 Gen10 Plus
with 1x EPYC 7763 (SPEC res2021q1/power_ssj2008-20210221-01065).
*Assumptions*: (1) the shape transfers between these two Zen 3 systems; (2) SPECpower's
"target load %" is read as "share of cores busy".
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from casa_sched._typing import FloatArray
from casa_sched.models._types import Num
from casa_sched.models.tolerances import EPS_W

POLY_DEGREE = 4
MODEL_FORMAT_VERSION = 1

# SPECpower points behind the default node (see module docstring).
EPYC_7713_2S_IDLE_W = 109.0
EPYC_7713_2S_FULL_W = 468.0
EPYC_7713_2S_CORES = 128
# HPE DL345 Gen10 Plus, 1x EPYC 7763: active idle, 10 %, ..., 100 % target load, watts.
DL345_7763_CURVE_W: tuple[float, ...] = (
    58.0, 104.0, 120.0, 134.0, 150.0, 169.0, 197.0, 217.0, 236.0, 255.0, 272.0,
)  # fmt: skip


def node_power_w(a: float, b: float, c: float, d: float, e: float, busy_cores: Num) -> Num:
    """Eq. (2), unchecked: ``A·U^4 + B·U^3 + C·U^2 + D·U + E`` watts at ``U = busy_cores``.

    No clamping: callers keep ``U`` within ``[0, cores]`` (see :meth:`PowerCurve.power_w`).
    """
    return (((a * busy_cores + b) * busy_cores + c) * busy_cores + d) * busy_cores + e


class PowerModelError(ValueError):
    """A power curve or power samples that cannot be used; the message says which value and why."""


@dataclass(frozen=True)
class PowerCurve:
    """``P(U) = a4·U^4 + a3·U^3 + a2·U^2 + a1·U + a0`` watts for ``U`` busy cores in ``[0, cores]``.

    ``coeffs`` are ``(A, B, C, D, E)`` in the paper's order (highest degree first), in watts per
    core^k. Evaluation clamps ``U`` to ``[0, cores]``: a node cannot be busier than all its cores.
    """

    coeffs: tuple[float, float, float, float, float]
    cores: int
    source: str = "unspecified"

    def __post_init__(self) -> None:
        if len(self.coeffs) != POLY_DEGREE + 1:
            raise PowerModelError(f"power curve needs {POLY_DEGREE + 1} coefficients, got {len(self.coeffs)}")
        if self.cores <= 0:
            raise PowerModelError(f"cores must be > 0, got {self.cores}")
        if not all(math.isfinite(c) for c in self.coeffs):
            raise PowerModelError(f"power curve coefficients must be finite, got {self.coeffs}")

    def power_w(self, busy_cores: float) -> float:
        """Node power in watts with ``busy_cores`` cores in use (clamped to ``[0, cores]``)."""
        u = min(max(busy_cores, 0.0), float(self.cores))
        return node_power_w(*self.coeffs, u)

    def power_w_array(self, busy_cores: npt.ArrayLike) -> FloatArray:
        """Vectorised :meth:`power_w` over an array of busy-core values."""
        u = np.clip(np.asarray(busy_cores, dtype=np.float64), 0.0, float(self.cores))
        return np.asarray(node_power_w(*self.coeffs, u), dtype=np.float64)

    def marginal_power_w_per_core(self, busy_cores: float) -> float:
        """dP/dU in watts per core at ``busy_cores`` (the slope the extender scores with)."""
        u = min(max(busy_cores, 0.0), float(self.cores))
        a, b, c, d, _ = self.coeffs
        return ((4.0 * a * u + 3.0 * b) * u + 2.0 * c) * u + d

    def idle_w(self) -> float:
        """Power with no core busy, ``P(0)``."""
        return self.power_w(0.0)

    def full_w(self) -> float:
        """Power with every core busy, ``P(cores)``."""
        return self.power_w(float(self.cores))

    def is_increasing(self, samples: int = 257) -> bool:
        """True when P(U) never decreases over ``[0, cores]`` (checked on a fine grid)."""
        grid = np.linspace(0.0, float(self.cores), samples)
        return bool(np.all(np.diff(self.power_w_array(grid)) >= -EPS_W))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as published on the Node annotation ``casa.dev/power-model``."""
        a, b, c, d, e = self.coeffs
        return {
            "version": MODEL_FORMAT_VERSION,
            "degree": POLY_DEGREE,
            "unit": "W",
            "variable": "busy_cores",
            "coefficients": {"A": a, "B": b, "C": c, "D": d, "E": e},
            "cores": self.cores,
            "source": self.source,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PowerCurve:
        """Parse :meth:`to_dict` output; raises :class:`PowerModelError` naming the bad field."""
        try:
            version = int(data.get("version", MODEL_FORMAT_VERSION))
            if version != MODEL_FORMAT_VERSION:
                raise PowerModelError(f"unsupported power model version {version}")
            co = data["coefficients"]
            coeffs = (float(co["A"]), float(co["B"]), float(co["C"]), float(co["D"]), float(co["E"]))
            cores = int(data["cores"])
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, PowerModelError):
                raise
            raise PowerModelError(f"invalid power model: missing or non-numeric field {exc}") from exc
        return cls(coeffs=coeffs, cores=cores, source=str(data.get("source", "unspecified")))

    @classmethod
    def from_json(cls, text: str) -> PowerCurve:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PowerModelError(f"power model is not valid JSON: {exc.msg} at char {exc.pos}") from exc
        except RecursionError:
            raise PowerModelError("power model JSON is nested too deeply to be one") from None
        if not isinstance(data, dict):
            raise PowerModelError("power model JSON must be an object")
        return cls.from_dict(data)


@dataclass(frozen=True)
class FitPoint:
    """One measured point and the fitted curve's value there."""

    cores: float
    measured_w: float
    fitted_w: float

    @property
    def error_w(self) -> float:
        return self.fitted_w - self.measured_w

    @property
    def error_pct(self) -> float:
        return 100.0 * self.error_w / self.measured_w if self.measured_w else math.inf


@dataclass(frozen=True)
class FitReport:
    """Quality of a least-squares fit: R², RMSE, worst error, and every point's residual."""

    curve: PowerCurve
    points: tuple[FitPoint, ...] = field(default_factory=tuple)

    @property
    def rmse_w(self) -> float:
        return math.sqrt(sum(p.error_w**2 for p in self.points) / len(self.points))

    @property
    def max_abs_error_w(self) -> float:
        return max(abs(p.error_w) for p in self.points)

    @property
    def max_abs_error_pct(self) -> float:
        return max(abs(p.error_pct) for p in self.points)

    @property
    def r2(self) -> float:
        measured = np.array([p.measured_w for p in self.points])
        ss_res = sum(p.error_w**2 for p in self.points)
        ss_tot = float(np.sum((measured - measured.mean()) ** 2))
        return 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)


def fit_power_curve(
    busy_cores: Sequence[float] | npt.ArrayLike,
    power_w: Sequence[float] | npt.ArrayLike,
    cores: int,
    source: str = "fit",
) -> FitReport:
    """Least-squares 4th-degree fit of ``power_w`` against ``busy_cores`` (paper eq. 2).

    The fit runs on ``x = U / cores`` for numerical conditioning and the coefficients are then
    rescaled to the paper's per-core form. Needs at least 5 points at 5 distinct core counts.
    """
    u = np.asarray(busy_cores, dtype=np.float64).ravel()
    p = np.asarray(power_w, dtype=np.float64).ravel()
    if u.shape != p.shape:
        raise PowerModelError(f"busy_cores and power_w differ in length: {u.size} vs {p.size}")
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(p))):
        raise PowerModelError("busy_cores and power_w must be finite numbers")
    if np.any(p <= 0):
        raise PowerModelError(f"power_w must be > 0 W, got min {p.min():.3g} W")
    if np.any(u < 0) or np.any(u > cores):
        raise PowerModelError(f"busy_cores must lie in [0, {cores}], got {u.min():.3g}..{u.max():.3g}")
    if np.unique(u).size < POLY_DEGREE + 1:
        raise PowerModelError(
            f"a degree-{POLY_DEGREE} fit needs >= {POLY_DEGREE + 1} distinct core counts, got {np.unique(u).size}"
        )
    x = u / cores
    vander = np.vander(x, POLY_DEGREE + 1)  # columns x^4 .. x^0
    sol, *_ = np.linalg.lstsq(vander, p, rcond=None)
    scale = np.array([float(cores) ** k for k in range(POLY_DEGREE, -1, -1)])
    coeffs_arr = sol / scale
    curve = PowerCurve(
        coeffs=(
            float(coeffs_arr[0]),
            float(coeffs_arr[1]),
            float(coeffs_arr[2]),
            float(coeffs_arr[3]),
            float(coeffs_arr[4]),
        ),
        cores=cores,
        source=source,
    )
    fitted = curve.power_w_array(u)
    points = tuple(
        FitPoint(cores=float(ui), measured_w=float(pi), fitted_w=float(fi))
        for ui, pi, fi in zip(u, p, fitted, strict=True)
    )
    return FitReport(curve=curve, points=points)


def default_node_points() -> tuple[tuple[float, float], ...]:
    """The 11 (busy_cores, watts) points the default node is fitted to.

    ``P(l) = 109 + s(l)·(468 − 109)`` with ``s(l) = (P_7763(l) − 58) / (272 − 58)``, the DL345
    curve's normalised shape, at ``l = 0, 10, …, 100 %`` of 128 cores. E.g. at 10 %:
    ``s = (104 − 58) / 214 = 0.2150`` → ``109 + 0.2150·359 = 186.2 W`` at 12.8 cores.
    """
    idle, full = DL345_7763_CURVE_W[0], DL345_7763_CURVE_W[-1]
    out = []
    for i, w in enumerate(DL345_7763_CURVE_W):
        shape = (w - idle) / (full - idle)
        out.append(
            (EPYC_7713_2S_CORES * i / 10.0, EPYC_7713_2S_IDLE_W + shape * (EPYC_7713_2S_FULL_W - EPYC_7713_2S_IDLE_W))
        )
    return tuple(out)


def default_node_fit() -> FitReport:
    """The default node's fit against its 11 calibration points (see :func:`default_node_points`)."""
    pts = default_node_points()
    return fit_power_curve(
        [c for c, _ in pts],
        [w for _, w in pts],
        cores=EPYC_7713_2S_CORES,
        source="default: 2x EPYC 7713 (SPECpower 109 W idle / 468 W full, DL345 7763 shape)",
    )


DEFAULT_NODE_CURVE: PowerCurve = default_node_fit().curve
