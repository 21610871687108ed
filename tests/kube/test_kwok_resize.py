"""KWOK nodes and in-place resize end to end: real kube-apiserver 1.35 + kube-scheduler + KWOK
with casa's resize Stages (casa_sched/devcluster/stages), driven by casa_sched.autoscaler.resize.

What the stages model and what they cannot: casa_sched/devcluster/kwok.py and tests/kube/README.md.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from casa_sched.autoscaler.actions import ResizeAction
from casa_sched.autoscaler.adapters.base import AdapterError, WorkloadGone
from casa_sched.autoscaler.resize import (
    ContainerSize,
    PodResizer,
    ResizeDecision,
    ResizeState,
    Step,
    decide,
    resize_state,
    send_resize,
    server_supports_resize,
)
from casa_sched.devcluster.controlplane import ControlPlane, pod_manifest, wait_bound
from casa_sched.devcluster.kwok import KWOK_NODE_LABEL, TEST_RESIZE_ANNOTATION

pytestmark = pytest.mark.k8s

MI = 2**20


def _pod(cp: ControlPlane, namespace: str, name: str, node: str, *, annotation: str | None = None) -> None:
    """A Burstable pod (app: 500m/128Mi requests, 1/256Mi limits) plus a queue-proxy sidecar."""
    m = pod_manifest(name, cpu="500m", memory="128Mi", cpu_limit="1", memory_limit="256Mi", only_on_nodes=[node])
    m["spec"]["containers"].append({"name": "queue-proxy", "image": "registry.invalid/casa/noop:0",
                                    "resources": {"requests": {"cpu": "25m", "memory": "32Mi"}}})
    if annotation:
        m["metadata"]["annotations"] = {TEST_RESIZE_ANNOTATION: annotation}
    cp.request("POST", f"/api/v1/namespaces/{namespace}/pods", m)


def _get(cp: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    got: dict[str, Any] = cp.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
    return got


def _wait_state(cp: ControlPlane, namespace: str, name: str, state: ResizeState) -> dict[str, Any]:
    last: dict[str, Any] = {}

    def reached() -> bool:
        last.clear()
        last.update(_get(cp, namespace, name))
        return resize_state(last, "app").state is state

    cp.wait_for(f"pod {name} resize state {state.value}", reached, timeout_s=60, interval_s=0.2)
    return last


def _status(pod: dict[str, Any], container: str) -> dict[str, Any]:
    cs: dict[str, Any] = next(c for c in pod["status"]["containerStatuses"] if c["name"] == container)
    return cs


def _node_name() -> str:
    return f"kw-{secrets.token_hex(3)}"


def test_kwok_node_is_ready_with_its_capacity_and_annotation(kwok_nodes) -> None:
    model = '{"idle_w": 50, "max_w": 200}'
    node = kwok_nodes(_node_name(), cpu="4", memory="8Gi", pods=20, annotations={"casa.dev/power-model": model})
    status = node["status"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"  # written by KWOK
    assert all(c.get("lastHeartbeatTime") for c in status["conditions"])
    assert status["nodeInfo"]["kubeletVersion"] == "kwok-0.8.0"  # KWOK filled what we left empty
    assert (status["allocatable"]["cpu"], status["allocatable"]["memory"], status["allocatable"]["pods"]) == (
        "4", "8Gi", "20")
    assert node["metadata"]["annotations"]["casa.dev/power-model"] == model
    assert node["metadata"]["labels"][KWOK_NODE_LABEL] == "true"


def test_bound_pod_runs_and_reports_its_size(k8s_control_plane: ControlPlane, kwok_nodes, k8s_namespace) -> None:
    cp = k8s_control_plane
    node = _node_name()
    kwok_nodes(node, cpu="4", memory="8Gi")
    _pod(cp, k8s_namespace, "fn-0", node)
    assert wait_bound(cp, k8s_namespace, ["fn-0"]) == {"fn-0": node}
    pod = _wait_state(cp, k8s_namespace, "fn-0", ResizeState.APPLIED)
    assert pod["status"]["phase"] == "Running"
    assert pod["status"]["podIP"]
    app = _status(pod, "app")
    assert app["resources"] == {"requests": {"cpu": "500m", "memory": "128Mi"},
                                "limits": {"cpu": "1", "memory": "256Mi"}}
    assert app["allocatedResources"] == {"cpu": "500m", "memory": "128Mi"}
    assert _status(pod, "queue-proxy")["resources"] == {"requests": {"cpu": "25m", "memory": "32Mi"}}


def test_resize_is_applied_and_reported_for_the_function_container_only(
        k8s_control_plane: ControlPlane, kwok_nodes, k8s_namespace, k8s_api) -> None:
    cp = k8s_control_plane
    node = _node_name()
    kwok_nodes(node, cpu="4", memory="8Gi")
    _pod(cp, k8s_namespace, "fn-0", node)
    before = _wait_state(cp, k8s_namespace, "fn-0", ResizeState.APPLIED)
    size = ContainerSize(cpu_cores=1.0, memory_bytes=256 * MI)
    d = decide(before, "app", size)
    assert d.step is Step.PATCH
    assert send_resize(k8s_api, k8s_namespace, "fn-0", d) is True

    after = _wait_state(cp, k8s_namespace, "fn-0", ResizeState.APPLIED)
    # Limits kept their 2x ratio: 1 core -> 2 cores, 256Mi -> 512Mi. The API server writes the
    # quantities in canonical form ("1000m" -> "1", "268435456" -> "256Mi").
    want = {"requests": {"cpu": "1", "memory": "256Mi"}, "limits": {"cpu": "2", "memory": "512Mi"}}
    app_spec = next(c for c in after["spec"]["containers"] if c["name"] == "app")
    assert app_spec["resources"] == want
    assert _status(after, "app")["resources"] == want
    assert _status(after, "app")["allocatedResources"] == want["requests"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    assert after["status"]["observedGeneration"] == after["metadata"]["generation"]
    sidecar = next(c for c in after["spec"]["containers"] if c["name"] == "queue-proxy")
    assert sidecar["resources"] == {"requests": {"cpu": "25m", "memory": "32Mi"}}
    assert after["status"]["qosClass"] == "Burstable"
    # The same target again: nothing to write.
    again = decide(after, "app", size)
    assert again.step is Step.NONE
    assert send_resize(k8s_api, k8s_namespace, "fn-0", again) is False


@pytest.mark.parametrize(("annotation", "state", "reason"), [
    pytest.param("deferred", ResizeState.DEFERRED, "Deferred", id="deferred"),
    pytest.param("infeasible", ResizeState.INFEASIBLE, "Infeasible", id="infeasible"),
])
def test_pending_resize_is_reported_and_not_resent(k8s_control_plane: ControlPlane, kwok_nodes, k8s_namespace,
                                                   k8s_api, annotation: str, state: ResizeState,
                                                   reason: str) -> None:
    cp = k8s_control_plane
    node = _node_name()
    kwok_nodes(node, cpu="4", memory="8Gi")
    _pod(cp, k8s_namespace, "fn-0", node, annotation=annotation)
    before = _wait_state(cp, k8s_namespace, "fn-0", ResizeState.APPLIED)  # admitted at its first size
    size = ContainerSize(cpu_cores=2.0, memory_bytes=512 * MI)
    assert send_resize(k8s_api, k8s_namespace, "fn-0", decide(before, "app", size)) is True

    pending = _wait_state(cp, k8s_namespace, "fn-0", state)
    cond = next(c for c in pending["status"]["conditions"] if c["type"] == "PodResizePending")
    assert (cond["status"], cond["reason"], cond["observedGeneration"]) == (
        "True", reason, pending["metadata"]["generation"])
    assert _status(pending, "app")["resources"]["requests"] == {"cpu": "500m", "memory": "128Mi"}  # unchanged
    d = decide(pending, "app", size)
    assert (d.step, d.status.state) == (Step.NONE, state)  # already asked: the loop's fallback decides

    # Once the node "has room" (annotation removed), the same spec completes.
    cp.request("PATCH", f"/api/v1/namespaces/{k8s_namespace}/pods/fn-0",
               {"metadata": {"annotations": {TEST_RESIZE_ANNOTATION: None}}}, "application/merge-patch+json")
    done = _wait_state(cp, k8s_namespace, "fn-0", ResizeState.APPLIED)
    assert _status(done, "app")["resources"]["requests"] == {"cpu": "2", "memory": "512Mi"}
    assert not [c for c in done["status"]["conditions"] if c["type"].startswith("PodResize")]


def test_pod_not_running_is_resized_later(k8s_control_plane: ControlPlane, k8s_nodes, k8s_namespace) -> None:
    cp = k8s_control_plane
    node = _node_name()
    k8s_nodes(node)  # a plain API node: no KWOK, the pod stays Pending
    _pod(cp, k8s_namespace, "fn-0", node)
    wait_bound(cp, k8s_namespace, ["fn-0"])
    d = decide(_get(cp, k8s_namespace, "fn-0"), "app", ContainerSize(1.0, 256 * MI))
    assert (d.step, d.status.state) == (Step.LATER, ResizeState.NOT_RUNNING)


def test_api_server_refuses_resize_on_a_node_that_reports_no_size(k8s_control_plane: ControlPlane, k8s_nodes,
                                                                   k8s_namespace, k8s_api) -> None:
    """A Running pod whose container statuses carry no resources (a kubelet without in-place
    resize): the API server answers 422, which is not retryable."""
    cp = k8s_control_plane
    node = _node_name()
    k8s_nodes(node)
    _pod(cp, k8s_namespace, "fn-0", node)
    wait_bound(cp, k8s_namespace, ["fn-0"])
    cp.request("PATCH", f"/api/v1/namespaces/{k8s_namespace}/pods/fn-0/status", {"status": {
        "phase": "Running", "containerStatuses": [
            {"name": n, "image": "registry.invalid/casa/noop:0", "imageID": "", "ready": True, "restartCount": 0,
             "state": {"running": {"startedAt": "2030-01-01T00:00:00Z"}}} for n in ("app", "queue-proxy")]}},
        "application/strategic-merge-patch+json")
    pod = _get(cp, k8s_namespace, "fn-0")
    d = decide(pod, "app", ContainerSize(1.0, 256 * MI))
    assert (d.step, d.status.state) == (Step.LATER, ResizeState.UNREPORTED)
    forced = ResizeDecision(Step.PATCH, d.status, patch={"spec": {"containers": [
        {"name": "app", "resources": {"requests": {"cpu": "1000m"}}}]}})
    with pytest.raises(AdapterError, match=r"422.*without support for resize") as err:
        send_resize(k8s_api, k8s_namespace, "fn-0", forced)
    assert err.value.retryable is False


def test_dry_run_writes_nothing_and_missing_pod_is_gone(k8s_control_plane: ControlPlane, kwok_nodes,
                                                        k8s_namespace, k8s_api) -> None:
    cp = k8s_control_plane
    node = _node_name()
    kwok_nodes(node)
    _pod(cp, k8s_namespace, "fn-0", node)
    pod = _wait_state(cp, k8s_namespace, "fn-0", ResizeState.APPLIED)
    d = decide(pod, "app", ContainerSize(1.0, 256 * MI))
    assert send_resize(k8s_api, k8s_namespace, "fn-0", d, dry_run=True) is False
    assert _get(cp, k8s_namespace, "fn-0")["metadata"]["generation"] == pod["metadata"]["generation"]
    with pytest.raises(WorkloadGone):
        send_resize(k8s_api, k8s_namespace, "no-such-pod", d)


def test_server_has_the_resize_subresource(k8s_api) -> None:
    support = server_supports_resize(k8s_api)
    assert (support.supported, support.server_version, support.warning) == (True, "v1.35.4", "")


def _action(namespace: str, pod: str, node: str, cpu_cores: float, memory_bytes: float) -> ResizeAction:
    return ResizeAction(function="fn", namespace=namespace, pod=pod, pod_key=f"{namespace}/{pod}", container="app",
                        node=node, current_cpu_cores=0.5, current_memory_bytes=128 * MI, units=2,
                        cpu_cores=cpu_cores, memory_bytes=memory_bytes)


def test_pod_resizer_runs_an_executor_action_once(k8s_control_plane: ControlPlane, kwok_nodes, k8s_nodes,
                                                  k8s_namespace, k8s_api) -> None:
    cp = k8s_control_plane
    node, plain = _node_name(), _node_name()
    kwok_nodes(node)
    k8s_nodes(plain)
    _pod(cp, k8s_namespace, "fn-0", node)
    _pod(cp, k8s_namespace, "fn-1", plain)  # stays Pending: no KWOK on a plain node
    _wait_state(cp, k8s_namespace, "fn-0", ResizeState.APPLIED)
    resizer = PodResizer(k8s_api)
    resizer.resize(_action(k8s_namespace, "fn-0", node, 0.75, 192 * MI))
    done = _wait_state(cp, k8s_namespace, "fn-0", ResizeState.APPLIED)
    # 0.75 cores / 192Mi requests; limits keep their 2x ratio: 1.5 cores / 384Mi.
    assert _status(done, "app")["resources"] == {"requests": {"cpu": "750m", "memory": "192Mi"},
                                                 "limits": {"cpu": "1500m", "memory": "384Mi"}}
    resizer.resize(_action(k8s_namespace, "fn-0", node, 0.75, 192 * MI))  # already there: no write
    assert _get(cp, k8s_namespace, "fn-0")["metadata"]["generation"] == done["metadata"]["generation"]
    wait_bound(cp, k8s_namespace, ["fn-1"])
    with pytest.raises(AdapterError, match="resize later") as err:
        resizer.resize(_action(k8s_namespace, "fn-1", plain, 0.75, 192 * MI))
    assert err.value.retryable is False
    with pytest.raises(WorkloadGone):
        resizer.resize(_action(k8s_namespace, "gone", node, 0.75, 192 * MI))
