"""Energy, carbon, cost and water accounting (CASA eqs. 4-5) from a power timeline.

Per hour h: ``E_h = ∫ (P_IT + P_cool) dt`` in kWh, carbon ``CA = Σ CI_h · E_h`` (g),
cost ``CO = Σ EP_h · E_h + CO_water`` ($). Water follows the paper's ref. [20]: cooling
consumes water in proportion to cooling energy; its supply and treatment carry carbon and a
price. Everything is pure: arrays in, a frozen result out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
J_PER_KWH = 3.6e6
SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class WaterFactors:
    """Water per kWh of cooling energy (L), its carbon (g/L) and its price ($/L)."""

    l_per_cooling_kwh: float
    ci_g_per_l: float
    price_usd_per_l: float


NO_WATER = WaterFactors(0.0, 0.0, 0.0)  # water not accounted (the settings hold the site's factors)


@dataclass(frozen=True)
class Accounting:
    """Totals over the accounted hours. ``carbon_g`` is eq. (4), grid carbon only;
    ``water_carbon_g`` is reported beside it; ``cost_usd`` is eq. (5) including water."""

    it_energy_kwh: float
    cooling_energy_kwh: float
    carbon_g: float
    energy_cost_usd: float
    water_l: float
    water_carbon_g: float
    water_cost_usd: float

    @property
    def energy_kwh(self) -> float:
        return self.it_energy_kwh + self.cooling_energy_kwh

    @property
    def cost_usd(self) -> float:
        return self.energy_cost_usd + self.water_cost_usd

    def __add__(self, other: Accounting) -> Accounting:
        return Accounting(
            it_energy_kwh=self.it_energy_kwh + other.it_energy_kwh,
            cooling_energy_kwh=self.cooling_energy_kwh + other.cooling_energy_kwh,
            carbon_g=self.carbon_g + other.carbon_g,
            energy_cost_usd=self.energy_cost_usd + other.energy_cost_usd,
            water_l=self.water_l + other.water_l,
            water_carbon_g=self.water_carbon_g + other.water_carbon_g,
            water_cost_usd=self.water_cost_usd + other.water_cost_usd,
        )


ZERO = Accounting(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def energy_by_hour_j(times_s: npt.ArrayLike, power_w: npt.ArrayLike, start_s: float, hours: int) -> FloatArray:
    """Integrate a piecewise-constant power timeline into hourly energy (J).

    ``power_w[i]`` holds on ``[times_s[i], times_s[i+1])``; the last value holds until the end
    of the last hour. Hour ``h`` covers ``[start_s + 3600·h, start_s + 3600·(h+1))``. Power
    before ``times_s[0]`` counts as 0 W. Exact (no sampling error).
    """
    t = np.asarray(times_s, dtype=np.float64)
    p = np.asarray(power_w, dtype=np.float64)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(f"times_s and power_w must be 1-D and equal in length, got {t.shape} and {p.shape}")
    if t.size and np.any(np.diff(t) < 0):
        raise ValueError("times_s must be non-decreasing")
    end_s = start_s + hours * SECONDS_PER_HOUR
    edges = start_s + SECONDS_PER_HOUR * np.arange(hours + 1)
    if t.size == 0:
        return np.zeros(hours, dtype=np.float64)
    # Cumulative energy is piecewise linear in time with knots at the segment boundaries, so
    # interpolating it at the hour edges is exact.
    knots = np.concatenate([[start_s], np.clip(t, start_s, end_s), [end_s]])
    seg_s = np.diff(knots[1:])
    cum_j = np.concatenate([[0.0, 0.0], np.cumsum(p * seg_s)])
    return np.asarray(np.diff(np.interp(edges, knots, cum_j)), dtype=np.float64)


def account_hours(
    it_energy_j: npt.ArrayLike,
    cooling_factor: npt.ArrayLike,
    ci_g_per_kwh: npt.ArrayLike,
    price_usd_per_kwh: npt.ArrayLike,
    water: WaterFactors,
) -> Accounting:
    """Eqs. (3)-(5) over aligned hourly arrays: IT energy (J), ``E_t``, ``CI_h``, ``EP_h``."""
    it_kwh = np.asarray(it_energy_j, dtype=np.float64) / J_PER_KWH
    e_t = np.asarray(cooling_factor, dtype=np.float64)
    ci = np.asarray(ci_g_per_kwh, dtype=np.float64)
    ep = np.asarray(price_usd_per_kwh, dtype=np.float64)
    if not (it_kwh.shape == e_t.shape == ci.shape == ep.shape):
        raise ValueError(
            f"hourly arrays differ in shape: energy {it_kwh.shape}, E_t {e_t.shape}, CI {ci.shape}, price {ep.shape}"
        )
    for name, arr in (("CI_h", ci), ("EP_h", ep), ("E_t", e_t)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} has missing (non-finite) hours; fill them before accounting")
    cool_kwh = e_t * it_kwh
    total_kwh = it_kwh + cool_kwh
    water_l = water.l_per_cooling_kwh * float(cool_kwh.sum())
    return Accounting(
        it_energy_kwh=float(it_kwh.sum()),
        cooling_energy_kwh=float(cool_kwh.sum()),
        carbon_g=float(np.dot(ci, total_kwh)),
        energy_cost_usd=float(np.dot(ep, total_kwh)),
        water_l=water_l,
        water_carbon_g=water_l * water.ci_g_per_l,
        water_cost_usd=water_l * water.price_usd_per_l,
    )
