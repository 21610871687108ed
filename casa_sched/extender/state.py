"""The extender's live view: plan, nodes, bound pods and *assumed* placements. Thread-safe.

Watch threads (pods, nodes, plan) write through :meth:`ExtenderState.replace_pods` etc.; the
request path reads under the same lock for well under a millisecond.

**Assumed placements.** kube-scheduler calls the extender's filter (and prioritize) *before* it
binds the pod, and the pod watch reports the binding only afterwards. Without help, two pods of
one function scheduled back to back would both see the last free planned slot. So the extender
keeps an *assumption* per function pod it has answered for, keyed by pod UID:

- filter that leaves exactly one node: kube-scheduler skips scoring and binds to that node, so
  the pod is assumed there. Filter makes this the normal case: while a planned slot is free it
  keeps only the best such node (see :mod:`casa_sched.extender.decide`), so planned placements
  are known exactly, not guessed;
- prioritize (only called when no planned slot is free, i.e. for overflow pods): the pod is
  assumed on the node with the (unique) highest extender score. The scheduler adds
  ``score × weight × 10`` to its plugin scores, so with the shipped weight (5) one extender
  point outweighs most plugin differences, but the final pick can differ until the watch
  shows the real binding;
- a new filter/prioritize call for the same UID (a retry) first drops the previous assumption;
- the assumption ends as soon as the pod watch shows the pod bound (its real node then counts)
  or deleted, or after ``assume_ttl_s`` (default 30 s, far above the usual bind latency of
  milliseconds; long enough to cover a slow API server, short enough that a failed binding frees
  its slot quickly).

This is the extender-side analogue of the scheduler cache's own "assumed pods". It is
per-process state: run one extender replica (the manifests do).
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from casa_sched.contract.plan import Plan
from casa_sched.extender.memo import ByteBoundedMemo
from casa_sched.kube.objects import NodeInfo, ObjectError, PodInfo, parse_node, parse_pod
from casa_sched.models.power import DEFAULT_NODE_CURVE, PowerCurve, PowerModelError

PlanStatus = Literal["ok", "missing", "invalid"]
# Byte budgets of the hot-path caches (see casa_sched.extender.memo). The per-node memos hold
# ~250 bytes per node (a 5,000-node cluster: ~1.2 MB); power curves are keyed by the annotation's
# JSON text (~300 bytes; a node sends at most 256 KiB of annotations).
NODE_MEMO_BYTES = 4 * 2**20
CURVE_MEMO_BYTES = 4 * 2**20
_CURVE_BYTES = 2048  # a parsed PowerCurve with its coefficient arrays, estimated
# Assumptions last assume_ttl_s; kube-scheduler binds a few hundred pods per second, so 30 s of
# them stays far below this. Past it the oldest assumption ends early (hostile pod streams).
MAX_ASSUMED = 20_000


@dataclass(frozen=True)
class PlanView:
    """A plan precomputed for the hot path: planned containers per function per node."""

    plan: Plan
    slots: dict[str, dict[str, int]]
    ci_g_per_kwh: float  # NaN when the plan does not say; ranking then uses power slope alone
    stale_after_unix_s: float  # past this wall-clock instant the plan is stale

    @classmethod
    def build(cls, plan: Plan, loaded_at_unix_s: float, stale_after_s: float) -> PlanView:
        # Epoch start, else the time we loaded it (a plan without a start cannot be dated).
        start = plan.epoch_start.timestamp() if plan.epoch_start is not None else loaded_at_unix_s
        return cls(
            plan=plan,
            slots={f: plan.slots_by_node(f) for f in plan.functions},
            ci_g_per_kwh=plan.inputs.ci_g_per_kwh,
            stale_after_unix_s=start + plan.epoch_length_s + stale_after_s,
        )


@dataclass
class NodeUsage:
    """Requests and function pods counted on one node (bound + assumed)."""

    cpu_cores: float = 0.0
    memory_bytes: float = 0.0
    functions: dict[str, int] = field(default_factory=dict)
    pods: int = 0  # counted pods; at 0 the entry is dropped (node names come from requests too)

    def add(self, pod: PodInfo, sign: int) -> None:
        self.pods += sign
        self.cpu_cores += sign * pod.cpu_cores
        self.memory_bytes += sign * pod.memory_bytes
        if pod.function is not None and not pod.terminating:
            n = self.functions.get(pod.function, 0) + sign
            if n:
                self.functions[pod.function] = n
            else:
                self.functions.pop(pod.function, None)


@dataclass
class _Assumed:
    pod: PodInfo
    node: str
    expires_at: float


class ExtenderState:
    """Everything a decision reads. All public methods take the lock; ``lock`` is exposed for
    the decision code, which reads several structures consistently."""

    def __init__(
        self,
        *,
        plan_stale_after_s: float = 1800.0,
        assume_ttl_s: float = 30.0,
        clock: Callable[[], float] = time.time,
        on_plan: Callable[[Plan | None, PlanStatus, str], None] | None = None,
    ) -> None:
        self.lock = threading.Lock()
        self.clock = clock
        self.plan_stale_after_s = plan_stale_after_s
        self.assume_ttl_s = assume_ttl_s
        self._on_plan = on_plan
        self.plan_view: PlanView | None = None
        self.plan_status: PlanStatus = "missing"
        self.plan_detail = "no plan loaded yet"
        self.nodes: dict[str, NodeInfo] = {}
        self.pods: dict[str, PodInfo] = {}  # bound pods (have a node), by key
        self.usage: dict[str, NodeUsage] = {}
        self.assumed: dict[str, _Assumed] = {}  # insertion order == expiry order (constant TTL)
        self._curves: ByteBoundedMemo[PowerCurve] = ByteBoundedMemo(
            _parse_curve, CURVE_MEMO_BYTES, cost=lambda text, _: sys.getsizeof(text) + _CURVE_BYTES
        )
        # Hot-path caches, invalidated per node whenever that node's usage or Node object changes.
        self.slopes: ByteBoundedMemo[float] = ByteBoundedMemo(self._slope, NODE_MEMO_BYTES)  # dP/dU, W per core
        # (free cpu cores, free memory bytes) on the node; inf = unknown
        self.free: ByteBoundedMemo[tuple[float, float]] = ByteBoundedMemo(self._free, NODE_MEMO_BYTES)
        # function → node → free planned slots (planned − live, only > 0), kept up to date on
        # every pod change, so that a decision reads it instead of scanning the plan.
        self.free_slots: dict[str, dict[str, int]] = {}

    # -- plan --------------------------------------------------------------------------------
    def set_plan(self, plan: Plan | None, status: PlanStatus, detail: str) -> None:
        view = PlanView.build(plan, self.clock(), self.plan_stale_after_s) if plan is not None else None
        with self.lock:
            self.plan_view = view
            self.plan_status = status if plan is not None or status != "ok" else "missing"
            self.plan_detail = detail
            self._recompute_free_slots()
        if self._on_plan is not None:
            self._on_plan(plan, self.plan_status, detail)

    # -- pods (watch) ------------------------------------------------------------------------
    def _usage(self, node: str) -> NodeUsage:
        u = self.usage.get(node)
        if u is None:
            u = self.usage[node] = NodeUsage()
        return u

    def _add(self, node: str, pod: PodInfo, sign: int) -> None:
        u = self._usage(node)
        u.add(pod, sign)
        if u.pods <= 0:
            del self.usage[node]
        self.slopes.discard(node)
        self.free.discard(node)
        f = pod.function
        if f is not None and self.plan_view is not None:
            planned = self.plan_view.slots.get(f, {}).get(node, 0)
            if planned:
                self._set_free_slots(f, node, planned - u.functions.get(f, 0))

    def _set_free_slots(self, f: str, node: str, free: int) -> None:
        if free > 0:
            self.free_slots.setdefault(f, {})[node] = free
        else:
            by_node = self.free_slots.get(f)
            if by_node is not None:
                by_node.pop(node, None)

    def _recompute_free_slots(self) -> None:
        self.free_slots = {}
        if self.plan_view is None:
            return
        for f, slots in self.plan_view.slots.items():
            for node, planned in slots.items():
                u = self.usage.get(node)
                self._set_free_slots(f, node, planned - (u.functions.get(f, 0) if u is not None else 0))

    def _unbind(self, key: str) -> None:
        old = self.pods.pop(key, None)
        if old is not None and old.node_name is not None:
            self._add(old.node_name, old, -1)

    def _unassume(self, key: str) -> None:
        a = self.assumed.pop(key, None)
        if a is not None:
            self._add(a.node, a.pod, -1)

    def _upsert_pod(self, pod: PodInfo) -> None:
        self._unbind(pod.key)
        if pod.node_name is None:
            return  # pending: counted only through an assumption
        self._unassume(pod.key)  # the real binding replaces the guess
        if pod.terminal:
            return  # finished pods hold no resources and no slot
        self.pods[pod.key] = pod
        self._add(pod.node_name, pod, +1)

    def replace_pods(self, items: list[dict[str, Any]]) -> None:
        parsed = [p for p in (_try(parse_pod, o) for o in items) if p is not None]
        with self.lock:
            self.pods.clear()
            self.usage.clear()
            self.slopes.clear()
            self.free.clear()
            assumed, self.assumed = self.assumed, {}
            for p in parsed:
                self._upsert_pod(p)
            for key, a in assumed.items():  # keep assumptions the list does not show bound yet
                if key not in self.pods:
                    self.assumed[key] = a
                    self._add(a.node, a.pod, +1)
            self._recompute_free_slots()

    def apply_pod(self, event_type: str, obj: dict[str, Any]) -> None:
        pod = _try(parse_pod, obj)
        if pod is None:
            return
        with self.lock:
            if event_type == "DELETED":
                self._unbind(pod.key)
                self._unassume(pod.key)
            else:
                self._upsert_pod(pod)

    # -- nodes (watch) -----------------------------------------------------------------------
    def replace_nodes(self, items: list[dict[str, Any]]) -> None:
        parsed = {n.name: n for n in (_try(parse_node, o) for o in items) if n is not None}
        with self.lock:
            self.nodes = parsed
            self.slopes.clear()
            self.free.clear()

    def apply_node(self, event_type: str, obj: dict[str, Any]) -> None:
        node = _try(parse_node, obj)
        if node is None:
            return
        with self.lock:
            if event_type == "DELETED":
                self.nodes.pop(node.name, None)
            else:
                self.nodes[node.name] = node
            self.slopes.discard(node.name)
            self.free.discard(node.name)

    # -- assumptions (request path; caller holds the lock) -----------------------------------
    def expire_assumed_locked(self, now: float) -> None:
        while self.assumed:
            key, a = next(iter(self.assumed.items()))
            if a.expires_at > now:
                return
            self._unassume(key)

    def forget_locked(self, key: str) -> None:
        self._unassume(key)

    def assume_locked(self, pod: PodInfo, node: str, now: float) -> None:
        if pod.key in self.pods:
            return  # already bound: the watch counts it
        self._unassume(pod.key)
        if len(self.assumed) >= MAX_ASSUMED:
            self._unassume(next(iter(self.assumed)))  # the oldest: it would expire first
        self.assumed[pod.key] = _Assumed(pod=pod, node=node, expires_at=now + self.assume_ttl_s)
        self._add(node, pod, +1)

    def _slope(self, name: str) -> float:
        """dP/dU (W per core) of node ``name`` at its allocated cores."""
        u = self.usage.get(name)
        return self.curve_for(self.nodes.get(name)).marginal_power_w_per_core(u.cpu_cores if u is not None else 0.0)

    def _free(self, name: str) -> tuple[float, float]:
        """(free cpu cores, free memory bytes) on node ``name``; ``inf`` where allocatable is unknown."""
        return free_of(self.nodes.get(name), self.usage.get(name))

    # -- power curves ------------------------------------------------------------------------
    def curve_for(self, node: NodeInfo | None) -> PowerCurve:
        """The node's published power curve, or the default node's when absent or unusable."""
        text = node.power_model if node is not None else None
        if not text:
            return DEFAULT_NODE_CURVE
        return self._curves[text]

    # -- small read-only helpers ---------------------------------------------------------------
    def plan_is_stale(self, now: float) -> bool:
        v = self.plan_view
        return v is not None and now > v.stale_after_unix_s


def _parse_curve(text: str) -> PowerCurve:
    try:
        return PowerCurve.from_json(text)
    except PowerModelError:
        return DEFAULT_NODE_CURVE


class PodStore:
    """Reflector store adapter for pods."""

    def __init__(self, state: ExtenderState) -> None:
        self._s = state

    def replace(self, items: list[dict[str, Any]]) -> None:
        self._s.replace_pods(items)

    def apply(self, event_type: str, obj: dict[str, Any]) -> None:
        self._s.apply_pod(event_type, obj)


class NodeStore:
    """Reflector store adapter for nodes."""

    def __init__(self, state: ExtenderState) -> None:
        self._s = state

    def replace(self, items: list[dict[str, Any]]) -> None:
        self._s.replace_nodes(items)

    def apply(self, event_type: str, obj: dict[str, Any]) -> None:
        self._s.apply_node(event_type, obj)


def _try(parse: Callable[[Any], Any], obj: Any) -> Any:
    try:
        return parse(obj)
    except ObjectError:
        return None


def free_of(info: NodeInfo | None, usage: NodeUsage | None) -> tuple[float, float]:
    """Allocatable minus requests, per resource; ``inf`` when the node or its allocatable is unknown."""
    if info is None:
        return math.inf, math.inf
    cpu = info.allocatable_cpu_cores
    mem = info.allocatable_memory_bytes
    used_cpu = usage.cpu_cores if usage is not None else 0.0
    used_mem = usage.memory_bytes if usage is not None else 0.0
    return (
        cpu - used_cpu if cpu is not None else math.inf,
        mem - used_mem if mem is not None else math.inf,
    )
