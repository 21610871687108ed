"""Deadlines and SLO violation rates (CASA eqs. 6-7).

``deadline = arrival + laxity · T_ave(f)``; a request not finished by its deadline is dropped
and counts as a violation. ``SL_f,e = V_f,e / N_f,e``; the objective ``SL_ave`` is the
unweighted mean over the functions active (N > 0) in the epoch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt


def deadline_s(arrival_s: float, laxity: float, t_ave_s: float) -> float:
    """Eq. (6) solved for the deadline: ``arrival_s + laxity · t_ave_s`` (seconds)."""
    if laxity <= 0:
        raise ValueError(f"laxity must be > 0, got {laxity}")
    if t_ave_s <= 0:
        raise ValueError(f"T_ave must be > 0 s, got {t_ave_s} s")
    return arrival_s + laxity * t_ave_s


def violation_rate(violations: int, requests: int) -> float:
    """Eq. (7): ``V / N``; NaN for a function with no requests (it is not active)."""
    if violations < 0 or requests < 0 or violations > requests:
        raise ValueError(f"need 0 <= violations <= requests, got {violations} of {requests}")
    return violations / requests if requests else math.nan


def sl_ave(violations: npt.ArrayLike, requests: npt.ArrayLike) -> float:
    """Unweighted mean of ``V_f / N_f`` over functions with ``N_f > 0``; 0.0 if none is active."""
    v = np.asarray(violations, dtype=np.float64)
    n = np.asarray(requests, dtype=np.float64)
    if v.shape != n.shape:
        raise ValueError(f"violations and requests differ in shape: {v.shape} vs {n.shape}")
    active = n > 0
    if not np.any(active):
        return 0.0
    return float(np.mean(v[active] / n[active]))


def sl_ave_of_rates(rates: Iterable[float]) -> float:
    """Mean of per-function rates, skipping NaN (inactive) entries; 0.0 if none is active."""
    vals = [r for r in rates if not math.isnan(r)]
    return sum(vals) / len(vals) if vals else 0.0
