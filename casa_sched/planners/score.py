"""Score: Kubernetes' default scheduler placing Knative-KPA-sized replica sets (CASA's baseline [29]).

Replicas: KPA on the forecast's busiest minute with the container's hard concurrency limit =
its slots (20 requests on one 2-core unit), i.e. ``ceil(peak concurrency / 14)`` size-1 pods per
active function, none for idle functions (scale to zero). Placement: pods one at a time in
creation order (every function's first replica, then second replicas, …; pods already running
from the previous epoch stay put), each on the node with the highest NodeResourcesFit(LeastAllocated) +
BalancedAllocation score (weights 1/1), seeded random tie-break; a pod that fits nowhere stays
pending (its function then scales from zero in the simulator if cores free up). The CASA paper
calls its Score "improved" without saying how; ``score-mostallocated`` swaps in MostAllocated
(bin-packing scoring) as the sensitivity check. Not modelled: PodTopologySpread's soft
maxSkew 3 (spreading replicas of a function over hosts; with LeastAllocated it rarely binds).
Within the epoch the simulator's in-place autoscaler grows saturated pods for every policy alike.
"""

from __future__ import annotations

import numpy as np

from casa_sched.plan import Plan
from casa_sched.planners.base import ClusterSnapshot, PlannerConfig, register
from casa_sched.planners.common import peak_concurrency, to_plan
from casa_sched.planners.kpa import kpa_replicas, pick, round_robin, score_nodes
from casa_sched.simulator.forecast import EpochSignals, Forecast
from casa_sched.simulator.results import EpochResult


class ScorePlanner:
    """Default kube-scheduler scoring + KPA replica counts."""

    def __init__(self, strategy: str = "least", name: str = "score") -> None:
        self.strategy = strategy
        self.name = name

    def observe(self, result: EpochResult) -> None:
        """Stateless between epochs."""

    def plan(self, snapshot: ClusterSnapshot, forecast: Forecast, signals: EpochSignals, config: PlannerConfig) -> Plan:
        p = snapshot.params
        nodes = snapshot.cluster.nodes
        rng = np.random.default_rng([config.seed, forecast.epoch])
        pod_cpu_m = round(p.base_cpu_cores * 1000)
        pod_mem_mb = round(p.base_memory_mb)
        cpu_cap = [int(n.cores * 1000) for n in nodes]
        mem_cap = [int(n.memory_mb) for n in nodes]
        cpu_used = [0] * len(nodes)
        mem_used = [0] * len(nodes)
        conc = peak_concurrency(forecast)
        order = np.argsort(-conc, kind="stable").tolist()
        replicas = [kpa_replicas(float(conc[f]), p.slots_per_unit) for f in order]
        layout: dict[str, list[tuple[int, int]]] = {}
        # Running pods stay where they are (a real cluster does not reschedule them); KPA's
        # scale-down removes the surplus, scale-up creates new pods for the scheduler.
        index = {name: i for i, name in enumerate(snapshot.cluster.node_names)}
        for k, f in enumerate(order):
            fid = forecast.function_ids[f]
            running = snapshot.previous.containers_of(fid) if snapshot.previous else ()
            for c in running[: replicas[k]]:
                n = index.get(c.node)
                if n is None or cpu_used[n] + pod_cpu_m > cpu_cap[n]:
                    continue
                cpu_used[n] += pod_cpu_m
                mem_used[n] += pod_mem_mb
                layout.setdefault(fid, []).append((n, 1))
                replicas[k] -= 1
        for i in round_robin(replicas):
            scores = score_nodes(cpu_used, mem_used, cpu_cap, mem_cap, pod_cpu_m, pod_mem_mb, self.strategy)
            n = pick(scores, rng)
            if n is None:
                break  # no node fits: the rest stay pending
            cpu_used[n] += pod_cpu_m
            mem_used[n] += pod_mem_mb
            layout.setdefault(forecast.function_ids[order[i]], []).append((n, 1))
        return to_plan(forecast.epoch, snapshot.cluster, layout, snapshot.previous)


@register("score")
def _score() -> ScorePlanner:
    return ScorePlanner("least", "score")


@register("score-mostallocated")
def _score_most() -> ScorePlanner:
    return ScorePlanner("most", "score-mostallocated")
