"""Filter and prioritize decisions for one pod (DESIGN §5). Pure given an :class:`ExtenderState`.

**Filter.** A pod of no function passes through (every node kept). For a pod of function f
with a usable plan:

1. capacity: a node whose allocatable cpu or memory, minus the requests of the pods bound or
   assumed there, cannot hold the pod's request fails (``FailedNodes``: preemption may help);
   nodes we know nothing about are kept (kube-scheduler has already checked them);
2. plan: free slots(f, node) = planned containers of f on node − live pods of f on node
   (bound + assumed). When some capacity-feasible node has a free slot, only those nodes are
   kept; the rest fail as ``FailedAndUnresolvableNodes`` (preempting pods there would not create
   a planned slot). When none has, every capacity-feasible node is kept: the plan is a
   preference, never a reason to leave a pod pending.

**Prioritize.** Scores 0..10 (``MaxExtenderPriority``) from two terms:

- marginal carbon ``mc = dP/dU(U_node) × CI`` (W per core × g/kWh → mg per core-hour),
  ``U_node`` = cpu requests on the node (the extender sees allocations, not live utilisation),
  ``dP/dU`` from the node's ``casa.dev/power-model`` annotation or the default node curve, CI
  from the plan's inputs. CI is one number per site, so it scales but never reorders; goodness
  ``g = (mc_max − mc) / (mc_max − mc_min)`` over the candidates (1 when all are equal);
- planned free slots: a node with free slots for f scores ``6 + round(4 × (slot_share + g) / 2)``
  (6..10, ``slot_share`` = its free slots / the most free slots on any candidate); a node
  without scores ``round(5 × g)`` (0..5). Every planned node therefore beats every unplanned one.

Pods of no function, and every pod while failing open, get the neutral score on every node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from casa_sched.extender.state import ExtenderState, NodeUsage, PlanView
from casa_sched.kube.objects import NodeInfo, PodInfo

MAX_SCORE = 10  # k8s.io/kube-scheduler/extender/v1 MaxExtenderPriority
NEUTRAL_SCORE = 0  # the same on every node, so it never changes the scheduler's ranking
_EPS = 1e-9

FailOpenReason = Literal["plan_missing", "plan_stale", "plan_invalid", "internal_error"]
_EMPTY = NodeUsage()


@dataclass
class FilterOutcome:
    kept: list[int]  # indices into the request's node list, in request order
    failed: dict[str, str] = field(default_factory=dict)
    unresolvable: dict[str, str] = field(default_factory=dict)
    fail_open: FailOpenReason | None = None


@dataclass
class PrioritizeOutcome:
    scores: list[int]  # one per request node, in request order
    fail_open: FailOpenReason | None = None


def plan_gate(state: ExtenderState, pod: PodInfo, now: float) -> tuple[PlanView | None, FailOpenReason | None]:
    """The plan to follow for ``pod`` or why we fail open; (None, None) for a pod of no function."""
    if pod.function is None:
        return None, None
    view = state.plan_view
    if view is None:
        return None, "plan_invalid" if state.plan_status == "invalid" else "plan_missing"
    if now > view.stale_after_unix_s:
        return None, "plan_stale"
    return view, None


def _info(state: ExtenderState, names: list[str], infos: list[NodeInfo] | None, i: int) -> NodeInfo | None:
    return infos[i] if infos is not None else state.nodes.get(names[i])


def _gib(b: float) -> str:
    return f"{b / 2**30:.3g} GiB"


def decide_filter(
    state: ExtenderState, pod: PodInfo, names: list[str], infos: list[NodeInfo] | None, now: float
) -> FilterOutcome:
    """Which of ``names`` the pod may go to. Caller holds ``state.lock``."""
    state.expire_assumed_locked(now)
    state.forget_locked(pod.key)  # a new scheduling attempt voids the previous guess
    view, reason = plan_gate(state, pod, now)
    if view is None:
        return FilterOutcome(kept=list(range(len(names))), fail_open=reason)
    f = pod.function
    assert f is not None
    usage = state.usage
    out = FilterOutcome(kept=[])
    feasible: list[int] = []
    for i, name in enumerate(names):
        info = _info(state, names, infos, i)
        if info is not None:
            u = usage.get(name, _EMPTY)
            if info.allocatable_cpu_cores is not None:
                free = info.allocatable_cpu_cores - u.cpu_cores
                if pod.cpu_cores > free + _EPS:
                    out.failed[name] = (
                        f"casa: insufficient cpu: pod requests {pod.cpu_cores:.3g} cores, {max(free, 0.0):.3g} "
                        f"of {info.allocatable_cpu_cores:.3g} allocatable cores free"
                    )
                    continue
            if info.allocatable_memory_bytes is not None:
                free = info.allocatable_memory_bytes - u.memory_bytes
                if pod.memory_bytes > free + 0.5:
                    out.failed[name] = (
                        f"casa: insufficient memory: pod requests {_gib(pod.memory_bytes)}, {_gib(max(free, 0.0))} "
                        f"of {_gib(info.allocatable_memory_bytes)} allocatable free"
                    )
                    continue
        feasible.append(i)
    slots = view.slots.get(f)
    with_slot = (
        [i for i in feasible if slots.get(names[i], 0) > usage.get(names[i], _EMPTY).functions.get(f, 0)] if slots else []
    )
    if with_slot:
        out.kept = with_slot
        keep = set(with_slot)
        for i in feasible:
            if i not in keep:
                name = names[i]
                out.unresolvable[name] = (
                    f"casa: plan epoch {view.plan.epoch} has no free slot for function {f!r} on this node "
                    f"(planned {slots.get(name, 0) if slots else 0}, placed {usage.get(name, _EMPTY).functions.get(f, 0)})"
                )
    else:
        out.kept = feasible
    if len(out.kept) == 1:  # kube-scheduler skips scoring and binds to the only node
        state.assume_locked(pod, names[out.kept[0]], now)
    return out


def decide_prioritize(
    state: ExtenderState, pod: PodInfo, names: list[str], infos: list[NodeInfo] | None, now: float
) -> PrioritizeOutcome:
    """A 0..10 score per node of ``names``. Caller holds ``state.lock``."""
    state.expire_assumed_locked(now)
    state.forget_locked(pod.key)
    view, reason = plan_gate(state, pod, now)
    n = len(names)
    if view is None or n == 0:
        return PrioritizeOutcome(scores=[NEUTRAL_SCORE] * n, fail_open=reason)
    f = pod.function
    assert f is not None
    ci = view.ci_g_per_kwh
    ci_scale = ci / 1000.0 if math.isfinite(ci) and ci > 0 else 1.0
    usage = state.usage
    slots = view.slots.get(f) or {}
    mcs: list[float] = []
    frees: list[int] = []
    for i, name in enumerate(names):
        u = usage.get(name, _EMPTY)
        curve = state.curve_for(_info(state, names, infos, i))
        mcs.append(curve.marginal_power_w_per_core(u.cpu_cores) * ci_scale)
        planned = slots.get(name, 0)
        frees.append(planned - u.functions.get(f, 0) if planned else 0)
    lo, hi = min(mcs), max(mcs)
    span = hi - lo
    max_free = max(frees)
    scores: list[int] = []
    for mc, free in zip(mcs, frees, strict=True):
        g = (hi - mc) / span if span > _EPS else 1.0
        if free > 0:
            scores.append(6 + round(4.0 * (free / max_free + g) / 2.0))
        else:
            scores.append(round(5.0 * g))
    best = max(range(n), key=scores.__getitem__)
    state.assume_locked(pod, names[best], now)
    return PrioritizeOutcome(scores=scores)
