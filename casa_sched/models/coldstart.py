"""Cold-start latency with a shared node link (CASA eq. 8) and request finish time (eq. 9).

``T_cold = C_cold / B_node + NH · T_switch``: ``C_cold`` is the image data of every container
cold-starting on the node at the same time (the link is shared), ``B_node`` the node's
bandwidth to image storage, ``NH`` its switch hops in a three-tier network.
``T_finish = T_arrival + T_wait + T_cold + T_ave``.

``t_cold_s`` is the equation itself: plain arithmetic, element-wise over arrays, and compiled
as is into the simulator's kernel (numba), so the simulator, the estimator and the kernel share
this one line. ``cold_start_s`` checks its inputs first, for callers that have not.
"""

from __future__ import annotations

from casa_sched.models._types import Num


def t_cold_s(concurrent_image_mb: Num, bandwidth_mb_per_s: float, switch_hops: Num, switch_delay_s: float) -> Num:
    """Eq. (8), unchecked: ``C_cold / B_node + NH · T_switch`` seconds (inputs ≥ 0, bandwidth > 0)."""
    return concurrent_image_mb / bandwidth_mb_per_s + switch_hops * switch_delay_s


def cold_start_s(
    concurrent_image_mb: float, bandwidth_mb_per_s: float, switch_hops: int, switch_delay_s: float
) -> float:
    """Eq. (8): seconds to bring ``concurrent_image_mb`` MB of images to a node, plus switching."""
    if concurrent_image_mb < 0:
        raise ValueError(f"image data must be >= 0 MB, got {concurrent_image_mb} MB")
    if bandwidth_mb_per_s <= 0:
        raise ValueError(f"bandwidth must be > 0 MB/s, got {bandwidth_mb_per_s} MB/s")
    if switch_hops < 0 or switch_delay_s < 0:
        raise ValueError(f"switch hops and delay must be >= 0, got {switch_hops} hops, {switch_delay_s} s")
    return t_cold_s(concurrent_image_mb, bandwidth_mb_per_s, float(switch_hops), switch_delay_s)


def finish_time_s(arrival_s: float, wait_s: float, cold_s: float, t_ave_s: float) -> float:
    """Eq. (9): ``T_arrival + T_wait + T_cold + T_ave`` in seconds.

    The kernel reaches the same time as ``start + T_ave`` with ``start = max(arrival, slot free)``
    (a cold container's slots free when it is ready, so the wait and the cold start are one
    span there); ``tests/simulator/test_equations.py`` pins the two together.
    """
    if wait_s < 0 or cold_s < 0 or t_ave_s < 0:
        raise ValueError(f"wait, cold and T_ave must be >= 0 s, got {wait_s}, {cold_s}, {t_ave_s}")
    return arrival_s + wait_s + cold_s + t_ave_s
