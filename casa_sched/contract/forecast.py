"""What a planner sees of the next epoch: the forecast workload and the epoch's signals.

Part of the planner contract: the experiment runner builds them from a trace, the autoscaler
will build them from Prometheus, and the estimator and every planner consume them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from casa_sched._typing import FloatArray
from casa_sched.contract.cluster import SimulationError

MINUTE_S = 60.0  # the resolution of forecasts and epoch signals, s


@dataclass(frozen=True)
class Forecast:
    """Requests expected per function per minute of the epoch, with T_ave and memory.

    ``counts[f, m]`` requests of function ``f`` in minute ``m`` (paper: F_e and R_e, refined to
    minutes because the trace is bursty within an epoch). ``t_ave_s`` and ``memory_mb`` per
    function.
    """

    epoch: int
    start_s: float
    function_ids: tuple[str, ...]
    counts: FloatArray
    t_ave_s: FloatArray
    memory_mb: FloatArray
    minute_s: float = MINUTE_S
    start: datetime | None = None  # the epoch's wall-clock start when planning live; None in simulation

    def __post_init__(self) -> None:
        f = len(self.function_ids)
        if self.counts.ndim != 2 or self.counts.shape[0] != f:
            raise SimulationError(f"counts must be [functions={f} × minutes], got {self.counts.shape}")
        if self.t_ave_s.shape != (f,) or self.memory_mb.shape != (f,):
            raise SimulationError("t_ave_s and memory_mb need one value per function")
        if np.any(self.counts < 0) or np.any(self.t_ave_s <= 0):
            raise SimulationError("counts must be >= 0 and T_ave > 0 s")
        if self.start is not None and self.start.tzinfo is None:
            raise SimulationError("a forecast's start must be timezone-aware")

    @property
    def minutes(self) -> int:
        return int(self.counts.shape[1])

    @property
    def totals(self) -> FloatArray:
        return np.asarray(self.counts.sum(axis=1), dtype=np.float64)

    def active(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.totals > 0)


@dataclass(frozen=True)
class EpochSignals:
    """Signals for each minute of the epoch: CI (g/kWh), price ($/kWh), cooling factor E_t."""

    ci_g_per_kwh: FloatArray
    price_usd_per_kwh: FloatArray
    cooling_factor: FloatArray

    def __post_init__(self) -> None:
        if not (self.ci_g_per_kwh.shape == self.price_usd_per_kwh.shape == self.cooling_factor.shape):
            raise SimulationError("epoch signals must have one value per minute each")

    @property
    def minutes(self) -> int:
        return int(self.ci_g_per_kwh.size)

    @property
    def mean_ci_g_per_kwh(self) -> float:
        return float(self.ci_g_per_kwh.mean())

    @classmethod
    def constant(cls, minutes: int, ci_g_per_kwh: float, price_usd_per_kwh: float, cooling_factor: float) -> EpochSignals:
        """The same CI, price and E_t in each of ``minutes`` minutes."""
        return cls(np.full(minutes, ci_g_per_kwh), np.full(minutes, price_usd_per_kwh), np.full(minutes, cooling_factor))
