"""Filter and prioritize decisions for one pod (docs/architecture.md, "Kubernetes").

The decisions are pure: they read an :class:`ExtenderState` (whose per-node memos may fill on a
miss, which changes no answer) and return what to change — the placement to assume — which the
handler in :mod:`casa_sched.extender.app` applies under the state's lock. Before a decision the
handler also ends expired assumptions and the pod's own previous one (a new scheduling attempt
voids the previous guess), so the decision sees the pod as not placed anywhere.

**Filter.** A pod of no function passes through (every node kept). For a pod of function f
with a usable plan:

1. capacity: a node whose allocatable cpu or memory, minus the requests of the pods bound or
   assumed there, cannot hold the pod's request fails (``FailedNodes``: preemption may help);
   nodes we know nothing about are kept (kube-scheduler has already checked them);
2. plan: free slots(f, node) = planned containers of f on node − live pods of f on node
   (bound + assumed). When some capacity-feasible node has a free slot, only the *best* of them
   is kept (most free slots, then lowest marginal power, then the scheduler's order): with a
   single node left kube-scheduler binds there without scoring, so the extender knows the
   placement exactly and a burst of replicas cannot overfill a planned node. The other nodes
   are left out of the reply without a failure reason (the pod stays schedulable, so the
   scheduler would never show one). When no feasible node has a free slot, every
   capacity-feasible node is kept: the plan is a preference, never a reason to leave a pod
   pending.

**Prioritize.** Scores 0..10 (``MaxExtenderPriority``) from two terms:

- marginal carbon ``mc = dP/dU(U_node) × CI`` (W per core × g/kWh → mg per core-hour),
  ``U_node`` = cpu requests on the node (the extender sees allocations, not live utilisation),
  ``dP/dU`` from the node's ``casa.dev/power-model`` annotation or the default node curve, CI
  from the plan's inputs. CI is one number per site, so it scales but never reorders; goodness
  ``g = (mc_max − mc) / (mc_max − mc_min)`` over the candidates (when all are equal there is no
  carbon preference: g = 0 off-plan, 1 on planned nodes);
- planned free slots: a node with free slots for f scores ``6 + round(4 × (slot_share + g) / 2)``
  (6..10, ``slot_share`` = its free slots / the most free slots on any candidate); a node
  without scores ``round(5 × g)`` (0..5). Every planned node therefore beats every unplanned one.

The top node is made unique (others tied with it drop one point; when every node scores 0 the
first gets 1) and the pod is assumed there. This only matters when no planned slot is free
(otherwise filter left a single node and the scheduler does not call prioritize).

Pods of no function, and every pod while failing open, get the neutral score 0 on every node.

**Zero scores are omitted from the reply.** kube-scheduler adds ``score × weight`` per listed
host and nothing for an unlisted one, so leaving out a 0 is exactly equivalent, and it keeps the
reply (and its encoding time) proportional to the nodes we have an opinion about. Passing
through and failing open therefore answer ``[]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import compress

from casa_sched.extender.state import ExtenderState, NodeUsage, PlanView, free_of
from casa_sched.kube.objects import NodeInfo, PodInfo
from casa_sched.metrics import FailOpenReason

__all__ = ["FailOpenReason", "FilterOutcome", "PrioritizeOutcome", "decide_filter", "decide_prioritize", "plan_gate"]

MAX_SCORE = 10  # k8s.io/kube-scheduler/extender/v1 MaxExtenderPriority
NEUTRAL_SCORE = 0  # the same on every node, so it never changes the scheduler's ranking
_EPS = 1e-9

_EMPTY = NodeUsage()


@dataclass(frozen=True)
class FilterOutcome:
    kept: list[int]  # indices into the request's node list, in request order
    failed: dict[str, str] = field(default_factory=dict)
    unresolvable: dict[str, str] = field(default_factory=dict)
    fail_open: FailOpenReason | None = None
    assume: tuple[PodInfo, str] | None = None  # (pod, node) to count there until the watch shows it bound


@dataclass(frozen=True)
class PrioritizeOutcome:
    scores: dict[str, int]  # node name → score 1..10; nodes not listed score 0
    fail_open: FailOpenReason | None = None
    assume: tuple[PodInfo, str] | None = None


def plan_gate(state: ExtenderState, pod: PodInfo, now: float) -> tuple[PlanView | None, FailOpenReason | None]:
    """The plan to follow for ``pod`` or why we fail open; (None, None) for a pod of no function."""
    if pod.function is None:
        return None, None
    view = state.plan_view
    if view is None:
        return None, FailOpenReason.PLAN_INVALID if state.plan_status == "invalid" else FailOpenReason.PLAN_MISSING
    if now > view.stale_after_unix_s:
        return None, FailOpenReason.PLAN_STALE
    return view, None


def _gib(b: float) -> str:
    return f"{b / 2**30:.3g} GiB"


def _no_room(pod: PodInfo, free_cpu: float, free_mem: float) -> str | None:
    """Why ``pod`` does not fit, or None when it does."""
    if pod.cpu_cores > free_cpu + _EPS:
        return f"casa: insufficient cpu: pod requests {pod.cpu_cores:.3g} cores, {max(free_cpu, 0.0):.3g} cores free"
    if pod.memory_bytes > free_mem + 0.5:
        return f"casa: insufficient memory: pod requests {_gib(pod.memory_bytes)}, {_gib(max(free_mem, 0.0))} free"
    return None


_NO_SLOTS: dict[str, int] = {}


def free_slot_nodes(state: ExtenderState, function: str) -> dict[str, int]:
    """Node → free planned slots of ``function`` (planned − live bound and assumed pods, > 0).
    Read-only view of state maintained incrementally."""
    return state.free_slots.get(function, _NO_SLOTS)


def decide_filter(
    state: ExtenderState, pod: PodInfo, names: list[str], infos: list[NodeInfo] | None, now: float
) -> FilterOutcome:
    """Which of ``names`` the pod may go to, and where to assume it (when a single node is left:
    kube-scheduler then binds there without scoring). Caller holds ``state.lock``."""
    view, reason = plan_gate(state, pod, now)
    if view is None:
        return FilterOutcome(kept=list(range(len(names))), fail_open=reason)
    f = pod.function
    assert f is not None
    failed: dict[str, str] = {}
    # 1. capacity (only nodes we know: the NodeList in the request, else the node watch)
    feasible: list[int]
    if infos is not None:
        feasible = []
        usage = state.usage
        for i, info in enumerate(infos):
            why = _no_room(pod, *free_of(info, usage.get(info.name)))
            if why is None:
                feasible.append(i)
            else:
                failed[info.name] = why
    elif state.nodes:
        feasible = []
        free_cache = state.free
        for i, fr in enumerate(map(free_cache.__getitem__, names)):  # computed on a miss
            name = names[i]
            if pod.cpu_cores > fr[0] + _EPS or pod.memory_bytes > fr[1] + 0.5:
                failed[name] = _no_room(pod, *fr) or "casa: insufficient resources"
            else:
                feasible.append(i)
    else:
        feasible = list(range(len(names)))
    # 2. plan: keep only nodes with a free planned slot, when any is feasible
    frees = free_slot_nodes(state, f)
    if not frees:
        kept = []
    elif len(feasible) == len(names):
        kept = list(compress(range(len(names)), map(frees.__contains__, names)))  # C-speed scan
    else:
        kept = [i for i in feasible if names[i] in frees]
    if len(kept) > 1:
        # Decisive: keep the ONE best planned node. kube-scheduler then skips scoring and binds
        # exactly there, so the assumption below is exact and a burst of replicas fills the
        # planned slots one by one. Other feasible nodes are dropped without a FailedNodes entry:
        # the pod is schedulable, so the scheduler never reports those reasons, and listing
        # ~every node with a reason would dominate the reply's size and encode time.
        kept = [_best_planned(state, frees, names, infos, kept)]
    elif not kept:
        kept = feasible
    # kube-scheduler skips scoring and binds to the only node
    return FilterOutcome(kept=kept, failed=failed, assume=(pod, names[kept[0]]) if len(kept) == 1 else None)


def _best_planned(
    state: ExtenderState, frees: dict[str, int], names: list[str], infos: list[NodeInfo] | None, kept: list[int]
) -> int:
    """Among nodes with free planned slots: most free slots, then lowest marginal power, then
    the scheduler's own order."""
    counts = [frees[names[i]] for i in kept]
    top = max(counts)
    cands = [i for i, c in zip(kept, counts, strict=True) if c == top]
    if len(cands) == 1:
        return cands[0]
    if infos is not None:
        usage = state.usage
        slopes = [
            state.curve_for(infos[i]).marginal_power_w_per_core(usage.get(names[i], _EMPTY).cpu_cores) for i in cands
        ]
    else:
        slopes = [state.slopes[names[i]] for i in cands]
    return cands[slopes.index(min(slopes))]  # index() finds the first: the scheduler's order


def decide_prioritize(
    state: ExtenderState, pod: PodInfo, names: list[str], infos: list[NodeInfo] | None, now: float
) -> PrioritizeOutcome:
    """Non-zero 0..10 scores by node name (absent = 0), and the unique top node to assume the
    pod on. Caller holds ``state.lock``."""
    view, reason = plan_gate(state, pod, now)
    if view is None or not names:
        return PrioritizeOutcome(scores={}, fail_open=reason)
    f = pod.function
    assert f is not None
    # CI is one number for the site: it scales marginal carbon but cannot reorder nodes, so the
    # ranking uses dP/dU directly and CI only enters absolute figures.
    usage = state.usage
    if infos is not None:
        slopes = [
            state.curve_for(info).marginal_power_w_per_core(usage.get(info.name, _EMPTY).cpu_cores) for info in infos
        ]
    else:
        slopes = list(map(state.slopes.__getitem__, names))  # computed on a miss, cached per node
    distinct = set(slopes)  # few distinct values (same curve, same allocation): score each once
    lo, hi = min(distinct), max(distinct)
    span = hi - lo
    scores: dict[str, int]
    if span > _EPS:
        k = 5.0 / span
        score_of = {s: round((hi - s) * k) for s in distinct}
        if any(score_of.values()):
            per_node = list(map(score_of.__getitem__, slopes))
            scores = dict(compress(zip(names, per_node, strict=True), per_node))  # non-zero only, C speed
        else:
            scores = {}
    else:  # every node equally good for carbon: no preference, all 0
        scores = {}
    frees = free_slot_nodes(state, f)
    if frees:
        present = frees.keys() & set(names)
        if present:
            max_free = max(frees[m] for m in present)
            if span > _EPS:
                if infos is None:
                    slope_of: dict[str, float] = {m: state.slopes[m] for m in present}
                else:
                    slope_of = {
                        names[i]: slopes[i] for i in compress(range(len(names)), map(present.__contains__, names))
                    }
            for m in present:
                g = (hi - slope_of[m]) / span if span > _EPS else 1.0
                scores[m] = 6 + round(4.0 * (frees[m] / max_free + g) / 2.0)
    # Make the top node unique (ties at the top drop one point; all-zero gives the first node 1),
    # so that the scheduler's pick — and with it our assumption — does not hinge on a tie.
    if scores:
        best = max(scores, key=scores.__getitem__)
        top = scores[best]
        for h, sc in scores.items():
            if sc >= top and h != best:
                scores[h] = top - 1
    else:
        best = names[0]
        scores[best] = 1
    return PrioritizeOutcome(scores={h: sc for h, sc in scores.items() if sc}, assume=(pod, best))
