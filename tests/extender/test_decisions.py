"""Filter and prioritize decisions, driven through the same byte-level handler the server uses.

Plans put function ``thumbnail`` (the Knative service label of ``real_pod``) on named nodes;
each row says what the plan and the live pods are and which nodes must survive, and why.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from casa_sched.contract.plan import Plan
from casa_sched.devcluster.payloads import POWER_MODEL, args_names, args_nodes, plain_pod, plan_doc, real_node, real_pod
from casa_sched.extender.app import Extender
from casa_sched.extender.decide import decide_filter, decide_prioritize
from casa_sched.extender.state import ExtenderState
from casa_sched.kube.objects import parse_pod
from tests.extender.support import Harness

F = "thumbnail"
NODES = ["n1", "n2", "n3", "n4"]


def ext(h: Harness) -> Extender:
    e = h.app.state.extender
    assert isinstance(e, Extender)
    return e


def call(h: Harness, verb: str, args: dict[str, Any]) -> Any:
    status, body = getattr(ext(h), verb)(json.dumps(args).encode())
    assert status == 200, body
    return json.loads(body)


def bound(name: str, node: str, function: str | None = F, cpu: str = "2", uid: str | None = None) -> dict[str, Any]:
    pod = real_pod(name=name, uid=uid or f"uid-{name}", node_name=node, cpu=cpu)
    if function is None:
        pod["metadata"]["labels"] = {"app": "other"}
    else:
        pod["metadata"]["labels"]["serving.knative.dev/service"] = function
    return pod


def scores(reply: list[dict[str, Any]], names: list[str]) -> dict[str, int]:
    listed = {e["Host"]: e["Score"] for e in reply}
    return {n: listed.get(n, 0) for n in names}


@pytest.mark.parametrize(
    ("planned", "live", "kept"),
    [
        pytest.param({"n1": 2}, {}, ["n1"], id="free-slot-only-on-n1"),
        # n1 and n3 both have 1 free slot and the same (idle) slope: the scheduler's order decides
        pytest.param({"n1": 1, "n3": 1}, {}, ["n1"], id="decisive-one-node-tie-by-request-order"),
        # n3 has 2 free slots, n1 one: the node the plan wants most goes first
        pytest.param({"n1": 1, "n3": 2}, {}, ["n3"], id="decisive-most-free-slots"),
        # n1: planned 1 - live 1 = 0 free; n3: 1 - 0 = 1 free
        pytest.param({"n1": 1, "n3": 1}, {"n1": 1}, ["n3"], id="full-planned-node-dropped"),
        # every planned slot is taken: the plan is a preference, all capacity-feasible nodes stay
        pytest.param({"n1": 1}, {"n1": 1}, NODES, id="no-free-slot-anywhere-keeps-all"),
        pytest.param({}, {}, NODES, id="function-not-in-plan-keeps-all"),
        # n2 planned 3, live 2 → 1 free
        pytest.param({"n2": 3}, {"n2": 2, "n4": 5}, ["n2"], id="counts-live-pods-per-node"),
    ],
)
def test_filter_keeps_nodes_with_free_planned_slots(
    harness: Harness, planned: dict[str, int], live: dict[str, int], kept: list[str]
) -> None:
    harness.load_plan(plan_doc({F: [n for n, k in planned.items() for _ in range(k)]}))
    harness.state.replace_pods([bound(f"{n}-{i}", n) for n, k in live.items() for i in range(k)])
    reply = call(harness, "filter", args_names(real_pod(), NODES))
    assert reply["NodeNames"] == kept
    assert reply["Nodes"] is None
    assert reply["Error"] == ""
    assert set(reply["FailedNodes"]) == set()


def test_pod_of_no_function_passes_through(harness: Harness) -> None:
    harness.load_plan(plan_doc({F: ["n1"]}))
    assert call(harness, "filter", args_names(plain_pod(), NODES))["NodeNames"] == NODES
    assert call(harness, "prioritize", args_names(plain_pod(), NODES)) == []  # all neutral (0)
    assert harness.state.assumed == {}


def test_capacity_filter_counts_bound_pods(harness: Harness) -> None:
    # Every real_pod also runs queue-proxy requesting 25m cpu and 50Mi memory.
    # The new pod requests 1975m + 25m = 2 cores, 150Mi + 50Mi = 200Mi.
    # n1: 4 allocatable − 2 × (1500m + 25m) = 0.95 cores free < 2 → fails on cpu.
    # n2: 4 − (1975m + 25m) = 2 cores free ≥ 2 → fits, and it is planned.
    # n3: 100Mi allocatable memory < 200Mi → fails on memory. n4 fits but is not planned.
    harness.load_plan(plan_doc({F: ["n1", "n2", "n3"]}))
    harness.state.replace_nodes(
        [real_node("n1", cpu="4"), real_node("n2", cpu="4"), real_node("n3", memory="100Mi"), real_node("n4")]
    )
    harness.state.replace_pods(
        [
            bound("a", "n1", function=None, cpu="1500m"),
            bound("b", "n1", function=None, cpu="1500m"),
            bound("c", "n2", function=None, cpu="1975m"),
        ]
    )
    pod = real_pod(cpu="1975m")
    reply = call(harness, "filter", args_names(pod, NODES))
    assert reply["NodeNames"] == ["n2"]
    assert set(reply["FailedNodes"]) == {"n1", "n3"}
    assert "insufficient cpu" in reply["FailedNodes"]["n1"]
    assert "insufficient memory" in reply["FailedNodes"]["n3"]


def test_two_pods_in_a_row_do_not_both_take_the_last_slot(harness: Harness) -> None:
    harness.load_plan(plan_doc({F: ["n1"]}))
    first = real_pod(name="p1", uid="u1")
    second = real_pod(name="p2", uid="u2")
    # p1: the only free slot is on n1; kube-scheduler binds to a lone node without scoring.
    assert call(harness, "filter", args_names(first, NODES))["NodeNames"] == ["n1"]
    assert set(harness.state.assumed) == {"u1"}
    # p2 arrives before the watch shows p1 bound: n1's slot is taken by the assumption.
    assert call(harness, "filter", args_names(second, NODES))["NodeNames"] == NODES
    # the watch reports p1 bound on n1: the binding replaces the assumption, n1 stays full
    harness.state.apply_pod("MODIFIED", bound("p1", "n1", uid="u1"))
    assert harness.state.assumed == {}
    assert call(harness, "filter", args_names(second, NODES))["NodeNames"] == NODES
    # p1 deleted: the slot is free again
    harness.state.apply_pod("DELETED", bound("p1", "n1", uid="u1"))
    assert call(harness, "filter", args_names(second, NODES))["NodeNames"] == ["n1"]


def test_a_burst_of_replicas_fills_planned_slots_one_by_one(harness: Harness) -> None:
    # Plan a:1, b:2, c:1 (the e2e Deployment case). No pod is bound yet when all four are filtered.
    # p0: free a1 b2 c1 → b (most free). p1: a1 b1 c1, b now busier (p0 assumed, 2.025 cores)
    # and the default curve is flatter there → b. p2: a1 c1 tie → a (request order). p3: c.
    harness.load_plan(plan_doc({F: ["a", "b", "b", "c"]}))
    got = [
        call(harness, "filter", args_names(real_pod(name=f"p{i}", uid=f"u{i}"), ["a", "b", "c"]))["NodeNames"]
        for i in range(5)
    ]
    assert got[:4] == [["b"], ["b"], ["a"], ["c"]]
    assert got[4] == ["a", "b", "c"]  # plan full: overflow may go anywhere
    assert {k: a.node for k, a in harness.state.assumed.items()} == {"u0": "b", "u1": "b", "u2": "a", "u3": "c"}


def test_prioritize_makes_the_top_node_unique_and_assumes_it(harness: Harness) -> None:
    # Overflow: the only planned slot (n4) is taken, so every node is kept and scored. All idle:
    # no carbon preference (all 0) → the first node gets 1 so that the pick is not a tie.
    harness.load_plan(plan_doc({F: ["n4"]}))
    harness.state.replace_pods([bound("x", "n4")])
    reply = call(harness, "prioritize", args_names(real_pod(uid="u1"), ["n1", "n2", "n3"]))
    assert reply == [{"Host": "n1", "Score": 1}]
    assert harness.state.assumed["u1"].node == "n1"
    # n1 (assumed, now busier → flatter curve) scores 5, n2/n3 0: n1 stays the unique top
    reply = call(harness, "prioritize", args_names(real_pod(uid="u2"), ["n1", "n2", "n3"]))
    assert scores(reply, ["n1", "n2", "n3"]) == {"n1": 5, "n2": 0, "n3": 0}
    # two nodes tied at the top (one bound pod each, earlier assumptions expired): the second drops one point
    harness.clock.now += harness.state.assume_ttl_s + 1
    harness.state.replace_pods([bound("x", "n4"), bound("y", "n1"), bound("z", "n2")])
    reply = call(harness, "prioritize", args_names(real_pod(uid="u3"), ["n1", "n2", "n3"]))
    assert scores(reply, ["n1", "n2", "n3"]) == {"n1": 5, "n2": 4, "n3": 0}


def test_a_retry_of_the_same_pod_is_not_counted_twice(harness: Harness) -> None:
    harness.load_plan(plan_doc({F: ["n1"]}))
    pod = real_pod(uid="same")
    for _ in range(3):
        assert call(harness, "filter", args_names(pod, NODES))["NodeNames"] == ["n1"]
    assert list(harness.state.assumed) == ["same"]


def test_assumptions_expire_after_their_ttl(harness: Harness) -> None:
    harness.load_plan(plan_doc({F: ["n1"]}))
    call(harness, "filter", args_names(real_pod(uid="u1"), NODES))
    harness.clock.now += harness.state.assume_ttl_s + 1  # the binding never showed up
    assert call(harness, "filter", args_names(real_pod(uid="u2"), NODES))["NodeNames"] == ["n1"]
    assert list(harness.state.assumed) == ["u2"]


def test_terminal_and_terminating_pods_free_their_slot(harness: Harness) -> None:
    harness.load_plan(plan_doc({F: ["n1"]}))
    done = bound("done", "n1")
    done["status"]["phase"] = "Succeeded"
    leaving = bound("leaving", "n1")
    leaving["metadata"]["deletionTimestamp"] = "2025-06-01T10:20:00Z"
    harness.state.replace_pods([done])
    assert call(harness, "filter", args_names(real_pod(uid="x"), NODES))["NodeNames"] == ["n1"]
    harness.state.replace_pods([leaving])
    assert call(harness, "filter", args_names(real_pod(uid="x"), NODES))["NodeNames"] == ["n1"]


def test_scores_prefer_planned_nodes_then_lower_marginal_power(harness: Harness) -> None:
    # NodeList mode so each node brings its own power curve (annotation casa.dev/power-model):
    # slopes dP/dU: a = 1 W/core, b = 3 W/core, c = 2 W/core (linear curves, D coefficient).
    # Only c is planned → c scores 6 + round(4 × (1/1 + g_c)/2) with g_c = (3 − 2)/(3 − 1) = 0.5
    # → 6 + round(3.0) = 9. Off plan: a: round(5 × (3 − 1)/2) = 5, b: round(5 × 0) = 0.
    # (Prioritize is what the scheduler calls when filter kept several nodes; here it is called
    # directly to see the scoring rule.)
    def curve(slope: float) -> dict[str, Any]:
        return {**POWER_MODEL, "coefficients": {**POWER_MODEL["coefficients"], "D": slope}}

    nodes = [
        real_node("a", power_model=curve(1.0)),
        real_node("b", power_model=curve(3.0)),
        real_node("c", power_model=curve(2.0)),
    ]
    harness.load_plan(plan_doc({F: ["c"]}))
    reply = call(harness, "prioritize", args_nodes(real_pod(), nodes))
    assert scores(reply, ["a", "b", "c"]) == {"a": 5, "b": 0, "c": 9}
    assert all(0 < e["Score"] <= 10 for e in reply)  # zero scores are left out


def test_default_curve_prefers_busier_nodes(harness: Harness) -> None:
    # The default EPYC curve is steepest at idle, so a node already running pods has the lower
    # marginal power: n2 (4 cores allocated) beats idle n1 and n3 with no plan preference.
    harness.load_plan(plan_doc({"other": ["n4"]}))
    harness.state.replace_pods([bound("x", "n2", function=None, cpu="4")])
    reply = call(harness, "prioritize", args_names(real_pod(), ["n1", "n2", "n3"]))
    assert scores(reply, ["n1", "n2", "n3"]) == {"n1": 0, "n2": 5, "n3": 0}


def test_nodelist_mode_replies_with_full_nodes(harness: Harness) -> None:
    harness.load_plan(plan_doc({F: ["n2"]}))
    nodes = [real_node(n) for n in NODES]
    reply = call(harness, "filter", args_nodes(real_pod(), nodes))
    assert reply["NodeNames"] is None
    assert [n["metadata"]["name"] for n in reply["Nodes"]["items"]] == ["n2"]
    assert reply["Nodes"]["items"][0] == nodes[1]  # echoed untouched (managedFields and all)


def test_unusable_power_model_annotation_falls_back_to_default(harness: Harness) -> None:
    harness.load_plan(plan_doc({F: ["n1"]}))
    node = real_node("n1")
    node["metadata"]["annotations"]["casa.dev/power-model"] = "{not json"
    reply = call(harness, "prioritize", args_nodes(real_pod(), [node, real_node("n2")]))
    assert scores(reply, ["n1", "n2"])["n1"] >= 6


def test_decisions_return_the_placement_to_assume_and_change_nothing() -> None:
    # The decision is pure: it names (pod, node) and the handler applies it. Plan: n2 has one
    # slot, so filter keeps n2 alone (kube-scheduler binds to a lone node) and names it; with
    # the plan full (x bound on n2), prioritize's unique top node is named instead: n2, whose
    # 2 allocated cores sit where the default curve is flatter than on idle n1 and n3.
    state = ExtenderState(clock=lambda: 0.0)
    state.set_plan(Plan.from_json(plan_doc({F: ["n2"]})), "ok", "test")
    pod = parse_pod(real_pod(uid="u1"))
    now = 1_893_456_300.0  # inside the plan's epoch
    out = decide_filter(state, pod, NODES, None, now)
    assert (out.kept, out.assume, out.fail_open) == ([1], (pod, "n2"), None)
    assert decide_filter(state, pod, NODES, None, now) == out  # nothing was assumed in between
    assert state.assumed == {}
    assert state.free_slots == {F: {"n2": 1}}
    state.replace_pods([bound("x", "n2")])
    scored = decide_prioritize(state, pod, ["n1", "n2", "n3"], None, now)
    assert scored.assume == (pod, "n2")
    assert scored.scores == {"n2": 5}
    assert state.assumed == {}


@pytest.mark.parametrize(
    ("function", "kept", "assume"),
    [
        # a pod of no function passes through: every node, nothing to assume
        pytest.param(None, NODES, None, id="no-function"),
        # several capacity-feasible nodes and no plan for it: kube-scheduler will score them
        pytest.param("resize", NODES, None, id="not-planned"),
    ],
)
def test_filter_assumes_nothing_when_several_nodes_stay(function: str | None, kept: list[str], assume: None) -> None:
    state = ExtenderState(clock=lambda: 0.0)
    state.set_plan(Plan.from_json(plan_doc({F: ["n2"]})), "ok", "test")
    pod = bound("p", "n1", function=function)
    pod["spec"].pop("nodeName")
    out = decide_filter(state, parse_pod(pod), NODES, None, 1_893_456_300.0)
    assert [NODES[i] for i in out.kept] == kept
    assert out.assume is assume
