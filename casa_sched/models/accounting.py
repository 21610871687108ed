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


def account_hours(
    it_energy_j: npt.ArrayLike,
    cooling_factor: npt.ArrayLike,
    ci_g_per_kwh: npt.ArrayLike,
    price_usd_per_kwh: npt.ArrayLike,
    water: WaterFactors,
) -> Accounting:
    """Eqs. (3)-(5) over aligned hourly arrays: IT energy (J), ``E_t``, ``CI_h``, ``EP_h``.

    Cooling energy is ``E_t`` times the hour's IT energy (eq. 3 integrated over an hour of
    constant ``E_t``); carbon and cost weigh IT plus cooling energy by ``CI_h`` and ``EP_h``.
    """
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
