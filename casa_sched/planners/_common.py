"""Helpers several policies share: demand in container units, first-fit placement and the
provenance every plan carries."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

import numpy as np

from casa_sched._typing import FloatArray
from casa_sched.contract.cluster import ClusterSpec, SimParams
from casa_sched.contract.forecast import EpochSignals, Forecast
from casa_sched.contract.plan import Container, Plan, PlanInputs, PredictedMetrics
from casa_sched.contract.snapshot import ClusterSnapshot

Tag = TypeVar("Tag")


def peak_concurrency(forecast: Forecast) -> FloatArray:
    """Per function, the busiest minute's mean concurrency: ``max_m count_m · T_ave / 60`` requests."""
    return np.asarray(forecast.counts.max(axis=1) * forecast.t_ave_s / forecast.minute_s, dtype=np.float64)


def mean_concurrency(forecast: Forecast) -> FloatArray:
    """Per function, the epoch's mean concurrency: ``mean_m count_m · T_ave / 60`` requests."""
    return np.asarray(forecast.counts.mean(axis=1) * forecast.t_ave_s / forecast.minute_s, dtype=np.float64)


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


def stamped_plan(
    policy: str,
    snapshot: ClusterSnapshot,
    forecast: Forecast,
    signals: EpochSignals,
    containers: Mapping[str, tuple[Container, ...]],
    predicted: PredictedMetrics | None = None,
    sleeping_nodes: tuple[str, ...] = (),
) -> Plan:
    """A plan with its provenance: the policy, the epoch's start and length, the base unit, the
    signals it was made under (epoch means) and a forecast summary. The extender dates a plan's
    staleness from ``epoch_start + epoch_length_s`` and scores marginal carbon with its CI."""
    return Plan(
        epoch=forecast.epoch,
        containers=containers,
        epoch_start=forecast.start,
        epoch_length_s=forecast.minute_s * forecast.minutes,
        base_cpu_cores=snapshot.params.base_cpu_cores,
        base_memory_mb=snapshot.params.base_memory_mb,
        inputs=PlanInputs(
            policy=policy,
            ci_g_per_kwh=signals.mean_ci_g_per_kwh,
            price_usd_per_kwh=float(signals.price_usd_per_kwh.mean()),
            cooling_factor=float(signals.cooling_factor.mean()),
            forecast_functions=int(forecast.active().sum()),
            forecast_requests=float(forecast.totals.sum()),
        ),
        predicted=predicted,
        sleeping_nodes=sleeping_nodes,
    )


def to_plan(
    policy: str,
    snapshot: ClusterSnapshot,
    forecast: Forecast,
    signals: EpochSignals,
    layout: Mapping[str, Sequence[tuple[int, int]]],
    predicted: PredictedMetrics | None = None,
    sleeping_nodes: tuple[str, ...] = (),
) -> Plan:
    """``{function: [(node index, size)]}`` → :func:`stamped_plan`."""
    names = snapshot.cluster.node_names
    containers = {f: tuple(Container(names[n], k) for n, k in cs) for f, cs in layout.items() if cs}
    return stamped_plan(policy, snapshot, forecast, signals, containers, predicted, sleeping_nodes)


def first_fit(items: Iterable[tuple[int, Tag]], room: list[int]) -> list[tuple[Tag, int, int]]:
    """Place ``(size, tag)`` items in the given order, each on the first node with room; returns
    ``(tag, node, size)`` for the placed ones (``room`` is updated in place; an item that fits
    nowhere is skipped)."""
    placed: list[tuple[Tag, int, int]] = []
    for size, tag in items:
        for n, free in enumerate(room):
            if free >= size:
                room[n] -= size
                placed.append((tag, n, size))
                break
    return placed


def first_fit_decreasing(items: list[tuple[int, int]], room: list[int]) -> list[tuple[int, int, int]]:
    """:func:`first_fit` with the items largest first (ties by tag)."""
    return first_fit(sorted(items, key=lambda x: (-x[0], x[1])), room)


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


PEAK_HEADROOM = 1.2  # bin-packing's capacity over the peak-minute concurrency (binpack's docstring says why)


def binpack_layout(
    snapshot: ClusterSnapshot, forecast: Forecast, headroom: float = PEAK_HEADROOM
) -> dict[str, list[tuple[int, int]]]:
    """Bin-packing's layout (the ``binpack`` policy, also CASA's safe start): every function
    with forecast requests sized for ``headroom`` × its peak-minute concurrency, capped by
    max-min fair water-filling when the cluster is short, packed first-fit decreasing."""
    p = snapshot.params
    conc = peak_concurrency(forecast)
    totals = forecast.totals  # a property that sums the counts: once, not per function
    active = [f for f in np.argsort(-conc, kind="stable").tolist() if totals[f] > 0]
    room = free_units(snapshot.cluster, p)
    caps = fair_caps([units_for(float(conc[f]), p, headroom) for f in active], sum(room))
    items = [(size, f) for f, units in zip(active, caps, strict=True) if units for size in split_units(units, p)]
    layout: dict[str, list[tuple[int, int]]] = {}
    for f, n, size in first_fit_decreasing(items, room):
        layout.setdefault(forecast.function_ids[f], []).append((n, size))
    return layout
