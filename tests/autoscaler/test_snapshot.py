"""Snapshot: Node/Pod/Deployment JSON → live state → the planner's ClusterSnapshot and D_{e-1}."""

from __future__ import annotations

import pytest

from casa_sched.autoscaler.adapters.deployment import workload_from_deployment
from casa_sched.autoscaler.snapshot import MIB, build_state, node_from_json, planner_snapshot, pod_from_json
from casa_sched.contract.cluster import SimParams, units_of
from casa_sched.kube.objects import ObjectError
from casa_sched.models.power import DEFAULT_NODE_CURVE, PowerCurve
from casa_sched.settings import CasaSettings

from .objects import deployment, node, pod

CURVE = PowerCurve((0.0, 0.0, 0.0, 2.0, 50.0), cores=16, source="profiled")


@pytest.mark.parametrize(("obj", "usable", "model"), [
    pytest.param(node("a"), True, "default", id="ready-no-annotation-default-curve"),
    pytest.param(node("a", power_model=CURVE.to_json()), True, "annotation", id="profiled-curve"),
    pytest.param(node("a", power_model="{not json"), True, "invalid", id="malformed-annotation-default-curve"),
    pytest.param(node("a", power_model='{"coefficients": {"A": 1}}'), True, "invalid", id="incomplete-model"),
    pytest.param(node("a", ready="False"), False, None, id="not-ready"),
    pytest.param(node("a", ready="Unknown"), False, None, id="ready-unknown"),
    pytest.param(node("a", unschedulable=True), False, None, id="cordoned"),
])
def test_usable_nodes_and_their_power_curves(obj, usable, model) -> None:
    got = node_from_json(obj)
    assert (got is not None) == usable
    if got is not None:
        assert got.power_model == model
        assert got.curve == (CURVE if model == "annotation" else DEFAULT_NODE_CURVE)
        assert (got.cpu_cores, got.memory_bytes) == (16.0, 32 * 2.0**30)


def test_malformed_power_model_is_a_warning_not_an_error() -> None:
    state = build_state([node("a", power_model="[1, 2]"), node("b")], [], [])
    assert [n.name for n in state.nodes] == ["a", "b"]
    assert len(state.warnings) == 1
    assert "node a: malformed casa.dev/power-model" in state.warnings[0]


@pytest.mark.parametrize(("cpu_cores", "units"), [
    pytest.param(2.0, 1, id="2-cores-1-unit"),
    pytest.param(0.25, 1, id="small-request-rounds-up-to-1"),
    pytest.param(2.9, 1, id="2.9/2=1.45-rounds-to-1"),
    pytest.param(3.0, 2, id="3/2=1.5-rounds-half-up-to-2"),
    pytest.param(8.0, 4, id="8/2=4"),
    pytest.param(1000.0, 32, id="capped-at-max-container-size-32"),
])
def test_pod_size_in_base_units(cpu_cores, units) -> None:
    assert units_of(cpu_cores, SimParams()) == units


def test_pod_fields_read() -> None:
    p = pod_from_json(pod("p", "fa", "a", cpu="4", memory="300Mi", sidecar_cpu="250m", deletion_cost="-1000",
                          conditions=[{"type": "PodResizePending", "status": "True", "reason": "Deferred"}]))
    assert (p.key, p.node, p.phase, p.running) == ("uid-p", "a", "Running", True)
    assert p.containers == {"app": (4.0, 300 * MIB), "queue-proxy": (0.25, 0.0)}
    assert p.cpu_cores == pytest.approx(4.25)  # the pod's effective request: 4 + 0.25
    assert (p.deletion_cost, p.resize_pending, p.resize_in_progress) == ("-1000", "Deferred", False)


def test_malformed_pod_is_skipped_with_a_warning() -> None:
    bad = pod("p", "fa", "a", cpu="two")
    with pytest.raises(ObjectError, match="cpu"):
        pod_from_json(bad)
    assert "pod skipped" in build_state([node("a")], [bad], []).warnings[0]


@pytest.mark.parametrize(("obj", "container", "message"), [
    pytest.param(deployment("d", "fa"), "app", None, id="first-container"),
    pytest.param(deployment("d", "fa", containers=("sidecar", "fn"), container_annotation="fn"), "fn", None,
                 id="annotation-names-the-function-container"),
    pytest.param(deployment("d", "fa", container_annotation="nope"), None, "names no container", id="unknown-container"),
    pytest.param(deployment("d", None), None, None, id="not-a-function"),
])
def test_deployment_workloads(obj, container, message) -> None:
    if message:
        with pytest.raises(ObjectError, match=message):
            workload_from_deployment(obj)
        return
    w = workload_from_deployment(obj)
    assert (w.container if w else None) == container
    if w is not None:
        assert (w.function, w.platform, w.name, w.replicas, dict(w.pod_selector)) == (
            "fa", "deployment", "d", 1, {"app": "fa"})


def test_planner_snapshot_capacity_and_previous_distribution() -> None:
    settings = CasaSettings()
    params = SimParams.from_settings(settings)
    workloads = [workload_from_deployment(deployment("da", "fa")), workload_from_deployment(deployment("dh", "fh"))]
    pods = [
        pod("a1", "fa", "a", cpu="4", sidecar_cpu="500m"),  # managed: only its 0.5-core sidecar is "other"
        pod("a2", "fa", "b", cpu="2"),
        pod("a3", "fa", None, cpu="2", phase="Pending"),  # unscheduled: in no node's D_{e-1}
        pod("h1", "fh", "a", cpu="3"),  # held function: its 3 cores are reserved
        pod("x", None, "b", cpu="1500m", namespace="kube-system"),  # a pod of no function
        pod("gone", "fa", "b", cpu="2", deleting=True),  # terminating: still requests, not in D_{e-1}
    ]
    state = build_state([node("a", cpu="16"), node("b", cpu="8"), node("c", ready="False")], pods,
                        [w for w in workloads if w])
    snap = planner_snapshot(state, ["fa"], settings, params, epoch=7)
    # a: 16 − 0.5 (sidecar) − 3 (held fh) = 12.5 → 12 cores; b: 8 − 1.5 (x) − 2 (terminating) = 4.5 → 4 cores
    assert [(n.name, n.cores) for n in snap.cluster.nodes] == [("a", 12), ("b", 4)]
    prev = snap.previous
    assert prev is not None
    assert prev.epoch == 6
    assert {f: [(c.node, c.size) for c in cs] for f, cs in prev.containers.items()} == {"fa": [("a", 2), ("b", 1)]}


def test_planner_snapshot_takes_every_cluster_wide_setting() -> None:
    from dataclasses import fields

    from casa_sched.contract.cluster import ClusterSpec
    from casa_sched.settings import load_settings

    settings = load_settings(environ={}, overrides={
        "cluster.sleep_empty_nodes": True, "cluster.scale_down_unneeded_s": 120.0, "cluster.wake_latency_s": 33.0,
        "accounting.water_l_per_cooling_kwh": 1.5,
    })
    state = build_state([node("a", cpu="16")], [], [])
    snap = planner_snapshot(state, [], settings, SimParams.from_settings(settings), epoch=1)
    # the live cluster differs from a simulated one only in its nodes: every other field is the settings'
    simulated = ClusterSpec.uniform(1, settings)
    for f in fields(ClusterSpec):
        if f.name != "nodes":
            assert getattr(snap.cluster, f.name) == getattr(simulated, f.name), f.name
    assert snap.cluster.scale_down_unneeded_s == 120.0
    assert snap.water.l_per_cooling_kwh == 1.5
