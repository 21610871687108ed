"""Property tests of the wire types: any well-formed ExtenderArgs gets a well-formed reply in the
mode it was asked in; any other JSON gets a 400, never an exception."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casa_sched.contract.plan import Plan
from casa_sched.devcluster.payloads import plan_doc, real_node, real_pod
from casa_sched.extender.app import Extender
from casa_sched.extender.state import ExtenderState
from casa_sched.extender.wire import DNS1123_SUBDOMAIN, MAX_NODE_NAME_CHARS, encode_prioritize
from casa_sched.kube.quantity import QuantityError, parse_quantity
from casa_sched.metrics import CasaMetrics
from tests.extender.support import FakeClock

NAME = st.text(min_size=1, max_size=20)
NODE_NAME = st.from_regex(DNS1123_SUBDOMAIN, fullmatch=True).filter(lambda n: len(n) <= MAX_NODE_NAME_CHARS)
NAMES = st.lists(st.sampled_from([f"n{i}" for i in range(8)]) | NODE_NAME, max_size=30)
FUNCTIONS = st.sampled_from(["thumbnail", "resize", None])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def make_extender(planned: list[str]) -> Extender:
    clock = FakeClock()
    state = ExtenderState(clock=clock)
    state.set_plan(Plan.from_json(plan_doc({"thumbnail": planned})), "ok", "prop")
    return Extender(state, CasaMetrics())


def function_pod(function: str | None, uid: str) -> dict[str, Any]:
    pod = real_pod(uid=uid)
    pod["metadata"]["labels"] = {"casa.dev/function": function} if function else {"app": "x"}
    return pod


def is_subsequence(sub: list[Any], seq: list[Any]) -> bool:
    it = iter(seq)
    return all(any(x is y or x == y for y in it) for x in sub)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=NAMES,
    planned=st.lists(st.sampled_from([f"n{i}" for i in range(8)]), max_size=6),
    function=FUNCTIONS,
    uid=NAME,
)
def test_names_mode_reply_is_a_subsequence_with_reasons_only_for_input_nodes(
    names: list[str], planned: list[str], function: str | None, uid: str
) -> None:
    ext = make_extender(planned)
    body = json.dumps({"Pod": function_pod(function, uid), "Nodes": None, "NodeNames": names}).encode()
    status, raw = ext.filter(body)
    assert status == 200
    reply = json.loads(raw)
    assert set(reply) == {"Nodes", "NodeNames", "FailedNodes", "FailedAndUnresolvableNodes", "Error"}
    assert reply["Nodes"] is None
    assert reply["Error"] == ""
    assert is_subsequence(reply["NodeNames"], names)
    assert set(reply["FailedNodes"]) | set(reply["FailedAndUnresolvableNodes"]) <= set(names)
    if names and function != "thumbnail":
        assert reply["NodeNames"] == names  # no plan for it: nothing removed
    if names and function == "thumbnail":
        assert reply["NodeNames"], "a function pod is never left without a node by the plan alone"

    status, raw = ext.prioritize(body)
    assert status == 200
    scores = json.loads(raw)
    hosts = [e["Host"] for e in scores]
    assert len(hosts) == len(set(hosts))
    assert set(hosts) <= set(names)
    assert all(set(e) == {"Host", "Score"} and isinstance(e["Score"], int) and 1 <= e["Score"] <= 10 for e in scores)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.lists(st.sampled_from([f"n{i}" for i in range(8)]), max_size=8, unique=True),
    planned=st.lists(st.sampled_from([f"n{i}" for i in range(8)]), max_size=6),
)
def test_nodelist_mode_reply_echoes_the_requests_node_objects(names: list[str], planned: list[str]) -> None:
    ext = make_extender(planned)
    nodes = [real_node(n) for n in names]
    body = json.dumps(
        {"Pod": function_pod("thumbnail", "u"), "Nodes": {"metadata": {}, "items": nodes}, "NodeNames": None}
    )
    status, raw = ext.filter(body.encode())
    assert status == 200
    reply = json.loads(raw)
    assert reply["NodeNames"] is None
    assert is_subsequence(reply["Nodes"]["items"], nodes)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=JSON_VALUES)
def test_any_other_json_is_answered_200_or_400_never_an_exception(value: Any) -> None:
    ext = make_extender(["n1"])
    for verb in (ext.filter, ext.prioritize):
        status, raw = verb(json.dumps(value).encode())
        assert status in (200, 400)
        reply = json.loads(raw)
        if status == 400:
            assert isinstance(reply["error"], str)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # shared CI boxes are slow
@given(value=JSON_VALUES, names=NAMES)
def test_any_pod_object_is_answered_200_or_400(value: Any, names: list[str]) -> None:
    ext = make_extender(["n1"])
    status, _ = ext.filter(json.dumps({"Pod": value, "NodeNames": names}).encode())
    assert status in (200, 400)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # shared CI boxes are slow
@given(scores=st.dictionaries(st.text(), st.integers(0, 10)))
def test_prioritize_encoding_round_trips_any_host_name(scores: dict[str, int]) -> None:
    decoded = json.loads(encode_prioritize(scores))
    assert decoded == [{"Host": h, "Score": s} for h, s in scores.items()]


SUFFIX = {"": 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 1024.0, "Mi": 1024.0**2, "Gi": 1024.0**3}


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # shared CI boxes are slow
@given(n=st.integers(0, 10**6), suffix=st.sampled_from(sorted(SUFFIX)))
def test_quantities_parse_to_base_units(n: int, suffix: str) -> None:
    assert parse_quantity(f"{n}{suffix}") == n * SUFFIX[suffix]


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # shared CI boxes are slow
@given(text=st.text(max_size=12))
def test_quantity_parser_never_crashes(text: str) -> None:
    try:
        value = parse_quantity(text)
    except QuantityError:
        return
    assert not math.isnan(value)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # shared CI boxes are slow
@given(cpus=st.lists(st.sampled_from(["1e400", "-1e400", "-5", "1e-999999999", "7", "+.5"]), min_size=1, max_size=4))
def test_absurd_requests_never_poison_node_sums(cpus: list[str]) -> None:
    from casa_sched.kube.objects import parse_pod

    pod = real_pod()
    pod["spec"]["containers"] = [{"name": f"c{i}", "resources": {"requests": {"cpu": c}}} for i, c in enumerate(cpus)]
    info = parse_pod(pod)
    assert 0.0 <= info.cpu_cores <= 1e18


OPS = st.lists(
    st.tuples(
        st.sampled_from(["bind", "delete", "assume", "forget", "terminate", "replan"]),
        st.integers(0, 5),  # pod
        st.sampled_from(["n0", "n1", "n2"]),
        st.sampled_from(["thumbnail", "resize"]),
    ),
    max_size=40,
)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # shared CI boxes are slow
@given(ops=OPS, planned=st.lists(st.sampled_from(["n0", "n1", "n2"]), max_size=5))
def test_incremental_free_slots_equal_a_recount(ops: list[tuple[str, int, str, str]], planned: list[str]) -> None:
    """free_slots is maintained per event; it must always equal planned − live from scratch."""
    state = ExtenderState(clock=FakeClock())
    state.set_plan(Plan.from_json(plan_doc({"thumbnail": planned, "resize": planned[:2]})), "ok", "prop")
    for op, i, node, function in ops:
        pod = real_pod(name=f"p{i}", uid=f"u{i}", node_name=node)
        pod["metadata"]["labels"] = {"casa.dev/function": function}
        if op == "bind":
            state.apply_pod("MODIFIED", pod)
        elif op == "delete":
            state.apply_pod("DELETED", pod)
        elif op == "terminate":
            pod["metadata"]["deletionTimestamp"] = "2030-01-01T00:00:00Z"
            state.apply_pod("MODIFIED", pod)
        elif op in ("assume", "forget"):
            from casa_sched.kube.objects import parse_pod

            pending = real_pod(name=f"p{i}", uid=f"u{i}")
            pending["metadata"]["labels"] = {"casa.dev/function": function}
            with state.lock:
                if op == "assume":
                    state.assume_locked(parse_pod(pending), node, 0.0)
                else:
                    state.forget_locked(f"u{i}")
        else:
            state.set_plan(Plan.from_json(plan_doc({"thumbnail": [node, *planned]})), "ok", "prop")
        view = state.plan_view
        assert view is not None
        recount = {
            f: {
                n: c - state.usage[n].functions.get(f, 0) if n in state.usage else c
                for n, c in slots.items()
                if c - (state.usage[n].functions.get(f, 0) if n in state.usage else 0) > 0
            }
            for f, slots in view.slots.items()
        }
        assert {f: d for f, d in state.free_slots.items() if d} == {f: d for f, d in recount.items() if d}
