"""Which power step each node needs for the plan's sleeping set: pure decisions (README "Node power management").

The plan says which nodes sleep for the epoch (:attr:`~casa_sched.contract.plan.Plan.sleeping_nodes`;
the paper's nodes that host no container are put to sleep, §IV eq. 1 with P_sleep). This module turns
that plus what the API server says about each Node and its pods into the next steps; the I/O
(patches, evictions, the hook) is :mod:`casa_sched.autoscaler.power_hook`.

A node's state is its ``casa.dev/power-state`` annotation:

- absent or ``on`` — serving;
- ``draining`` — cordoned by casa, its function pods being evicted (a failed or timed-out power-off
  hook leaves it here: the hook is retried the next time);
- ``sleeping`` — the power-off hook succeeded;
- ``waking`` — the power-on hook succeeded; the node is uncordoned and marked ``on`` once Ready.

Safety rule: a node that runs any pod that is not a function pod (per
:func:`~casa_sched.conventions.function_of`), a DaemonSet pod or a mirror (static) pod is never
cordoned, drained or powered down; a node casa had already cordoned is given back (uncordoned,
``on``). Nodes casa never marked are not touched when the plan wants them on: a node an operator
cordoned stays as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from casa_sched.conventions import MIRROR_POD_ANNOTATION, POWER_STATE_ANNOTATION, function_of


class PowerState(StrEnum):
    ON = "on"
    DRAINING = "draining"
    SLEEPING = "sleeping"
    WAKING = "waking"


POWER_STATES: tuple[str, ...] = tuple(s.value for s in PowerState)
# The states in which casa holds the node cordoned: the planner still counts it (to keep it asleep or wake it).
POWERED_DOWN: frozenset[str] = frozenset({PowerState.DRAINING, PowerState.SLEEPING, PowerState.WAKING})


class Step(StrEnum):
    """One write (or hook run) on a node, in the order they are taken."""

    CORDON = "cordon"  # spec.unschedulable = true and power-state = draining, one patch
    EVICT = "evict"  # an Eviction for each function pod still on the node
    POWER_OFF = "power_off"  # the hook, then power-state = sleeping
    POWER_ON = "power_on"  # the hook, then power-state = waking
    UNCORDON = "uncordon"  # spec.unschedulable = false and power-state = on, one patch


@dataclass(frozen=True)
class PodView:
    namespace: str
    name: str
    function: str | None
    daemonset: bool
    mirror: bool
    deleting: bool

    @property
    def blocks_power_down(self) -> bool:
        """A pod casa may not move: neither a function's, a DaemonSet's nor a static pod's."""
        return self.function is None and not self.daemonset and not self.mirror and not self.deleting


@dataclass(frozen=True)
class NodeView:
    name: str
    unschedulable: bool
    ready: bool
    state: PowerState | None  # None: no (or an unknown) casa.dev/power-state annotation
    annotations: Mapping[str, str]
    pods: tuple[PodView, ...] = ()
    state_error: str | None = None  # an unknown annotation value, for the warning

    @property
    def function_pods(self) -> tuple[PodView, ...]:
        return tuple(p for p in self.pods if p.function is not None)

    @property
    def blockers(self) -> tuple[PodView, ...]:
        return tuple(p for p in self.pods if p.blocks_power_down)


@dataclass(frozen=True)
class NodeDecision:
    """What to do with one node now: ``steps`` in order; ``evict`` the pods for the EVICT step;
    ``wait`` why nothing more can be done yet; ``blocked`` the pods that forbid powering it down."""

    node: str
    want_sleep: bool
    steps: tuple[Step, ...] = ()
    evict: tuple[PodView, ...] = ()
    wait: str = ""
    blocked: tuple[str, ...] = ()


def pod_view(obj: Mapping[str, Any]) -> PodView:
    """The power decisions' view of Pod JSON (as listed)."""
    meta = obj.get("metadata") or {}
    owners = meta.get("ownerReferences") or []
    annotations = meta.get("annotations") or {}
    return PodView(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        function=function_of(meta.get("labels") or {}),
        daemonset=any(isinstance(o, Mapping) and o.get("kind") == "DaemonSet" for o in owners),
        mirror=isinstance(annotations, Mapping) and MIRROR_POD_ANNOTATION in annotations,
        deleting=meta.get("deletionTimestamp") is not None,
    )


def node_view(obj: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> NodeView:
    """The power decisions' view of Node JSON and the (non-terminal) pods bound to it."""
    meta = obj.get("metadata") or {}
    annotations = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
    spec = obj.get("spec") or {}
    conditions = (obj.get("status") or {}).get("conditions") or []
    ready = any(isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    raw = annotations.get(POWER_STATE_ANNOTATION)
    state: PowerState | None = None
    error = None
    if raw is not None:
        try:
            state = PowerState(raw)
        except ValueError:
            error = f"{POWER_STATE_ANNOTATION}={raw!r} is not one of {', '.join(POWER_STATES)}; treated as unset"
    return NodeView(
        name=str(meta.get("name") or ""),
        unschedulable=spec.get("unschedulable") is True,
        ready=ready,
        state=state,
        annotations=annotations,
        pods=tuple(pod_view(p) for p in pods),
        state_error=error,
    )


def decide(node: NodeView, want_sleep: bool) -> NodeDecision:
    """The next steps for ``node`` when the plan wants it asleep (``want_sleep``) or on.

    Asleep: cordon → evict its function pods → (once none is left) power off. On: a node casa
    put to sleep is powered on, and uncordoned once Ready; one it cordoned but never powered off
    is uncordoned at once. See the module docstring for the states and the safety rule.
    """
    name, state = node.name, node.state
    if want_sleep:
        if state is PowerState.SLEEPING:
            return NodeDecision(name, True)
        if state is PowerState.WAKING:
            # powered on but not yet given back: treat as a node to drain again
            state = PowerState.DRAINING
        blockers = node.blockers
        if blockers:
            give_back = (Step.UNCORDON,) if state is PowerState.DRAINING else ()
            return NodeDecision(name, True, give_back,
                                blocked=tuple(f"{p.namespace}/{p.name}" for p in blockers))  # fmt: skip
        steps: list[Step] = []
        if state is not PowerState.DRAINING or not node.unschedulable:
            steps.append(Step.CORDON)
        evict = tuple(p for p in node.function_pods if not p.deleting)
        if evict:
            steps.append(Step.EVICT)
        if node.function_pods:
            # the pods are (being) evicted: power off once they are gone (re-read by the runner)
            return NodeDecision(name, True, tuple(steps), evict, wait=f"{len(node.function_pods)} function pod(s) left")
        steps.append(Step.POWER_OFF)
        return NodeDecision(name, True, tuple(steps))
    if state is None or state is PowerState.ON:
        return NodeDecision(name, False)
    if state is PowerState.DRAINING:
        return NodeDecision(name, False, (Step.UNCORDON,))
    if state is PowerState.SLEEPING:
        return NodeDecision(name, False, (Step.POWER_ON,), wait="" if node.ready else "node not Ready yet")
    if node.ready:  # waking
        return NodeDecision(name, False, (Step.UNCORDON,))
    return NodeDecision(name, False, wait="node not Ready yet")
