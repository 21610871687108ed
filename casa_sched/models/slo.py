"""Deadlines and SLO violation rates (CASA eqs. 6-7).

``deadline = arrival + laxity · T_ave(f)``; a request not finished by its deadline is dropped
and counts as a violation. ``SL_f,e = V_f,e / N_f,e``; the objective ``SL_ave`` is the
unweighted mean over the functions active (N > 0) in the epoch.

``t_deadline_s`` and ``wait_budget_s`` are eq. (6) itself: plain arithmetic, element-wise over
arrays, compiled as is into the simulator's kernel (numba); ``deadline_s`` checks its inputs
first, for callers that have not.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from casa_sched.models._types import Num


def t_deadline_s(arrival_s: float, laxity: float, t_ave_s: float) -> float:
    """Eq. (6) solved for the deadline, unchecked: ``arrival_s + laxity · t_ave_s`` (seconds)."""
    return arrival_s + laxity * t_ave_s


def wait_budget_s(laxity: float, t_ave_s: Num) -> Num:
    """The longest a request may wait and still finish by eq. (6)'s deadline:
    ``T_deadline − T_arrival − T_ave = (laxity − 1) · T_ave`` seconds."""
    return (laxity - 1.0) * t_ave_s


def deadline_s(arrival_s: float, laxity: float, t_ave_s: float) -> float:
    """Eq. (6) solved for the deadline: ``arrival_s + laxity · t_ave_s`` (seconds)."""
    if laxity <= 0:
        raise ValueError(f"laxity must be > 0, got {laxity}")
    if t_ave_s <= 0:
        raise ValueError(f"T_ave must be > 0 s, got {t_ave_s} s")
    return t_deadline_s(arrival_s, laxity, t_ave_s)


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
