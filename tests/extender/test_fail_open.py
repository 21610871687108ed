"""Failing open: without a usable plan, or on an internal error, every node stays, scores are neutral,
and /metrics counts why."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import casa_sched.extender.app as app_module
from casa_sched.devcluster.payloads import args_names, args_nodes, plan_doc, real_node, real_pod
from casa_sched.extender.app import Extender
from tests.extender.support import Harness

NODES = ["n1", "n2", "n3"]


def fail_open_count(registry: CollectorRegistry, reason: str) -> float:
    value = registry.get_sample_value("casa_extender_fail_open_total", {"reason": reason})
    return 0.0 if value is None else value


def both_verbs(h: Harness, args: dict[str, Any]) -> tuple[Any, Any]:
    e = h.app.state.extender
    assert isinstance(e, Extender)
    body = json.dumps(args).encode()
    (s1, f), (s2, p) = e.filter(body), e.prioritize(body)
    assert s1 == s2 == 200
    return json.loads(f), json.loads(p)


def assert_open(h: Harness, reason: str) -> None:
    f, p = both_verbs(h, args_names(real_pod(), NODES))
    assert f["NodeNames"] == NODES
    assert f["FailedNodes"] == {}
    assert f["FailedAndUnresolvableNodes"] == {}
    assert p == []  # neutral: 0 everywhere
    assert fail_open_count(h.metrics.registry, reason) == 2.0  # one per verb
    assert h.state.assumed == {}


def test_no_plan_fails_open(harness: Harness) -> None:
    assert_open(harness, "plan_missing")


def test_invalid_plan_fails_open(harness: Harness) -> None:
    harness.state.set_plan(None, "invalid", "configmap casa-system/casa-plan: plan is not valid JSON")
    assert_open(harness, "plan_invalid")


@pytest.mark.parametrize(
    ("minutes_after_epoch_start", "stale"),
    [
        # epoch 00:00-00:15, stale_after 1800 s: fresh until 00:15 + 30 min = 00:45
        pytest.param(5, False, id="inside-epoch"),
        pytest.param(44, False, id="within-stale-window"),
        pytest.param(46, True, id="past-epoch-end-plus-30-min"),
    ],
)
def test_stale_plan_fails_open(harness: Harness, minutes_after_epoch_start: int, stale: bool) -> None:
    harness.load_plan(plan_doc({"thumbnail": ["n1"]}))  # epoch_start 2030-01-01T00:00:00Z
    harness.clock.now = 1_893_456_000.0 + 60 * minutes_after_epoch_start
    if stale:
        assert_open(harness, "plan_stale")
        assert harness.metrics.registry.get_sample_value("casa_plan_stale_total") == 2.0
    else:
        f, _ = both_verbs(harness, args_names(real_pod(), NODES))
        assert f["NodeNames"] == ["n1"]


def test_plan_without_epoch_start_is_dated_by_its_load_time(harness: Harness) -> None:
    doc = json.loads(plan_doc({"thumbnail": ["n1"]}))
    doc["epoch_start"] = None
    harness.load_plan(json.dumps(doc))
    f, _ = both_verbs(harness, args_names(real_pod(), NODES))
    assert f["NodeNames"] == ["n1"]
    harness.clock.now += 900 + 1800 + 1
    assert_open(harness, "plan_stale")


@pytest.mark.parametrize("mode", ["names", "nodes"])
def test_internal_error_fails_open(harness: Harness, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    harness.load_plan(plan_doc({"thumbnail": ["n1"]}))

    def boom(*_: Any, **__: Any) -> Any:
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(app_module, "decide_filter", boom)
    monkeypatch.setattr(app_module, "decide_prioritize", boom)
    args = args_names(real_pod(), NODES) if mode == "names" else args_nodes(real_pod(), [real_node(n) for n in NODES])
    f, p = both_verbs(harness, args)
    kept = f["NodeNames"] if mode == "names" else [n["metadata"]["name"] for n in f["Nodes"]["items"]]
    assert kept == NODES
    assert p == []
    assert fail_open_count(harness.metrics.registry, "internal_error") == 2.0


def test_pods_of_no_function_are_not_counted_as_failing_open(harness: Harness) -> None:
    pod = real_pod()
    pod["metadata"]["labels"] = {"app": "nginx"}
    f, p = both_verbs(harness, args_names(pod, NODES))
    assert f["NodeNames"] == NODES
    assert p == []
    assert all(fail_open_count(harness.metrics.registry, r) == 0.0 for r in ("plan_missing", "internal_error"))


def test_a_parser_bug_is_a_400_not_a_500(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> Any:
        raise KeyError("bug")

    monkeypatch.setattr(app_module, "parse_args", broken)
    e = harness.app.state.extender
    for verb in (e.filter, e.prioritize):
        status, body = verb(b"{}")
        assert status == 400
        assert json.loads(body) == {"error": "request could not be parsed: KeyError"}
