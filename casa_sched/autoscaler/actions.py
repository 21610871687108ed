"""From a plan and the cluster as it is to the list of changes that make it so. Pure.

:func:`compute_actions` compares each managed function's pods with its planned containers and
returns :class:`Action` records; :mod:`casa_sched.autoscaler.apply` executes them. Keeping the
decision pure is what makes ``--dry-run`` exact (the table it prints is the list that would be
executed) and re-applying an applied plan free (the list is empty, so no write call is made).

Per function:

1. **match** its pods to its planned containers node by node: on each node the largest planned
   containers go to the running pods with the most CPU (fewest resizes), ties by name;
   unscheduled pods and pods on nodes the plan does not use for it are *unplaced*;
2. **scale-down order**: when the plan keeps fewer pods than run, unplaced pods get
   ``controller.kubernetes.io/pod-deletion-cost = -1000`` (the ReplicaSet deletes the lowest
   cost first) and placed pods lose that mark if an earlier epoch left it; nothing is marked
   when the function scales to zero;
3. **replicas**: the planned container count (at most the platform's limit);
4. **sizes**: each running placed pod's function container gets ``k × base_cpu_cores`` CPU and
   ``k × base_memory_mb`` MiB memory (requests and limits), ``k`` the planned size plus any
   intra-epoch growth of this epoch; a growth that the node's allocatable cannot hold now is
   left for a later pass (and reported), never forced.

Order of execution: deletion costs, scale-downs, shrinks, scale-ups, growths, so that capacity
is freed before it is claimed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from casa_sched.autoscaler.adapters.base import Workload
from casa_sched.autoscaler.snapshot import MIB, LivePod, LiveState
from casa_sched.contract.cluster import SimParams
from casa_sched.contract.plan import Plan

DELETION_COST_UNPLACED = "-1000"
_CPU_EPS = 1e-6  # cores
_MEM_EPS = 1.0  # bytes


@dataclass(frozen=True)
class ScaleAction:
    """Set a workload's replica count."""

    kind: ClassVar[str] = "scale"
    function: str
    workload: Workload
    current: int | None
    replicas: int

    @property
    def down(self) -> bool:
        return self.current is not None and self.replicas < self.current

    def row(self) -> dict[str, Any]:
        return {"kind": self.kind, "function": self.function, "namespace": self.workload.namespace,
                "target": f"{self.workload.platform}/{self.workload.name}", "current": self.current,
                "desired": self.replicas, "reason": "plan"}  # fmt: skip


@dataclass(frozen=True)
class DeletionCostAction:
    """Set (``cost``) or remove (``None``) a pod's deletion-cost annotation."""

    kind: ClassVar[str] = "deletion_cost"
    function: str
    namespace: str
    pod: str
    current: str | None
    cost: str | None

    def row(self) -> dict[str, Any]:
        return {"kind": self.kind, "function": self.function, "namespace": self.namespace, "target": f"pod/{self.pod}",
                "current": self.current, "desired": self.cost,
                "reason": "unplaced" if self.cost is not None else "placed again"}  # fmt: skip


@dataclass(frozen=True)
class ResizeAction:
    """Resize a pod's function container in place to ``units`` base units."""

    kind: ClassVar[str] = "resize"
    function: str
    namespace: str
    pod: str
    pod_key: str
    container: str
    node: str
    current_cpu_cores: float
    current_memory_bytes: float
    units: int
    cpu_cores: float
    memory_bytes: float
    reason: Literal["plan", "intra"] = "plan"

    @property
    def grows(self) -> bool:
        return self.cpu_cores > self.current_cpu_cores + _CPU_EPS

    def row(self) -> dict[str, Any]:
        return {"kind": self.kind, "function": self.function, "namespace": self.namespace, "target": f"pod/{self.pod}",
                "current": f"{self.current_cpu_cores:g} cores/{self.current_memory_bytes / MIB:g} MiB",
                "desired": f"{self.cpu_cores:g} cores/{self.memory_bytes / MIB:g} MiB (k={self.units})",
                "reason": self.reason}  # fmt: skip


Action = ScaleAction | DeletionCostAction | ResizeAction


@dataclass(frozen=True)
class Deferred:
    """A change the plan wants that cannot be made yet (reported, retried by a later pass)."""

    function: str
    pod: str
    reason: str


def size_resources(units: int, params: SimParams) -> tuple[float, float]:
    """(cpu cores, memory bytes) of a container of ``units`` base units.

    >>> size_resources(3, SimParams())
    (6.0, 471859200.0)
    """
    return units * params.base_cpu_cores, units * params.base_memory_mb * MIB


def match_pods(pods: Iterable[LivePod], workload: Workload, plan: Plan) -> tuple[list[tuple[LivePod, int]], list[LivePod]]:
    """(placed pods with their planned size, unplaced pods) for one function. Pure, deterministic."""
    by_node: dict[str, list[int]] = {}
    for c in plan.containers_of(workload.function):
        by_node.setdefault(c.node, []).append(c.size)
    pods_by_node: dict[str | None, list[LivePod]] = {}
    for p in pods:
        pods_by_node.setdefault(p.node, []).append(p)
    placed: list[tuple[LivePod, int]] = []
    unplaced: list[LivePod] = []
    for node, node_pods in sorted(pods_by_node.items(), key=lambda kv: kv[0] or ""):
        sizes = sorted(by_node.get(node, []) if node is not None else [], reverse=True)

        def order(p: LivePod) -> tuple[bool, float, str]:
            cpu = p.containers.get(workload.container, (0.0, 0.0))[0]
            return (not p.running, -cpu, p.name)

        ranked = sorted(node_pods, key=order)
        placed.extend(zip(ranked, sizes, strict=False))
        unplaced.extend(ranked[len(sizes) :])
    return placed, unplaced


def _node_free(state: LiveState) -> dict[str, list[float]]:
    """Per usable node, [free cpu cores, free memory bytes] after every pod's requests."""
    free = {n.name: [n.cpu_cores, n.memory_bytes] for n in state.nodes}
    for p in state.pods:
        if p.node in free:
            free[p.node][0] -= p.cpu_cores
            free[p.node][1] -= p.memory_bytes
    return free


def compute_actions(
    state: LiveState,
    plan: Plan,
    managed: Iterable[str],
    params: SimParams,
    grown: Mapping[str, int] | None = None,
) -> tuple[list[Action], list[Deferred]]:
    """The actions that make ``state`` match ``plan`` for the ``managed`` functions, in execution
    order, and the changes deferred for lack of headroom or because the pod is not running yet.

    ``grown`` maps a pod key to the units intra-epoch autoscaling added to it this epoch.
    """
    grown = grown or {}
    costs: list[Action] = []
    downs: list[Action] = []
    ups: list[Action] = []
    resizes: list[ResizeAction] = []
    deferred: list[Deferred] = []
    for function in sorted(set(managed)):
        w = state.workload_of(function)
        if w is None:
            continue
        pods = [p for p in state.pods_of(w) if not p.deleting]
        desired = len(plan.containers_of(function))
        if w.max_replicas is not None:
            desired = min(desired, w.max_replicas)
        placed, unplaced = match_pods(pods, w, plan)
        if 0 < desired < len(pods):
            for p in unplaced:
                if p.node is not None and p.deletion_cost != DELETION_COST_UNPLACED:
                    costs.append(DeletionCostAction(function, p.namespace, p.name, p.deletion_cost, DELETION_COST_UNPLACED))
            for p, _ in placed:
                if p.deletion_cost == DELETION_COST_UNPLACED:
                    costs.append(DeletionCostAction(function, p.namespace, p.name, p.deletion_cost, None))
        current = w.replicas if w.replicas is not None else len(pods)
        if desired != current:
            (downs if desired < current else ups).append(ScaleAction(function, w, current, desired))
        elif len(pods) != desired or any(p.node is None for p in pods):
            bound = sum(p.node is not None for p in pods)
            deferred.append(Deferred(function, "-", f"{bound} of {desired} pods bound ({len(pods)} exist)"))
        for p, size in placed:
            res = p.containers.get(w.container)
            if res is None:
                deferred.append(Deferred(function, p.name, f"no container {w.container!r} in the pod"))
                continue
            units = min(params.max_container_size, size + grown.get(p.key, 0))
            cpu, mem = size_resources(units, params)
            if math.isclose(res[0], cpu, abs_tol=_CPU_EPS) and math.isclose(res[1], mem, abs_tol=_MEM_EPS):
                continue
            if not p.running:
                deferred.append(Deferred(function, p.name, f"resize to k={units} waits until the pod runs"))
                continue
            resizes.append(ResizeAction(function, p.namespace, p.name, p.key, w.container, p.node or "",
                                        res[0], res[1], units, cpu, mem,
                                        "intra" if grown.get(p.key) else "plan"))  # fmt: skip
    free = _node_free(state)
    shrinks = [r for r in resizes if not r.grows]
    grows: list[Action] = []
    for r in shrinks:
        if r.node in free:
            free[r.node][0] += r.current_cpu_cores - r.cpu_cores
            free[r.node][1] += r.current_memory_bytes - r.memory_bytes
    for r in (r for r in resizes if r.grows):
        need_cpu, need_mem = r.cpu_cores - r.current_cpu_cores, r.memory_bytes - r.current_memory_bytes
        f = free.get(r.node)
        if f is None or f[0] + _CPU_EPS < need_cpu or f[1] + _MEM_EPS < need_mem:
            deferred.append(Deferred(r.function, r.pod, f"grow to k={r.units} needs {need_cpu:g} cores free on "
                                                        f"{r.node}"))  # fmt: skip
            continue
        f[0] -= need_cpu
        f[1] -= need_mem
        grows.append(r)
    return [*costs, *downs, *shrinks, *ups, *grows], deferred


def action_table(actions: Iterable[Action]) -> str:
    """A fixed-width table of actions, one per line (``--dry-run`` output)."""
    rows = [a.row() for a in actions]
    cols = ("kind", "function", "namespace", "target", "current", "desired", "reason")
    cells = [[("-" if r[c] is None else str(r[c])) for c in cols] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(cols)]
    lines = ["  ".join(c.upper().ljust(widths[i]) for i, c in enumerate(cols)).rstrip()]
    lines += ["  ".join(v.ljust(widths[i]) for i, v in enumerate(row)).rstrip() for row in cells]
    return "\n".join(lines)
