"""Knative Pod Autoscaler replica counts and Kubernetes' default node scoring, shared by baselines.

KPA (knative/serving pkg/autoscaler, config defaults): target concurrency
per pod = 0.7 × the container's concurrency limit; desired pods = ceil(observed concurrency /
target); scale to zero when idle. Our per-epoch analogue observes the forecast's busiest minute
(KPA's stable window is 60 s).

Kubernetes NodeResourcesFit (LeastAllocated or MostAllocated) and BalancedAllocation
(pkg/scheduler/framework/plugins/noderesources), integer arithmetic as in the scheduler, the
incoming pod's request included, weight 1 each; PodTopologySpread's soft system default
(pkg/scheduler/framework/plugins/podtopologyspread/scoring.go: maxSkew 3 per hostname, weight 2;
raw score ``round(matching pods on the node · ln(nodes + 2) + maxSkew − 1)``, normalised to
``100 · (max + min − s) // max``); ties broken by a seeded random choice. The zone constraint of
the system default (maxSkew 5) is inert: simulated nodes carry no zone label.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np

from casa_sched.contract.forecast import Forecast
from casa_sched.contract.snapshot import ClusterSnapshot
from casa_sched.planners._common import peak_concurrency

KPA_TARGET_UTILISATION = 0.7
MAX_NODE_SCORE = 100
FIT_WEIGHT = 1  # NodeResourcesFit
BALANCED_WEIGHT = 1  # NodeResourcesBalancedAllocation
SPREAD_WEIGHT = 2  # PodTopologySpread
SPREAD_MAX_SKEW = 3  # system default constraint per kubernetes.io/hostname (ScheduleAnyway)


def kpa_replicas(concurrency: float, container_concurrency: float) -> int:
    """``ceil(concurrency / (0.7 · container_concurrency))``; 0 when idle (scale to zero)."""
    if concurrency <= 0:
        return 0
    return max(1, math.ceil(concurrency / (KPA_TARGET_UTILISATION * container_concurrency) - 1e-9))


def least_allocated(requested: int, capacity: int) -> int:
    """``(capacity − requested) · 100 / capacity`` (0 if over), integer division as in the scheduler."""
    if capacity <= 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


def most_allocated(requested: int, capacity: int) -> int:
    """``min(requested, capacity) · 100 / capacity``."""
    if capacity <= 0:
        return 0
    return min(requested, capacity) * MAX_NODE_SCORE // capacity


def balanced_allocation(cpu_fraction: float, mem_fraction: float) -> int:
    """``(1 − |f_cpu − f_mem| / 2) · 100`` with both fractions capped at 1 (two resources)."""
    f_cpu, f_mem = min(cpu_fraction, 1.0), min(mem_fraction, 1.0)
    return int((1.0 - abs(f_cpu - f_mem) / 2.0) * MAX_NODE_SCORE)


def topology_spread(matching_pods: Sequence[int], max_skew: int = SPREAD_MAX_SKEW) -> list[int]:
    """PodTopologySpread's normalised scores (0..100) for the feasible nodes, given the pods of the
    incoming pod's function already on each: raw ``round(cnt · ln(n + 2) + maxSkew − 1)`` with n the
    number of feasible nodes, then ``100 · (max + min − raw) // max`` (100 everywhere if max = 0)."""
    weight = math.log(len(matching_pods) + 2)
    raw = [math.floor(c * weight + (max_skew - 1) + 0.5) for c in matching_pods]  # Go's math.Round (half away from 0)
    hi, lo = max(raw, default=0), min(raw, default=0)
    if hi == 0:
        return [MAX_NODE_SCORE] * len(raw)
    return [MAX_NODE_SCORE * (hi + lo - r) // hi for r in raw]


def score_nodes(
    cpu_used_m: Sequence[int],
    mem_used_mb: Sequence[int],
    cpu_cap_m: Sequence[int],
    mem_cap_mb: Sequence[int],
    pod_cpu_m: int,
    pod_mem_mb: int,
    strategy: str = "least",
    matching_pods: Sequence[int] | None = None,
) -> list[int]:
    """Per node: NodeResourcesFit (cpu and memory averaged) + BalancedAllocation, plus 2 ×
    PodTopologySpread when ``matching_pods`` (the function's pods per node) is given; −1 if the
    pod does not fit (NodeResourcesFit's filter)."""
    fit = least_allocated if strategy == "least" else most_allocated
    out = []
    for cu, mu, cc, mc in zip(cpu_used_m, mem_used_mb, cpu_cap_m, mem_cap_mb, strict=True):
        rc, rm = cu + pod_cpu_m, mu + pod_mem_mb
        if rc > cc or rm > mc:
            out.append(-1)
            continue
        resource = (fit(rc, cc) + fit(rm, mc)) // 2
        out.append(FIT_WEIGHT * resource + BALANCED_WEIGHT * balanced_allocation(rc / cc, rm / mc))
    if matching_pods is not None:
        feasible = [i for i, s in enumerate(out) if s >= 0]
        spread = topology_spread([matching_pods[i] for i in feasible])
        for i, s in zip(feasible, spread, strict=True):
            out[i] += SPREAD_WEIGHT * s
    return out


def pick(scores: Sequence[int], rng: np.random.Generator) -> int | None:
    """The best-scoring node, ties broken at random; ``None`` if none fits."""
    best = max(scores, default=-1)
    if best < 0:
        return None
    ties = [i for i, s in enumerate(scores) if s == best]
    return int(ties[int(rng.integers(len(ties)))]) if len(ties) > 1 else ties[0]


def round_robin(replicas: Sequence[int]) -> list[int]:
    """Pod creation order when every function's replicas are created together: the first
    replica of each function (in the given order), then the second of those that want two, …
    (kube-scheduler's queue takes pods in creation order)."""
    order: list[int] = []
    for k in range(max(replicas, default=0)):
        order.extend(i for i, n in enumerate(replicas) if n > k)
    return order


def kube_schedule(
    snapshot: ClusterSnapshot,
    function_ids: Sequence[str],
    replicas: Sequence[int],
    strategy: str,
    rng: np.random.Generator,
    deadline: float = math.inf,
) -> dict[str, list[tuple[int, int]]] | None:
    """Size-1 pods for ``replicas[i]`` of ``function_ids[i]``, as kube-scheduler would bind them.

    Running pods (the previous plan's, on their nodes) stay where they are, up to the new replica
    count (a real cluster does not reschedule them; KPA's scale-down removes the surplus). The
    new pods are created round-robin over the functions in the given order and scheduled one at a
    time: filter on cpu and memory requests, score by :func:`score_nodes` with the function's
    pods per node for PodTopologySpread, seeded random tie-break; a pod that fits nowhere stays
    pending. Returns ``{function: [(node index, 1), ...]}``, or None once the ``perf_counter()``
    clock passes ``deadline`` (CASA's safe start builds this plan only while it is cheap).
    """
    p = snapshot.params
    nodes = snapshot.cluster.nodes
    pod_cpu_m = round(p.base_cpu_cores * 1000)
    pod_mem_mb = round(p.base_memory_mb)
    cpu_cap = [int(n.cores * 1000) for n in nodes]
    mem_cap = [int(n.memory_mb) for n in nodes]
    cpu_used = [0] * len(nodes)
    mem_used = [0] * len(nodes)
    left = list(replicas)
    matching = [[0] * len(nodes) for _ in function_ids]  # each function's pods per node
    layout: dict[str, list[tuple[int, int]]] = {}
    index = {name: i for i, name in enumerate(snapshot.cluster.node_names)}
    for k, fid in enumerate(function_ids):
        running = snapshot.previous.containers_of(fid) if snapshot.previous else ()
        for c in running:
            n = index.get(c.node)
            if left[k] == 0:
                break
            if n is None or cpu_used[n] + pod_cpu_m > cpu_cap[n] or mem_used[n] + pod_mem_mb > mem_cap[n]:
                continue
            cpu_used[n] += pod_cpu_m
            mem_used[n] += pod_mem_mb
            matching[k][n] += 1
            left[k] -= 1
            layout.setdefault(fid, []).append((n, 1))
    for k in round_robin(left):
        if time.perf_counter() >= deadline:
            return None
        scores = score_nodes(cpu_used, mem_used, cpu_cap, mem_cap, pod_cpu_m, pod_mem_mb, strategy, matching[k])
        n = pick(scores, rng)
        if n is None:
            break  # every pod has the same requests: if this one fits nowhere, none does
        cpu_used[n] += pod_cpu_m
        mem_used[n] += pod_mem_mb
        matching[k][n] += 1
        layout.setdefault(function_ids[k], []).append((n, 1))
    return layout


def kpa_score_layout(
    snapshot: ClusterSnapshot,
    forecast: Forecast,
    seed: int,
    strategy: str = "least",
    deadline: float = math.inf,
) -> dict[str, list[tuple[int, int]]] | None:
    """The Score baseline's layout: KPA replica counts for each function's peak-minute
    concurrency, pods created in descending peak and bound by :func:`kube_schedule` (seeded per
    epoch); None if ``deadline`` passes first."""
    rng = np.random.default_rng([seed, forecast.epoch])
    conc = peak_concurrency(forecast)
    order = np.argsort(-conc, kind="stable").tolist()
    replicas = [kpa_replicas(float(conc[f]), snapshot.params.slots_per_unit) for f in order]
    ids = [forecast.function_ids[f] for f in order]
    return kube_schedule(snapshot, ids, replicas, strategy, rng, deadline)
