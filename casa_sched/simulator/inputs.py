"""Frozen inputs of the request-level simulator: hourly signals and the requests of an epoch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from casa_sched.contract.cluster import SimulationError
from casa_sched.models.accounting import WaterFactors

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class HourlySignals:
    """CI_h, EP_h and E_t for simulation hours 0, 1, … (hour h = ``[3600·h, 3600·(h+1))`` s)."""

    ci_g_per_kwh: FloatArray
    price_usd_per_kwh: FloatArray
    cooling_factor: FloatArray
    water: WaterFactors = field(default_factory=lambda: WaterFactors(4.5, 0.5, 0.0015))

    def __post_init__(self) -> None:
        shapes = {self.ci_g_per_kwh.shape, self.price_usd_per_kwh.shape, self.cooling_factor.shape}
        if len(shapes) != 1 or self.ci_g_per_kwh.ndim != 1:
            raise SimulationError(f"hourly signals must be 1-D arrays of one length, got shapes {shapes}")
        for name in ("ci_g_per_kwh", "price_usd_per_kwh", "cooling_factor"):
            arr = getattr(self, name)
            if not np.all(np.isfinite(arr)):
                raise SimulationError(f"{name} must be finite in every hour")
            if name != "price_usd_per_kwh" and np.any(arr < 0):  # wholesale prices can be negative
                raise SimulationError(f"{name} must be >= 0 in every hour")

    @property
    def hours(self) -> int:
        return int(self.ci_g_per_kwh.size)

    @classmethod
    def constant(
        cls,
        hours: int,
        ci_g_per_kwh: float,
        price_usd_per_kwh: float,
        cooling_factor: float,
        water: WaterFactors | None = None,
    ) -> HourlySignals:
        return cls(
            np.full(hours, ci_g_per_kwh),
            np.full(hours, price_usd_per_kwh),
            np.full(hours, cooling_factor),
            water or WaterFactors(0.0, 0.0, 0.0),
        )


@dataclass(frozen=True)
class EpochRequests:
    """The requests of one epoch, grouped by function.

    ``arrivals_s[i]`` are function i's arrival times in seconds since the simulation start
    (sorted); ``t_ave_s[i]`` its average execution time.
    """

    epoch: int
    start_s: float
    function_ids: tuple[str, ...]
    t_ave_s: FloatArray
    arrivals_s: tuple[FloatArray, ...]

    def __post_init__(self) -> None:
        if not (len(self.function_ids) == self.t_ave_s.size == len(self.arrivals_s)):
            raise SimulationError("function_ids, t_ave_s and arrivals_s must have one entry per function")
        if np.any(self.t_ave_s <= 0):
            raise SimulationError("every T_ave must be > 0 s")

    @property
    def total(self) -> int:
        return int(sum(a.size for a in self.arrivals_s))

    def counts(self) -> IntArray:
        return np.array([a.size for a in self.arrivals_s], dtype=np.int64)

    @classmethod
    def build(
        cls,
        epoch: int,
        start_s: float,
        function_ids: Sequence[str],
        t_ave_s: Sequence[float] | FloatArray,
        arrivals_s: Sequence[Sequence[float] | FloatArray],
    ) -> EpochRequests:
        return cls(
            epoch=epoch,
            start_s=float(start_s),
            function_ids=tuple(function_ids),
            t_ave_s=np.asarray(t_ave_s, dtype=np.float64),
            arrivals_s=tuple(np.sort(np.asarray(a, dtype=np.float64)) for a in arrivals_s),
        )
