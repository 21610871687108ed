"""Knative Pod Autoscaler replica counts and Kubernetes' default node scoring, shared by baselines.

KPA (knative/serving pkg/autoscaler, config defaults; notes/baselines.md): target concurrency
per pod = 0.7 × the container's concurrency limit; desired pods = ceil(observed concurrency /
target); scale to zero when idle. Our per-epoch analogue observes the forecast's busiest minute
(KPA's stable window is 60 s).

Kubernetes NodeResourcesFit (LeastAllocated or MostAllocated) and BalancedAllocation
(pkg/scheduler/framework/plugins/noderesources), integer arithmetic as in the scheduler, the
incoming pod's request included, weight 1 each; ties broken by a seeded random choice.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

KPA_TARGET_UTILISATION = 0.7
MAX_NODE_SCORE = 100


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


def score_nodes(
    cpu_used_m: Sequence[int],
    mem_used_mb: Sequence[int],
    cpu_cap_m: Sequence[int],
    mem_cap_mb: Sequence[int],
    pod_cpu_m: int,
    pod_mem_mb: int,
    strategy: str = "least",
) -> list[int]:
    """Per node: NodeResourcesFit (cpu and memory averaged) + BalancedAllocation; −1 if the pod does not fit."""
    fit = least_allocated if strategy == "least" else most_allocated
    out = []
    for cu, mu, cc, mc in zip(cpu_used_m, mem_used_mb, cpu_cap_m, mem_cap_mb, strict=True):
        rc, rm = cu + pod_cpu_m, mu + pod_mem_mb
        if rc > cc or rm > mc:
            out.append(-1)
            continue
        resource = (fit(rc, cc) + fit(rm, mc)) // 2
        out.append(resource + balanced_allocation(rc / cc, rm / mc))
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
