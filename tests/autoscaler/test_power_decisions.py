"""Node power decisions (casa_sched.autoscaler.power): which nodes are cordoned, drained, powered
off or on and uncordoned, from the plan's wish and the Node and pod JSON. Never a node with a pod
that is not a function's, a DaemonSet's or a static pod's."""

from __future__ import annotations

from typing import Any

import pytest

from casa_sched.autoscaler.power import NodeView, PowerState, Step, decide, node_view, pod_view

FN = {"casa.dev/function": "thumb"}


def _node(state: str | None = None, *, unschedulable: bool = False, ready: bool = True) -> dict[str, Any]:
    ann = {"casa.dev/power-state": state} if state else {}
    return {"metadata": {"name": "n1", "annotations": ann}, "spec": {"unschedulable": unschedulable} if unschedulable else {},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def _pod(name: str, labels: dict[str, str] | None = None, *, owner: str | None = None, mirror: bool = False,
         deleting: bool = False, namespace: str = "default") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels or {}}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "x", "apiVersion": "apps/v1", "uid": "u"}]
    if mirror:
        meta["annotations"] = {"kubernetes.io/config.mirror": "abc"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": "n1"}}


def _view(state: str | None = None, pods: tuple[dict[str, Any], ...] = (), **kw: Any) -> NodeView:
    return node_view(_node(state, **kw), pods)


@pytest.mark.parametrize(("pod", "blocks"), [
    pytest.param(_pod("f", FN), False, id="casa-label-function-pod"),
    pytest.param(_pod("k", {"serving.knative.dev/service": "s"}), False, id="knative-function-pod"),
    pytest.param(_pod("o", {"faas_function": "s"}), False, id="openfaas-function-pod"),
    pytest.param(_pod("ds", owner="DaemonSet", namespace="kube-system"), False, id="daemonset-pod-in-kube-system"),
    pytest.param(_pod("static", mirror=True, namespace="kube-system"), False, id="mirror-static-pod"),
    pytest.param(_pod("gone", deleting=True), False, id="terminating-pod-is-leaving"),
    pytest.param(_pod("db", {"app": "postgres"}, owner="StatefulSet"), True, id="statefulset-pod-blocks"),
    pytest.param(_pod("dns", {"k8s-app": "kube-dns"}, owner="ReplicaSet", namespace="kube-system"), True,
                 id="kube-system-deployment-pod-blocks"),
    pytest.param(_pod("bare"), True, id="bare-pod-blocks"),
])
def test_which_pods_forbid_powering_a_node_down(pod: dict[str, Any], blocks: bool) -> None:
    assert pod_view(pod).blocks_power_down is blocks


@pytest.mark.parametrize(("view", "steps", "n_evict", "waits"), [
    # planned asleep, serving, only function pods: cordon, evict both; power off after they go
    pytest.param(_view(None, (_pod("a", FN), _pod("b", FN))), (Step.CORDON, Step.EVICT), 2, True, id="on-with-fn-pods"),
    # empty (a DaemonSet pod does not count): cordon and power off in one pass
    pytest.param(_view("on", (_pod("ds", owner="DaemonSet"),)), (Step.CORDON, Step.POWER_OFF), 0, False, id="on-empty"),
    # draining, cordoned, one pod already terminating: nothing to write, wait for it
    pytest.param(_view("draining", (_pod("a", FN, deleting=True),), unschedulable=True), (), 0, True,
                 id="draining-pod-terminating"),
    # draining, cordoned, empty (e.g. a failed hook last pass): the hook again, no cordon write
    pytest.param(_view("draining", unschedulable=True), (Step.POWER_OFF,), 0, False, id="draining-retry-hook"),
    # draining but someone uncordoned it: cordon again
    pytest.param(_view("draining"), (Step.CORDON, Step.POWER_OFF), 0, False, id="draining-uncordoned-by-someone"),
    # sleeping: nothing (idempotent)
    pytest.param(_view("sleeping", unschedulable=True, ready=False), (), 0, False, id="sleeping-stays"),
])
def test_a_node_planned_to_sleep(view: NodeView, steps: tuple[Step, ...], n_evict: int, waits: bool) -> None:
    d = decide(view, want_sleep=True)
    assert (d.steps, len(d.evict), bool(d.wait), d.blocked) == (steps, n_evict, waits, ())


@pytest.mark.parametrize(("state", "unschedulable", "steps"), [
    pytest.param(None, False, (), id="serving-never-touched"),
    # casa had cordoned it: give it back (uncordon + on)
    pytest.param("draining", True, (Step.UNCORDON,), id="draining-given-back"),
])
def test_a_node_with_a_non_function_pod_is_never_powered_down(state: str | None, unschedulable: bool,
                                                              steps: tuple[Step, ...]) -> None:
    view = _view(state, (_pod("f", FN), _pod("db", {"app": "pg"}, owner="StatefulSet")), unschedulable=unschedulable)
    d = decide(view, want_sleep=True)
    assert d.steps == steps
    assert Step.POWER_OFF not in d.steps
    assert Step.CORDON not in d.steps
    assert d.evict == ()
    assert d.blocked == ("default/db",)


@pytest.mark.parametrize(("view", "steps", "waits"), [
    pytest.param(_view(None), (), False, id="serving-nothing"),
    pytest.param(_view("on"), (), False, id="on-nothing"),
    # an operator's cordon (no casa state) is not casa's to lift
    pytest.param(_view(None, unschedulable=True), (), False, id="operator-cordon-kept"),
    pytest.param(_view("draining", unschedulable=True), (Step.UNCORDON,), False, id="draining-uncordoned"),
    # sleeping and NotReady (powered off): power on, then wait for Ready
    pytest.param(_view("sleeping", unschedulable=True, ready=False), (Step.POWER_ON,), True, id="sleeping-power-on"),
    pytest.param(_view("waking", unschedulable=True, ready=False), (), True, id="waking-not-ready-waits"),
    pytest.param(_view("waking", unschedulable=True, ready=True), (Step.UNCORDON,), False, id="waking-ready-uncordon"),
])
def test_a_node_planned_on(view: NodeView, steps: tuple[Step, ...], waits: bool) -> None:
    d = decide(view, want_sleep=False)
    assert (d.steps, bool(d.wait)) == (steps, waits)


def test_an_unknown_power_state_is_reported_and_treated_as_unset() -> None:
    view = _view("hibernating")
    assert view.state is None
    assert view.state_error is not None
    assert "hibernating" in view.state_error
    assert decide(view, want_sleep=False).steps == ()
    assert PowerState("sleeping") is PowerState.SLEEPING


@pytest.mark.parametrize(("state", "unschedulable", "ready", "usable"), [
    pytest.param(None, False, True, True, id="serving"),
    pytest.param(None, True, True, False, id="operator-cordon-not-planned-on"),
    pytest.param(None, False, False, False, id="not-ready"),
    # casa's own powered-down nodes stay in the planner's view, so it can keep them asleep or wake them
    pytest.param("sleeping", True, False, True, id="casa-sleeping-powered-off"),
    pytest.param("draining", True, True, True, id="casa-draining"),
    pytest.param("waking", True, False, True, id="casa-waking"),
    pytest.param("on", True, True, False, id="on-but-cordoned-by-someone"),
])
def test_which_nodes_the_planner_sees(state: str | None, unschedulable: bool, ready: bool, usable: bool) -> None:
    from casa_sched.autoscaler.snapshot import node_from_json

    obj = _node(state, unschedulable=unschedulable, ready=ready)
    obj["status"]["allocatable"] = {"cpu": "8", "memory": "16Gi"}
    assert (node_from_json(obj) is not None) is usable
