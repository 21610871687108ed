"""IT power (CASA eq. 1) and the hourly cooling factor of eq. (3), ``P_cooling = E_t · P_IT``.

``E_t`` depends on the hour of (local solar) day because outdoor temperature drives the
chiller's efficiency; :func:`~casa_sched.models.accounting.account_hours` applies it to each
hour's IT energy. Pure functions of frozen inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from casa_sched._typing import FloatArray


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

    def factors(self, local_hours: npt.ArrayLike) -> FloatArray:
        """Vectorised :meth:`factor`."""
        idx = np.asarray(local_hours, dtype=np.int64) % 24
        return np.asarray(self.factor_by_hour, dtype=np.float64)[idx]


def it_power_w(node_power_w: FloatArray, storage_power_w: float, network_power_w: float) -> FloatArray:
    """Eq. (1): ``P_IT = Σ_i P_i + P_S + P_N`` in W, summing ``node_power_w`` over its first axis
    (nodes), so ``[nodes]`` gives one value and ``[nodes, seconds]`` one per second."""
    return np.asarray(np.sum(node_power_w, axis=0) + storage_power_w + network_power_w, dtype=np.float64)
