"""Cooling power (CASA eq. 3): ``P_cooling = E_t · P_IT`` with an hourly factor ``E_t``.

``E_t`` depends on the hour of (local solar) day because outdoor temperature drives the
chiller's efficiency. Pure functions of frozen inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class CoolingProfile:
    """``E_t`` for local hours 0..23; ``P_cooling = E_t · P_IT`` (dimensionless ratio ≥ 0)."""

    factor_by_hour: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.factor_by_hour) != 24:
            raise ValueError(f"a cooling profile needs 24 hourly factors, got {len(self.factor_by_hour)}")
        if any(f < 0 for f in self.factor_by_hour):
            raise ValueError(f"cooling factors must be >= 0, got min {min(self.factor_by_hour)}")

    @classmethod
    def of(cls, factors: Sequence[float]) -> CoolingProfile:
        return cls(tuple(float(f) for f in factors))

    def factor(self, local_hour: int) -> float:
        """``E_t`` at local hour ``local_hour`` (taken modulo 24)."""
        return self.factor_by_hour[local_hour % 24]

    def factors(self, local_hours: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Vectorised :meth:`factor`."""
        idx = np.asarray(local_hours, dtype=np.int64) % 24
        return np.asarray(self.factor_by_hour, dtype=np.float64)[idx]


def cooling_power_w(it_power_w: float, cooling_factor: float) -> float:
    """Eq. (3): cooling power in W for ``it_power_w`` watts of IT load at factor ``E_t``."""
    if cooling_factor < 0:
        raise ValueError(f"cooling factor must be >= 0, got {cooling_factor}")
    return cooling_factor * it_power_w


def it_power_w(node_power_w: Sequence[float], storage_power_w: float, network_power_w: float) -> float:
    """Eq. (1): ``P_IT = Σ P_i + P_S + P_N`` in W."""
    return float(sum(node_power_w)) + storage_power_w + network_power_w
