"""Intra-epoch autoscaling (paper §V.D): grow saturated functions' pods in place, one unit at a time.

Between epochs the plan fixes how many containers a function has and where; within the epoch a
request spike is absorbed by growing running containers in place. Every tick (15 s by default):

1. a function is **saturated** when its requests in flight exceed its pods' slots
   (``Σ floor(cpu / request_cpu_cores)``, the simulator's slots), or when a pod's CPU usage has
   reached ``saturation_cpu_ratio`` of its allocation (the function container's CPU request);
2. saturated functions are served **busiest first** (most requests in flight, else most cores
   in use), one unit each per tick; the pod grown is one of the function's placed, running pods
   (a CPU-saturated pod itself when the signal is per pod) on the node with the most free
   cores, and only while that node's allocatable holds one more unit (2 cores and 150 MB
   beyond every pod's requests): never past 100 % of a node;
3. growth is remembered per pod for the rest of the epoch (the plan's size + growth is the
   target every later pass converges to) and forgotten at the next epoch, whose plan's sizes
   win.

Pure: decisions from a :class:`~casa_sched.autoscaler.snapshot.LiveState`, the plan and the
metrics source's answers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from casa_sched.autoscaler.actions import match_pods
from casa_sched.autoscaler.snapshot import LivePod, LiveState
from casa_sched.contract.cluster import SimParams, units_of
from casa_sched.contract.plan import Plan


@dataclass(frozen=True)
class Saturation:
    """A function whose pods are saturated, how busy it is, and (for a CPU signal) which pods."""

    function: str
    load: float  # requests in flight, else cores in use / request_cpu_cores
    hot_pods: tuple[str, ...] = ()  # pod keys at their CPU allocation (empty: any pod may grow)


def _slots(cpu_cores: float, params: SimParams) -> int:
    return math.floor(cpu_cores / params.request_cpu_cores + 1e-9)


def saturated(
    state: LiveState,
    plan: Plan,
    managed: Iterable[str],
    params: SimParams,
    in_flight: Mapping[str, float],
    cpu_usage_cores: Mapping[str, float],
    saturation_cpu_ratio: float,
) -> list[Saturation]:
    """The saturated functions among ``managed``, busiest first.

    ``cpu_usage_cores`` is keyed by ``namespace/name``; a pod absent from it gives no CPU signal.
    """
    out: list[Saturation] = []
    for function in sorted(set(managed)):
        w = state.workload_of(function)
        if w is None:
            continue
        placed, _ = match_pods([p for p in state.pods_of(w) if not p.deleting], w, plan)
        running = [p for p, _ in placed if p.running and w.container in p.containers]
        if not running:
            continue
        slots = sum(_slots(p.containers[w.container][0], params) for p in running)
        hot: list[str] = []
        used = 0.0
        for p in running:
            usage = cpu_usage_cores.get(f"{p.namespace}/{p.name}")
            if usage is None:
                continue
            used += usage
            if usage >= saturation_cpu_ratio * p.containers[w.container][0] - 1e-9:
                hot.append(p.key)
        flying = in_flight.get(function)
        if flying is not None and flying > slots:
            out.append(Saturation(function, flying, ()))
        elif hot:
            out.append(Saturation(function, flying if flying is not None else used / params.request_cpu_cores,
                                  tuple(hot)))  # fmt: skip
    out.sort(key=lambda s: (-s.load, s.function))
    return out


def grow(
    state: LiveState,
    plan: Plan,
    saturations: Iterable[Saturation],
    params: SimParams,
    grown: Mapping[str, int],
) -> dict[str, int]:
    """``grown`` plus one unit for one pod of each saturated function that has room, busiest first.

    A pod is grown only up to ``max_container_size`` and only on a node whose free allocatable
    (after every pod's requests and the growths decided here) holds one more base unit.
    """
    from casa_sched.autoscaler.snapshot import MIB

    unit_cpu, unit_mem = params.base_cpu_cores, params.base_memory_mb * MIB
    free = {n.name: [n.cpu_cores, n.memory_bytes] for n in state.nodes}
    for p in state.pods:
        if p.node in free:
            free[p.node][0] -= p.cpu_cores
            free[p.node][1] -= p.memory_bytes
    out = dict(grown)
    for s in saturations:
        w = state.workload_of(s.function)
        if w is None:
            continue
        placed, _ = match_pods([p for p in state.pods_of(w) if not p.deleting], w, plan)
        candidates: list[tuple[LivePod, int]] = []
        for p, size in placed:
            if not p.running or p.node not in free or w.container not in p.containers:
                continue
            if s.hot_pods and p.key not in s.hot_pods:
                continue
            target = size + out.get(p.key, 0)
            current = units_of(p.containers[w.container][0], params)
            if target != current:  # a resize towards an earlier target is still under way
                continue
            if target >= params.max_container_size:
                continue
            node_free = free[p.node]
            if node_free[0] + 1e-9 < unit_cpu or node_free[1] + 1.0 < unit_mem:
                continue
            candidates.append((p, target))
        if not candidates:
            continue
        pod, _ = max(candidates, key=lambda c: (free[str(c[0].node)][0], c[0].name))
        out[pod.key] = out.get(pod.key, 0) + 1
        free[str(pod.node)][0] -= unit_cpu
        free[str(pod.node)][1] -= unit_mem
    return out
