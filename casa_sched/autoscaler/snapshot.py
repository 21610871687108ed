"""The cluster as the planner sees it, read from the Kubernetes API (paper §V.A: N, D_{e-1}).

Two halves, kept apart:

- **pure conversion** (:func:`node_from_json`, :func:`pod_from_json`, :func:`planner_snapshot`):
  Node and Pod JSON (as the API server serialises them) → frozen :class:`LiveNode` /
  :class:`LivePod` → the planner's :class:`~casa_sched.planners.base.ClusterSnapshot` with the
  previous epoch's container distribution D_{e-1} as a :class:`~casa_sched.contract.plan.Plan`;
- **listing I/O** (:func:`read_state`): one LIST of nodes, one LIST of non-terminal pods and
  one discovery per platform adapter.

What counts (documented choices):

- A node is usable when its ``Ready`` condition is ``True`` and ``spec.unschedulable`` is not
  set, or when casa itself powered it down (``casa.dev/power-state`` draining, sleeping or
  waking: :mod:`.power`), so the planner can keep it asleep or wake it; taints are not
  interpreted (a function that tolerates none simply will not be placed there by
  kube-scheduler, which the extender never overrides).
- Its power curve (eq. 2) is the ``casa.dev/power-model`` annotation the profiler publishes;
  without one, the default node's curve; a malformed one also falls back to the default, with a
  warning and ``casa_node_power_model_invalid{node} = 1``.
- The planner's capacity of a node is its allocatable minus what the pods it does not manage
  request there: pods of no function, pods of functions held out of this epoch's plan, pods
  still terminating, and the sidecars of function pods (Knative's queue-proxy). Managed function containers are what the
  planner redistributes.
- A function pod's size is its function container's CPU request in base units (the size the
  kubelet reports as applied, when it reports one: a resize found Infeasible did not happen)
  (``round(cpu / base_cpu_cores)``, at least 1, at most ``max_container_size``): 2 cores and
  150 MB (MiB, as node memory) per unit (paper §VI.A).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

from casa_sched.autoscaler.adapters.base import PlatformAdapter, Workload
from casa_sched.autoscaler.power import POWERED_DOWN
from casa_sched.contract.cluster import ClusterSpec, NodeSpec, SimParams, units_of
from casa_sched.contract.plan import Container, Plan
from casa_sched.contract.snapshot import ClusterSnapshot, site_water
from casa_sched.conventions import POD_DELETION_COST_ANNOTATION, POWER_STATE_ANNOTATION
from casa_sched.kube.objects import ObjectError, parse_node, parse_pod
from casa_sched.kube.quantity import QuantityError, parse_quantity
from casa_sched.models.power import DEFAULT_NODE_CURVE, PowerCurve, PowerModelError
from casa_sched.settings import CasaSettings

log = logging.getLogger(__name__)

MIB = 2.0**20  # the "MB" of plan sizes and node memory settings (64 GB = 65536 MB)


@dataclass(frozen=True)
class LiveNode:
    """A usable node: allocatable resources and its power curve."""

    name: str
    cpu_cores: float
    memory_bytes: float
    curve: PowerCurve
    power_model: str  # "annotation" | "default" (no annotation) | "invalid" (malformed: default used)
    power_model_error: str | None = None


@dataclass(frozen=True)
class LivePod:
    """A non-terminal pod: where it runs, what it requests, and its function container's size."""

    key: str  # metadata.uid, else namespace/name
    namespace: str
    name: str
    labels: Mapping[str, str]
    node: str | None  # spec.nodeName, None while unscheduled
    phase: str
    deleting: bool
    cpu_cores: float  # effective request of the whole pod (scheduler's rule), cores
    memory_bytes: float
    containers: Mapping[str, tuple[float, float]]  # container name → (cpu request cores, memory request bytes)
    deletion_cost: str | None = None  # controller.kubernetes.io/pod-deletion-cost
    resize_pending: str | None = None  # reason of the PodResizePending condition (Deferred | Infeasible)
    resize_in_progress: bool = False
    allocated: Mapping[str, tuple[float, float]] = field(default_factory=lambda: MappingProxyType({}))
    # status.containerStatuses[].resources.requests: what the kubelet has applied, per container
    raw: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), compare=False, repr=False)
    # the pod's JSON as listed (the resize decisions read it)

    @property
    def running(self) -> bool:
        return self.phase == "Running" and not self.deleting


@dataclass(frozen=True)
class LiveState:
    """Everything one epoch reads from the cluster."""

    nodes: tuple[LiveNode, ...]
    workloads: tuple[Workload, ...]
    pods: tuple[LivePod, ...]
    warnings: tuple[str, ...] = ()

    # Indexes built on first use (the state is frozen): an epoch asks for every function's pods,
    # and a scan per function is O(functions × pods), 1 s at 500 functions.
    @cached_property
    def _nodes_by_name(self) -> dict[str, LiveNode]:
        return {n.name: n for n in self.nodes}

    @cached_property
    def _pods_by_label(self) -> dict[tuple[str, str, str], list[LivePod]]:
        index: dict[tuple[str, str, str], list[LivePod]] = {}
        for p in self.pods:
            for k, v in p.labels.items():
                index.setdefault((p.namespace, k, v), []).append(p)
        return index

    @cached_property
    def _workloads_by_function(self) -> dict[str, Workload]:
        out: dict[str, Workload] = {}
        for w in self.workloads:
            out.setdefault(w.function, w)
        return out

    def node(self, name: str) -> LiveNode | None:
        return self._nodes_by_name.get(name)

    def pods_of(self, workload: Workload) -> tuple[LivePod, ...]:
        """The workload's pods: its namespace, every selector label matching."""
        sel = sorted(workload.pod_selector.items())
        if not sel:
            return ()
        k0, v0 = sel[0]
        candidates = self._pods_by_label.get((workload.namespace, k0, v0), [])
        return tuple(p for p in candidates if all(p.labels.get(k) == v for k, v in sel[1:]))

    def workload_of(self, function: str) -> Workload | None:
        return self._workloads_by_function.get(function)


# -- pure conversion ----------------------------------------------------------------------------
def _conditions(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    raw = status.get("conditions")
    if not isinstance(raw, list):
        return {}
    return {c["type"]: c for c in raw if isinstance(c, dict) and isinstance(c.get("type"), str)}


def node_from_json(obj: Any) -> LiveNode | None:
    """A usable node from Node JSON, or None when it is not Ready or is cordoned.

    Raises :class:`ObjectError` when a field read is malformed (no name, bad allocatable).
    """
    info = parse_node(obj)
    status = obj.get("status") or {}
    ready = _conditions(status if isinstance(status, dict) else {}).get("Ready", {})
    spec = obj.get("spec") or {}
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {} if isinstance(meta, dict) else {}
    powered_down = isinstance(annotations, dict) and annotations.get(POWER_STATE_ANNOTATION) in POWERED_DOWN
    if not powered_down and (
        ready.get("status") != "True" or (isinstance(spec, dict) and spec.get("unschedulable") is True)
    ):
        return None
    if info.allocatable_cpu_cores is None or info.allocatable_memory_bytes is None:
        raise ObjectError(f"Node {info.name}.status.allocatable", "cpu and memory are required")
    if not info.power_model:
        return LiveNode(info.name, info.allocatable_cpu_cores, info.allocatable_memory_bytes, DEFAULT_NODE_CURVE,
                        "default")  # fmt: skip
    try:
        curve = PowerCurve.from_json(info.power_model)
    except PowerModelError as exc:
        return LiveNode(info.name, info.allocatable_cpu_cores, info.allocatable_memory_bytes, DEFAULT_NODE_CURVE,
                        "invalid", str(exc))  # fmt: skip
    return LiveNode(info.name, info.allocatable_cpu_cores, info.allocatable_memory_bytes, curve, "annotation")


def _requests(resources: Any, key: str, path: str) -> tuple[float, float]:
    rl = resources.get(key) if isinstance(resources, dict) else None
    if not isinstance(rl, dict):
        return 0.0, 0.0
    try:
        cpu = parse_quantity(rl["cpu"]) if isinstance(rl.get("cpu"), str) else 0.0
        mem = parse_quantity(rl["memory"]) if isinstance(rl.get("memory"), str) else 0.0
    except QuantityError as exc:
        raise ObjectError(f"{path}.{key}", str(exc)) from exc
    return cpu, mem


def _pending_reason(condition: Mapping[str, Any] | None) -> str | None:
    if condition is None or condition.get("status") != "True":
        return None
    return str(condition.get("reason") or "Pending")


def pod_from_json(obj: Any) -> LivePod:
    """A :class:`LivePod` from Pod JSON; raises :class:`ObjectError` naming a malformed field."""
    info = parse_pod(obj)
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    containers: dict[str, tuple[float, float]] = {}
    for i, c in enumerate(spec.get("containers") or []):
        if isinstance(c, dict) and isinstance(c.get("name"), str):
            containers[c["name"]] = _requests(c.get("resources"), "requests", f"Pod.spec.containers[{i}].resources")
    allocated: dict[str, tuple[float, float]] = {}
    for i, cs in enumerate(status.get("containerStatuses") or [] if isinstance(status, dict) else []):
        if isinstance(cs, dict) and isinstance(cs.get("name"), str) and isinstance(cs.get("resources"), dict):
            allocated[cs["name"]] = _requests(cs["resources"], "requests", f"Pod.status.containerStatuses[{i}].resources")
    conds = _conditions(status if isinstance(status, dict) else {})
    pending = conds.get("PodResizePending")
    in_progress = conds.get("PodResizeInProgress")
    phase = status.get("phase") if isinstance(status, dict) else None
    cost = annotations.get(POD_DELETION_COST_ANNOTATION) if isinstance(annotations, dict) else None
    return LivePod(
        key=info.key,
        namespace=info.namespace,
        name=info.name,
        labels=MappingProxyType(dict(labels)),
        node=info.node_name,
        phase=phase if isinstance(phase, str) else "Unknown",
        deleting=info.terminating,
        cpu_cores=info.cpu_cores,
        memory_bytes=info.memory_bytes,
        containers=MappingProxyType(containers),
        deletion_cost=cost if isinstance(cost, str) else None,
        resize_pending=_pending_reason(pending),
        resize_in_progress=in_progress is not None and in_progress.get("status") == "True",
        allocated=MappingProxyType(allocated),
        raw=obj,
    )


def build_state(
    node_items: Iterable[Any], pod_items: Iterable[Any], workloads: Sequence[Workload]
) -> LiveState:
    """A :class:`LiveState` from listed JSON; malformed objects are skipped with a warning each."""
    warnings: list[str] = []
    nodes: list[LiveNode] = []
    for obj in node_items:
        try:
            node = node_from_json(obj)
        except ObjectError as exc:
            warnings.append(f"node skipped: {exc}")
            continue
        if node is None:
            continue
        if node.power_model == "invalid":
            warnings.append(f"node {node.name}: malformed casa.dev/power-model ({node.power_model_error}); "
                            "using the default node's curve")  # fmt: skip
        nodes.append(node)
    pods: list[LivePod] = []
    for obj in pod_items:
        try:
            pods.append(pod_from_json(obj))
        except ObjectError as exc:
            warnings.append(f"pod skipped: {exc}")
    nodes.sort(key=lambda n: n.name)
    return LiveState(tuple(nodes), tuple(workloads), tuple(pods), tuple(warnings))


def function_container(pod: LivePod, workload: Workload) -> tuple[float, float] | None:
    """(cpu cores, memory bytes) requested by the workload's function container in ``pod``."""
    return pod.containers.get(workload.container)


def previous_plan(state: LiveState, managed: Iterable[str], params: SimParams, epoch: int) -> Plan:
    """D_{e-1}: the containers of the ``managed`` functions that are bound to a usable node now."""
    usable = {n.name for n in state.nodes}
    containers: dict[str, list[Container]] = {}
    for function in sorted(set(managed)):
        workload = state.workload_of(function)
        if workload is None:
            continue
        for pod in state.pods_of(workload):
            res = pod.allocated.get(workload.container) or function_container(pod, workload)
            if pod.deleting or pod.node not in usable or res is None:
                continue
            containers.setdefault(function, []).append(Container(str(pod.node), units_of(res[0], params)))
    return Plan(
        epoch=epoch,
        containers={f: tuple(sorted(cs, key=lambda c: (c.node, c.size))) for f, cs in containers.items()},
        epoch_length_s=params.epoch_s,
        base_cpu_cores=params.base_cpu_cores,
        base_memory_mb=params.base_memory_mb,
    )


def unmanaged_requests(state: LiveState, managed: Iterable[str]) -> dict[str, tuple[float, float]]:
    """Per node, (cores, bytes) requested by what the planner does not redistribute."""
    managed_set = set(managed)
    own: dict[str, str] = {}  # pod key → its function container, for managed function pods
    for w in state.workloads:
        if w.function in managed_set:
            for pod in state.pods_of(w):
                own[pod.key] = w.container
    out: dict[str, tuple[float, float]] = {}
    for pod in state.pods:
        if pod.node is None:
            continue
        cpu, mem = pod.cpu_cores, pod.memory_bytes
        container = own.get(pod.key)
        if container is not None and container in pod.containers and not pod.deleting:
            c_cpu, c_mem = pod.containers[container]
            cpu, mem = max(cpu - c_cpu, 0.0), max(mem - c_mem, 0.0)
        u_cpu, u_mem = out.get(pod.node, (0.0, 0.0))
        out[pod.node] = (u_cpu + cpu, u_mem + mem)
    return out


def planner_snapshot(
    state: LiveState, managed: Iterable[str], settings: CasaSettings, params: SimParams, epoch: int
) -> ClusterSnapshot:
    """The planner's view: one :class:`NodeSpec` per usable node (capacity net of unmanaged
    requests), the model parameters and D_{e-1} (as epoch ``epoch - 1``)."""
    managed = tuple(managed)
    if not state.nodes:
        raise ValueError("no Ready, schedulable node to plan on")
    used = unmanaged_requests(state, managed)
    hops = settings.cluster.switch_hops
    nodes = []
    for i, n in enumerate(state.nodes):
        u_cpu, u_mem = used.get(n.name, (0.0, 0.0))
        nodes.append(NodeSpec(
            name=n.name,
            cores=max(0, math.floor(n.cpu_cores - u_cpu + 1e-9)),
            memory_mb=max(0.0, (n.memory_bytes - u_mem) / MIB),
            curve=n.curve,
            switch_hops=hops[i % len(hops)],
        ))  # fmt: skip
    cluster = ClusterSpec.from_settings(tuple(nodes), settings)
    return ClusterSnapshot(
        cluster=cluster,
        params=params,
        previous=previous_plan(state, managed, params, epoch - 1),
        water=site_water(settings),
    )


# -- listing I/O ----------------------------------------------------------------------------------
def read_state(api_client: Any, adapters: Sequence[PlatformAdapter]) -> LiveState:
    """LIST nodes and non-terminal pods, discover every adapter's workloads.

    Raises :class:`~casa_sched.autoscaler.adapters.base.AdapterError` (retryable for timeouts,
    429 and 5xx) when a list fails.
    """
    from casa_sched.autoscaler.kubeapi import api_error, request_json

    try:
        nodes = request_json(api_client, "GET", "/api/v1/nodes").get("items") or []
        pods = request_json(api_client, "GET", "/api/v1/pods",
                            query={"fieldSelector": "status.phase!=Succeeded,status.phase!=Failed"}
                            ).get("items") or []  # fmt: skip
    except Exception as exc:
        raise api_error(exc, "list nodes and pods") from exc
    workloads: list[Workload] = []
    seen: set[str] = set()
    for adapter in adapters:
        for w in adapter.discover():
            if w.function in seen:
                log.warning("function %s has more than one workload; keeping the first, ignoring %s/%s (%s)",
                            w.function, w.namespace, w.name, w.platform)  # fmt: skip
                continue
            seen.add(w.function)
            workloads.append(w)
    return build_state(nodes, pods, workloads)
