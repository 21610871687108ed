"""Actions: what a plan asks of the cluster as it is, computed purely, in execution order."""

from __future__ import annotations

import pytest

from casa_sched.autoscaler.actions import (
    DELETION_COST_UNPLACED,
    DeletionCostAction,
    ResizeAction,
    ScaleAction,
    action_table,
    compute_actions,
)
from casa_sched.autoscaler.adapters.deployment import workload_from_deployment
from casa_sched.autoscaler.snapshot import MIB, build_state
from casa_sched.contract.cluster import SimParams
from casa_sched.contract.plan import Container, Plan

from .objects import deployment, node, pod

PARAMS = SimParams()


def _state(pods, replicas, nodes=(("a", "16"), ("b", "16"))):
    w = workload_from_deployment(deployment("d", "f", replicas=replicas))
    assert w is not None
    return build_state([node(n, cpu=c) for n, c in nodes], pods, [w])


def _plan(*containers: tuple[str, int]) -> Plan:
    return Plan(epoch=1, containers={"f": tuple(Container(n, k) for n, k in containers)})


def _summary(actions) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for a in actions:
        if isinstance(a, ScaleAction):
            out.append(("scale", a.current, a.replicas))
        elif isinstance(a, DeletionCostAction):
            out.append(("cost", a.pod, a.cost))
        elif isinstance(a, ResizeAction):
            out.append(("resize", a.pod, a.units))
    return out


@pytest.mark.parametrize(("pods", "replicas", "plan", "expected"), [
    pytest.param([pod("p1", "f", "a")], 1, _plan(("a", 1)), [], id="matches-plan-nothing-to-do"),
    pytest.param([pod("p1", "f", "a")], 1, _plan(("a", 1), ("b", 1)), [("scale", 1, 2)], id="scale-up"),
    pytest.param([pod("p1", "f", "a")], 1, _plan(("a", 3)), [("resize", "p1", 3)], id="grow-to-3-units"),
    pytest.param([pod("p1", "f", "a", cpu="8", memory="600Mi")], 1, _plan(("a", 1)), [("resize", "p1", 1)],
                 id="shrink-4-to-1"),
    pytest.param([pod("p1", "f", "a"), pod("p2", "f", "b")], 2, _plan(("a", 1)),
                 [("cost", "p2", DELETION_COST_UNPLACED), ("scale", 2, 1)],
                 id="scale-down-marks-the-pod-the-plan-no-longer-places-first"),
    pytest.param([pod("p1", "f", "a"), pod("p2", "f", "b")], 2, Plan(epoch=1, containers={}),
                 [("scale", 2, 0)], id="scale-to-zero-marks-nothing"),
    pytest.param([pod("p1", "f", "a", deletion_cost=DELETION_COST_UNPLACED), pod("p2", "f", "b")], 2,
                 _plan(("a", 1)), [("cost", "p2", DELETION_COST_UNPLACED), ("cost", "p1", None), ("scale", 2, 1)],
                 id="an-old-mark-on-a-placed-pod-is-removed"),
    pytest.param([pod("p1", "f", "a", deletion_cost=DELETION_COST_UNPLACED), pod("p2", "f", "b")], 2,
                 _plan(("b", 1)), [("scale", 2, 1)], id="mark-already-set-is-not-rewritten"),
    pytest.param([pod("p1", "f", "a", phase="Pending")], 1, _plan(("a", 2)), [],
                 id="bound-but-not-running-is-deferred"),
    pytest.param([pod("p1", "f", "a", cpu="4", memory="300Mi"), pod("p2", "f", "a")], 2, _plan(("a", 2), ("a", 1)),
                 [], id="largest-planned-size-goes-to-the-largest-pod"),
])
def test_actions_for_one_function(pods, replicas, plan, expected) -> None:
    actions, _ = compute_actions(_state(pods, replicas), plan, ["f"], PARAMS)
    assert _summary(actions) == expected


def test_resize_targets_k_times_2_cores_and_150_mib() -> None:
    actions, _ = compute_actions(_state([pod("p1", "f", "a", cpu="500m", memory="64Mi")], 1), _plan(("a", 3)),
                                 ["f"], PARAMS)
    (r,) = actions
    assert isinstance(r, ResizeAction)
    # k = 3: 3 × 2 = 6 cores, 3 × 150 = 450 MiB, on the function container "app" only
    assert (r.container, r.cpu_cores, r.memory_bytes, r.current_cpu_cores) == ("app", 6.0, 450 * MIB, 0.5)


def test_growth_is_never_past_the_node_allocatable() -> None:
    # node a: 8 cores; p1 (2) + other (4) requested → 2 free; growing p1 to k=3 needs 4 more: deferred
    pods = [pod("p1", "f", "a"), pod("x", None, "a", cpu="4", namespace="other")]
    actions, deferred = compute_actions(_state(pods, 1, nodes=(("a", "8"),)), _plan(("a", 3)), ["f"], PARAMS)
    assert actions == []
    assert [d.pod for d in deferred] == ["p1"]
    assert "needs 4 cores free on a" in deferred[0].reason


def test_shrinks_free_room_for_growths_on_the_same_node() -> None:
    # node a: 8 cores, g (4 cores → k=1 frees 2) and f (2 cores → k=2 needs 2): the shrink runs first
    wf = workload_from_deployment(deployment("d", "f"))
    wg = workload_from_deployment(deployment("dg", "g"))
    assert wf
    assert wg
    pods = [pod("f1", "f", "a"), pod("g1", "g", "a", cpu="4", memory="300Mi"), pod("x", None, "a", cpu="2")]
    state = build_state([node("a", cpu="8")], pods, [wf, wg])
    plan = Plan(epoch=1, containers={"f": (Container("a", 2),), "g": (Container("a", 1),)})
    actions, deferred = compute_actions(state, plan, ["f", "g"], PARAMS)
    assert [(a.pod, a.units) for a in actions if isinstance(a, ResizeAction)] == [("g1", 1), ("f1", 2)]
    assert deferred == []


def test_intra_epoch_growth_is_kept_within_the_epoch() -> None:
    state = _state([pod("p1", "f", "a", cpu="4", memory="300Mi")], 1)
    # planned k=1, grown by 1 this epoch: 2 units is the target, which the pod already has
    assert compute_actions(state, _plan(("a", 1)), ["f"], PARAMS, grown={"uid-p1": 1})[0] == []
    # next epoch (no growth recorded): back to the plan's size
    assert _summary(compute_actions(state, _plan(("a", 1)), ["f"], PARAMS)[0]) == [("resize", "p1", 1)]


def test_unmanaged_functions_are_left_alone() -> None:
    assert compute_actions(_state([pod("p1", "f", "a")], 1), _plan(("a", 3), ("b", 2)), [], PARAMS)[0] == []


def test_action_table_lists_every_action() -> None:
    actions, _ = compute_actions(_state([pod("p1", "f", "a")], 1), _plan(("a", 2), ("b", 1)), ["f"], PARAMS)
    lines = action_table(actions).splitlines()
    assert lines[0].split() == ["KIND", "FUNCTION", "NAMESPACE", "TARGET", "CURRENT", "DESIRED", "REASON"]
    assert lines[1].split()[:6] == ["scale", "f", "fn", "deployment/d", "1", "2"]
    assert lines[2].startswith("resize")
    assert "4 cores/300 MiB (k=2)" in lines[2]
