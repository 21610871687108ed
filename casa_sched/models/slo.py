"""Deadlines and SLO violation rates (CASA eqs. 6-7).

``deadline = arrival + laxity · T_ave(f)``; a request not finished by its deadline is dropped
and counts as a violation. ``SL_f,e = V_f,e / N_f,e``; the objective ``SL_ave`` is the
unweighted mean over the functions active (N > 0) in the epoch. Reported beside it, the
request-weighted rate ``ΣV / ΣN`` (:func:`request_violation_rate`): SL_ave weighs a function with
one request like one with a million, so a policy can keep SL_ave low while the busiest function
misses most of its requests; the request-weighted rate shows that.

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


def request_violation_rate(violations: npt.ArrayLike, requests: npt.ArrayLike) -> float:
    """``ΣV_f / ΣN_f``: the share of all requests that violated, every request weighted alike
    (eq. 7 pooled over functions, and over epochs when given totals); 0.0 without requests."""
    v = np.asarray(violations, dtype=np.float64)
    n = np.asarray(requests, dtype=np.float64)
    if v.shape != n.shape:
        raise ValueError(f"violations and requests differ in shape: {v.shape} vs {n.shape}")
    if np.any(v < 0) or np.any(v > n):
        raise ValueError("need 0 <= violations <= requests for every function")
    total = float(n.sum())
    return float(v.sum()) / total if total > 0 else 0.0


def count_above(upper_bounds_s: npt.ArrayLike, cumulative_counts: npt.ArrayLike, threshold_s: float) -> float:
    """Estimated observations above ``threshold_s`` in a cumulative latency histogram.

    ``upper_bounds_s`` are the buckets' ``le`` bounds in increasing order (the last may be
    ``+Inf``) and ``cumulative_counts`` the observations at or below each bound, as Prometheus
    histograms give them. Inside the bucket holding ``threshold_s`` observations are taken as
    spread uniformly, so the count at or below the threshold is *linearly interpolated* between
    the bucket's bounds (the same assumption as PromQL's ``histogram_quantile``); the first
    bucket starts at 0 s. A threshold in the ``+Inf`` bucket (above the last finite bound) counts
    nothing of that bucket as above it, since its spread is unknown: the estimate is then a lower
    bound. E.g. bounds ``(0.1, 0.5, +Inf)``, counts ``(10, 30, 32)``, threshold 0.2 s: below it
    ``10 + (0.2 − 0.1)/(0.5 − 0.1)·(30 − 10) = 15``, above it ``32 − 15 = 17``.
    """
    le = np.asarray(upper_bounds_s, dtype=np.float64)
    cum = np.asarray(cumulative_counts, dtype=np.float64)
    if le.shape != cum.shape or le.ndim != 1 or le.size == 0:
        raise ValueError(f"bounds and counts must be equal-length 1-d arrays, got {le.shape} and {cum.shape}")
    if np.any(np.diff(le) <= 0):
        raise ValueError("histogram bounds must increase strictly")
    total = float(cum[-1])
    if threshold_s <= 0:
        return total
    i = int(np.searchsorted(le, threshold_s, side="left"))
    if i >= le.size:  # above every bound, +Inf included: nothing known to be slower
        return 0.0
    hi = float(le[i])
    below_prev = float(cum[i - 1]) if i > 0 else 0.0
    if not math.isfinite(hi):  # in the +Inf bucket
        return 0.0
    lo = float(le[i - 1]) if i > 0 else 0.0
    below = below_prev + (threshold_s - lo) / (hi - lo) * (float(cum[i]) - below_prev)
    return max(total - below, 0.0)
