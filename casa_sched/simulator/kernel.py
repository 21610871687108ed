"""The request-level hot loop, compiled with numba.

One call replays the requests of one function that arrive in one autoscaling window. The
function's container slots form a binary min-heap keyed on the time each slot is next free
(a slot is one in-flight request's CPU share of a container). FIFO dispatch: each request, in
arrival order, takes the slot that frees earliest; among slots already free that is the one
idle longest, which spreads load evenly over containers (least-loaded in effect).

A request starting at ``s`` finishes at ``s + T_ave``. If that is after its deadline
``arrival + laxity·T_ave`` (eq. 6) the request is dropped and counted as a violation (eq. 7); a
dropped request never occupies a slot (the platform times it out in the queue). Busy time is
written into per-node difference arrays at 1-second bins in O(1) per request.

The paper's equations are not restated here: the loops call the models' own functions
(``t_deadline_s`` for eq. 6, ``t_cold_s`` for eq. 8, ``node_power_w`` for eq. 2,
``it_power_w`` for eq. 1), compiled and
inlined by numba. numba's on-disk cache does not notice edits to those functions (it stamps only
this file): after changing one, delete ``casa_sched/simulator/__pycache__``;
``tests/simulator/test_equations.py`` fails on a stale cache.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from casa_sched._typing import FloatArray, IntArray
from casa_sched.models.coldstart import t_cold_s
from casa_sched.models.cooling import it_power_w
from casa_sched.models.power import node_power_w
from casa_sched.models.slo import t_deadline_s
from casa_sched.models.tolerances import EPS_COUNT

# Columns of :func:`replay`'s per-function result row.
SERVED, DROPPED, WAIT_S, WAITED = 0, 1, 2, 3
RESULT_COLUMNS = 4

_t_deadline_s = njit(inline="always")(t_deadline_s)
_t_cold_s = njit(inline="always")(t_cold_s)
_node_power_w = njit(inline="always")(node_power_w)
_it_power_w = njit(inline="always")(it_power_w)


@njit(cache=True, nogil=True)
def heapify(times: FloatArray, ids: IntArray, n: int) -> None:  # pragma: no cover - compiled
    for start in range(n // 2 - 1, -1, -1):
        _sift_down(times, ids, start, n)


@njit(cache=True, nogil=True, inline="always")
def _sift_down(times: FloatArray, ids: IntArray, pos: int, n: int) -> None:  # pragma: no cover - compiled
    t = times[pos]
    i = ids[pos]
    while True:
        child = 2 * pos + 1
        if child >= n:
            break
        right = child + 1
        if right < n and (times[right] < times[child] or (times[right] == times[child] and ids[right] < ids[child])):
            child = right
        if times[child] < t or (times[child] == t and ids[child] < i):
            times[pos] = times[child]
            ids[pos] = ids[child]
            pos = child
        else:
            break
    times[pos] = t
    ids[pos] = i


@njit(cache=True, nogil=True)
def replay(
    arrivals_s: FloatArray,
    t_ave_s: float,
    laxity: float,
    heap_t: FloatArray,
    heap_id: IntArray,
    n_slots: int,
    slot_node: IntArray,
    share_cores: float,
    busy_acc: FloatArray,
    busy_diff: FloatArray,
    n_bins: int,
    out: FloatArray,
) -> None:  # pragma: no cover - compiled
    """Replay ``arrivals_s`` (sorted, seconds since simulation start) of one function.

    ``busy_acc`` / ``busy_diff`` are ``[nodes, n_bins + 1]`` core-second accumulators.
    ``out`` accumulates the columns ``SERVED, DROPPED, WAIT_S`` (sum of waits) and ``WAITED``.
    """
    served = 0.0
    dropped = 0.0
    wait_sum = 0.0
    waited = 0.0
    for k in range(arrivals_s.size):
        a = arrivals_s[k]
        if n_slots == 0:
            dropped += 1.0
            continue
        free = heap_t[0]
        start = a if free <= a else free
        if start + t_ave_s > _t_deadline_s(a, laxity, t_ave_s):
            dropped += 1.0
            continue
        end = start + t_ave_s
        slot = heap_id[0]
        heap_t[0] = end
        _sift_down(heap_t, heap_id, 0, n_slots)
        served += 1.0
        if start > a:
            wait_sum += start - a
            waited += 1.0
        node = slot_node[slot]
        b0 = int(start)
        b1 = int(end)
        if b0 >= n_bins:
            continue
        if b1 >= n_bins:
            b1 = n_bins
            end_c = float(n_bins)
        else:
            end_c = end
        if b0 == b1:
            busy_acc[node, b0] += share_cores * (end_c - start)
        else:
            busy_acc[node, b0] += share_cores * (b0 + 1 - start)
            busy_diff[node, b0 + 1] += share_cores
            busy_diff[node, b1] -= share_cores
            if b1 < n_bins:
                busy_acc[node, b1] += share_cores * (end_c - b1)
    out[SERVED] += served
    out[DROPPED] += dropped
    out[WAIT_S] += wait_sum
    out[WAITED] += waited


@njit(cache=True, nogil=True)
def queue_drops(
    counts: FloatArray,
    t_ave_s: float,
    slots: float,
    laxity: float,
    minute_s: float,
    grow_slots: float,
    windows_per_minute: int,
    max_extra_slots: float,
) -> tuple[FloatArray, float]:  # pragma: no cover - compiled
    """Expected deadline drops per minute for ``slots`` request slots, with in-epoch autoscaling.

    **Overload** is a fluid queue carried from window to window (and minute to minute): ``q``
    requests in the system (in service and waiting) arrive at the window's rate ``λ`` (its
    minute's count, uniform within the minute) and finish at ``min(q, c)/T_ave``, so below
    saturation ``q`` relaxes towards the offered load ``λ·T_ave`` and above it grows by
    ``λ − c/T_ave``. FIFO, a request waits ``(q − c)·T_ave/c``, so it misses its deadline
    (eq. 6) once ``q`` exceeds ``c·laxity`` (its wait budget ``(laxity − 1)·T_ave`` used up); the
    arrivals beyond that are dropped and never take a slot, as in the simulator. A burst of a
    few seconds or one minute, such as a timer's, is thus queued and served within its wait
    budget instead of losing the excess share ``1 − c/a`` of its minute, and a sustained overload
    still loses that share once the queue is full.

    **Below saturation** a request misses its deadline with probability ``P(wait) · exp(−2 (c −
    a)(laxity − 1))``, ``a`` the mean number of requests in service: its minute's arrivals times
    ``min(T_ave/60, 1)`` plus earlier minutes' arrivals still running.

    Each window whose queue drops requests or waits over a tenth of the wait budget (the
    simulator's saturation test) adds ``grow_slots`` (one container unit), up to
    ``max_extra_slots``. Returns the drops per minute and the mean extra slots autoscaling
    added over the epoch.
    """
    out = np.zeros(counts.size)
    lax = laxity - 1.0
    c = slots
    extra = 0.0
    extra_sum = 0.0
    span = t_ave_s / minute_s  # minutes a request stays in service
    window_s = minute_s / windows_per_minute
    q = 0.0  # fluid requests in the system (in service and queued), carried over
    for m in range(counts.size):
        n = counts[m]
        # concurrency in minute m: this minute's arrivals plus earlier ones still running
        a = 0.0
        for k in range(m + 1):
            w = min(max(span - k, 0.0), 1.0)
            if w <= 0.0:
                break
            a += counts[m - k] * w
        per_window = n / windows_per_minute
        for _ in range(windows_per_minute):
            q0 = q
            q, lost = _fluid_window(q, per_window / window_s, c, t_ave_s, c * laxity, window_s)
            saturated = lost > 0.0 or q > c * (1.0 + 0.1 * lax)
            if lost > 0.0 or q0 > c or q > c:
                out[m] += lost
            elif n > 0.0 and c > 0.0:
                # P(all slots busy) by the normal approximation of Poisson(a), times the chance
                # the queue then outgrows the wait budget: the exponential tail of a queue with
                # drift (c − a) (heavy traffic, deterministic service), capped by how far a
                # driftless queue can wander within one window (reflection principle).
                z = (c - 0.5 - a) / (np.sqrt(max(a, EPS_COUNT)) * np.sqrt(2.0))
                tail = np.exp(-2.0 * (c - a) * lax * c / max(a, EPS_COUNT))
                spread = np.sqrt(max(a * window_s / t_ave_s, EPS_COUNT))
                wander = _erfc_scalar(lax * c / spread / np.sqrt(2.0))
                frac = 0.5 * _erfc_scalar(z) * min(tail, wander)
                out[m] += per_window * min(max(frac, 0.0), 1.0)
            if saturated and extra + grow_slots <= max_extra_slots:
                c += grow_slots
                extra += grow_slots
            extra_sum += extra
    return out, extra_sum / max(counts.size * windows_per_minute, 1)


@njit(cache=True, nogil=True, inline="always")
def _fluid_window(
    q: float, rate: float, c: float, t_ave_s: float, cap: float, span_s: float
) -> tuple[float, float]:  # pragma: no cover - compiled
    """One window of :func:`queue_drops`' fluid queue: ``q`` requests in the system, arrivals
    at ``rate`` per s, ``c`` slots of ``t_ave_s`` each, at most ``cap`` requests held (beyond,
    arrivals miss their deadline). Returns ``q`` at the window's end and the requests lost."""
    if c <= 0.0:
        return 0.0, rate * span_s
    mu = c / t_ave_s  # completions per s while every slot is busy
    left = span_s
    lost = 0.0
    for _ in range(4):  # constant rate: at most two changes of regime per window
        if left <= 0.0:
            break
        if q < c:  # unsaturated: dq/dt = rate − q/T, relaxing towards rate·T
            target = rate * t_ave_s
            if target <= c:
                q = target + (q - target) * np.exp(-left / t_ave_s)
                left = 0.0
            else:
                t_hit = t_ave_s * np.log((target - q) / (target - c))
                if t_hit >= left:
                    q = target + (q - target) * np.exp(-left / t_ave_s)
                    left = 0.0
                else:
                    q = c
                    left -= t_hit
        elif rate > mu:  # saturated and filling: the queue grows to the cap, then drops the excess
            t_full = (cap - q) / (rate - mu) if cap > q else 0.0
            if t_full >= left:
                q += (rate - mu) * left
                left = 0.0
            else:
                lost += (rate - mu) * (left - t_full)
                q = cap
                left = 0.0
        else:  # saturated and draining
            t_drain = (q - c) / (mu - rate) if mu > rate else np.inf
            if t_drain >= left:
                q -= (mu - rate) * left
                left = 0.0
            else:
                q = c * (1.0 - 1e-12)
                left -= t_drain
    return q, lost


@njit(cache=True, nogil=True, inline="always")
def _erfc_scalar(x: float) -> float:  # pragma: no cover - compiled
    z = abs(x)
    t = 1.0 / (1.0 + 0.3275911 * z)
    r = (
        t
        * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
        * np.exp(-z * z)
    )
    return float(r) if x >= 0.0 else float(2.0 - r)


@njit(cache=True, nogil=True)
def predict_aggregates(
    busy: FloatArray,
    node_cores: FloatArray,
    coeffs: FloatArray,
    alloc_units: FloatArray,
    n_containers: FloatArray,
    n_new: FloatArray,
    removed: FloatArray,
    asleep: FloatArray,
    hops: FloatArray,
    grow_units: FloatArray,
    od_grow_units: float,
    od_alive: FloatArray,
    od_cores: FloatArray,
    od_share_sum: FloatArray,
    scalars: FloatArray,
    ci_per_w: FloatArray,
    price_per_w: FloatArray,
    cool_j_per_w: FloatArray,
    phi: FloatArray,
) -> tuple[float, float, float, float, float, float]:  # pragma: no cover - compiled
    """The estimator's per-minute aggregates in one pass (see ``Estimator.prediction``).

    ``scalars`` = (unit cores, idle cores, starting cores, stopping cores, shutdown s, epoch s,
    image MB per new container, switch delay s, allocated mode 0/1, power management 0/1, sleep
    W, storage W, minute s, image bandwidth MB/s, network W). ``asleep[i]`` is 1 for a node the
    plan puts to sleep: it draws the sleep power all epoch and offers scale-from-zero containers
    no room. Writes ``phi[m]``, the share of scale-from-zero containers that find
    no free unit in minute m. Node cores per minute are the planned busy cores plus container
    overheads plus an even share of the scale-from-zero cores that found room (``busy`` mode),
    or the allocated cores plus the share of scale-from-zero containers (``allocated`` mode).
    Returns (mean load, IT energy J, carbon g, energy cost $, cooling J, requests' share lost to φ).
    """
    unit, idle, starting, stopping, shutdown_s, epoch_s = (
        scalars[0],
        scalars[1],
        scalars[2],
        scalars[3],
        scalars[4],
        scalars[5],
    )
    image_mb, switch_s, allocated = scalars[6], scalars[7], scalars[8] > 0.5
    sleep_w, storage_w, minute_s, bandwidth, network_w = scalars[10], scalars[11], scalars[12], scalars[13], scalars[14]
    n_nodes, n_min = busy.shape
    free = 0.0
    n_awake = 0.0
    for i in range(n_nodes):
        if asleep[i] < 0.5:
            free += np.floor(max(node_cores[i] - alloc_units[i] * unit, 0.0) / unit)
            n_awake += 1.0
    n_awake = max(n_awake, 1.0)
    # in-epoch autoscaling takes unallocated cores too (planned and scale-from-zero functions)
    free = max(free - grow_units.sum() - od_grow_units, 0.0)
    lost = 0.0
    node_w = np.empty((n_nodes, n_min))
    for m in range(n_min):
        p = 1.0 - free / od_alive[m] if od_alive[m] > EPS_COUNT else 0.0
        phi[m] = min(max(p, 0.0), 1.0)
        lost += od_share_sum[m] * phi[m]
    load = 0.0
    for i in range(n_nodes):
        a, b, c, d, e = coeffs[i, 0], coeffs[i, 1], coeffs[i, 2], coeffs[i, 3], coeffs[i, 4]
        cold_s: float = _t_cold_s(n_new[i] * image_mb, bandwidth, hops[i], switch_s)  # the node's shared link
        overhead = (
            n_containers[i] * idle
            + n_new[i] * cold_s * starting / epoch_s
            + removed[i] * stopping * shutdown_s / epoch_s
        )
        if asleep[i] > 0.5:  # asleep all epoch: the sleep power instead of P(0), no load
            node_w[i, :] = sleep_w
            continue
        node_load = 0.0
        for m in range(n_min):
            ok = 1.0 - phi[m]
            if allocated:
                u = alloc_units[i] * unit + ok * od_alive[m] * unit / n_awake
            else:
                u = busy[i, m] + overhead + ok * od_cores[m] / n_awake
            u = min(max(u, 0.0), node_cores[i])
            node_load += u / node_cores[i]
            node_w[i, m] = _node_power_w(a, b, c, d, e, u)
        load += node_load
    it_w = _it_power_w(node_w, storage_w, network_w)
    energy_j = carbon = cost = cooling_j = 0.0
    for m in range(n_min):
        energy_j += it_w[m] * minute_s
        carbon += it_w[m] * ci_per_w[m]
        cost += it_w[m] * price_per_w[m]
        cooling_j += it_w[m] * cool_j_per_w[m]
    return load / (n_nodes * n_min), energy_j, carbon, cost, cooling_j, lost


def busy_s_by_minute(t_ave_s: float, minute_s: float) -> FloatArray:
    """Expected busy seconds, in the minute of its arrival and in each later one, of a request
    of ``t_ave_s`` arriving uniformly within its minute (they sum to ``t_ave_s``). A request of
    5 minutes keeps its slot busy into the next 5 minutes, and past an epoch's end only its part
    inside the epoch is that epoch's, as the simulator accounts busy time per second."""
    spans = int(np.ceil(t_ave_s / minute_s)) + 1
    edges = np.arange(spans + 1, dtype=np.float64) * minute_s

    def integral(x: FloatArray) -> FloatArray:  # ∫ clip(y, 0, T) dy from 0 to x
        x = np.maximum(x, 0.0)
        out = np.where(x <= t_ave_s, x * x / 2.0, t_ave_s * t_ave_s / 2.0 + t_ave_s * (x - t_ave_s))
        return np.asarray(out, dtype=np.float64)

    shifted = np.asarray(edges - minute_s, dtype=np.float64)
    cumulative = (integral(edges) - integral(shifted)) / minute_s  # expected busy seconds by each edge
    return np.asarray(np.diff(cumulative), dtype=np.float64)


def busy_cores(served: FloatArray, t_ave_s: float, request_cpu_cores: float, minute_s: float) -> FloatArray:
    """Busy cores per minute of ``served[m]`` requests arriving in minute m (uniformly within it):
    each occupies ``request_cpu_cores`` for ``t_ave_s`` from its arrival (:func:`busy_s_by_minute`),
    cut at the last minute."""
    scale = request_cpu_cores / minute_s
    if t_ave_s <= minute_s:  # at most a minute: its arrival minute and the next
        spill = t_ave_s * t_ave_s / (2.0 * minute_s)
        out = served * ((t_ave_s - spill) * scale)
        out[1:] += served[:-1] * (spill * scale)
        return np.asarray(out, dtype=np.float64)
    spread = busy_s_by_minute(t_ave_s, minute_s)
    return np.asarray(np.convolve(served, spread)[: served.size] * scale, dtype=np.float64)


def busy_cores_rows(served: FloatArray, t_ave_s: FloatArray, request_cpu_cores: float, minute_s: float) -> FloatArray:
    """:func:`busy_cores` of each row of ``served`` [functions × minutes] with its ``t_ave_s``."""
    out = np.zeros_like(served, dtype=np.float64)
    scale = request_cpu_cores / minute_s
    short = t_ave_s <= minute_s
    if short.any():  # at most a minute: its arrival minute and the next
        t = t_ave_s[short][:, None]
        spill = t * t / (2.0 * minute_s)
        rows = served[short]
        out[short] = rows * (t - spill) * scale
        out[short, 1:] += rows[:, :-1] * spill * scale
    for i in np.flatnonzero(~short).tolist():
        spread = busy_s_by_minute(float(t_ave_s[i]), minute_s)
        out[i] = np.convolve(served[i], spread)[: served.shape[1]] * scale
    return out
