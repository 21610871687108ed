"""Frozen inputs of the request-level simulator: the requests of an epoch, and the hourly
signals from which each epoch's per-minute window (:class:`~casa_sched.contract.forecast.EpochSignals`)
is cut."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from casa_sched._typing import FloatArray, IntArray
from casa_sched.contract.cluster import SimulationError
from casa_sched.contract.forecast import MINUTE_S, EpochSignals
from casa_sched.models.accounting import NO_WATER, WaterFactors


@dataclass(frozen=True)
class HourlySignals:
    """CI_h, EP_h and E_t for simulation hours 0, 1, … (hour h = ``[3600·h, 3600·(h+1))`` s)."""

    ci_g_per_kwh: FloatArray
    price_usd_per_kwh: FloatArray
    cooling_factor: FloatArray
    water: WaterFactors = NO_WATER  # the site's factors come from settings.accounting

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

    def window(self, start_s: float, minutes: int) -> EpochSignals:
        """The per-minute signals of ``minutes`` minutes from ``start_s`` (each minute carries its
        hour's values): what a planner and the simulator are given for one epoch."""
        first = round(start_s / MINUTE_S)
        hour = (first + np.arange(minutes)) // round(3600.0 / MINUTE_S)
        if minutes < 1 or first < 0 or int(hour[-1]) >= self.hours:
            raise SimulationError(
                f"signals cover {self.hours} h; a window of {minutes} min from {start_s} s lies outside them"
            )
        return EpochSignals(
            ci_g_per_kwh=self.ci_g_per_kwh[hour],
            price_usd_per_kwh=self.price_usd_per_kwh[hour],
            cooling_factor=self.cooling_factor[hour],
        )

    def extended(self, hours: int) -> HourlySignals:
        """These signals over ``hours`` hours, the last hour's values held past the end (for
        epochs beyond the signal data, such as a learning policy's held-out training epochs)."""
        if hours <= self.hours:
            return self
        pad = hours - self.hours
        return replace(
            self,
            ci_g_per_kwh=np.concatenate([self.ci_g_per_kwh, np.full(pad, self.ci_g_per_kwh[-1])]),
            price_usd_per_kwh=np.concatenate([self.price_usd_per_kwh, np.full(pad, self.price_usd_per_kwh[-1])]),
            cooling_factor=np.concatenate([self.cooling_factor, np.full(pad, self.cooling_factor[-1])]),
        )

    @classmethod
    def constant(
        cls,
        hours: int,
        ci_g_per_kwh: float,
        price_usd_per_kwh: float,
        cooling_factor: float,
        water: WaterFactors = NO_WATER,
    ) -> HourlySignals:
        return cls(np.full(hours, ci_g_per_kwh), np.full(hours, price_usd_per_kwh), np.full(hours, cooling_factor), water)


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
