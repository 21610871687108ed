"""Helpers several policies share: demand in container units and first-fit placement."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from casa_sched.contract.cluster import ClusterSpec, SimParams
from casa_sched.contract.forecast import Forecast
from casa_sched.contract.plan import Container, Plan

FloatArray = npt.NDArray[np.float64]


def peak_concurrency(forecast: Forecast) -> FloatArray:
    """Per function, the busiest minute's mean concurrency: ``max_m count_m · T_ave / 60`` requests."""
    return np.asarray(forecast.counts.max(axis=1) * forecast.t_ave_s / forecast.minute_s, dtype=np.float64)


def units_for(concurrency: float, params: SimParams, headroom: float = 1.0) -> int:
    """Container units (k) whose slots hold ``concurrency · headroom`` in-flight requests (≥ 1)."""
    return max(1, math.ceil(concurrency * headroom / params.slots_per_unit - 1e-9))


def split_units(units: int, params: SimParams) -> list[int]:
    """``units`` as container sizes no larger than ``max_container_size``."""
    sizes = [params.max_container_size] * (units // params.max_container_size)
    if units % params.max_container_size:
        sizes.append(units % params.max_container_size)
    return sizes


def free_units(cluster: ClusterSpec, params: SimParams) -> list[int]:
    """Base units each empty node holds."""
    return [int(n.cores // params.base_cpu_cores) for n in cluster.nodes]


def to_plan(epoch: int, cluster: ClusterSpec, layout: dict[str, list[tuple[int, int]]], previous: Plan | None) -> Plan:
    """``{function: [(node index, size)]}`` → :class:`Plan`."""
    names = cluster.node_names
    return Plan(
        epoch=epoch,
        containers={f: tuple(Container(names[n], k) for n, k in cs) for f, cs in layout.items() if cs},
        epoch_start=previous.epoch_start if previous else None,
    )


def fair_caps(wanted: list[int], capacity: int) -> list[int]:
    """Units per function when ``sum(wanted)`` may exceed ``capacity``: all of them if they fit;
    otherwise one each in the given order while units last, then a common cap L on the rest
    (``Σ min(w, L) ≤ capacity``, the largest such L), leftover units to the largest first."""
    if sum(wanted) <= capacity:
        return list(wanted)
    if len(wanted) >= capacity:
        return [1 if i < capacity else 0 for i in range(len(wanted))]
    lo, hi = 1, max(wanted)
    while lo < hi:  # largest L with Σ min(w, L) ≤ capacity
        mid = (lo + hi + 1) // 2
        if sum(min(w, mid) for w in wanted) <= capacity:
            lo = mid
        else:
            hi = mid - 1
    caps = [min(w, lo) for w in wanted]
    spare = capacity - sum(caps)
    for i in sorted(range(len(wanted)), key=lambda i: -wanted[i]):
        if spare == 0:
            break
        if wanted[i] > caps[i]:
            caps[i] += 1
            spare -= 1
    return caps
