"""In-place pod resize through the ``pods/resize`` subresource (KEP-1287; GA in 1.35).

Without a kubelet the pod stays Pending on its node, so the API server accepts the resize and
changes the spec; no PodResizePending/InProgress conditions appear (the kubelet sets those).
"""

from __future__ import annotations

from typing import Any

import pytest

from casa_sched.devcluster.controlplane import ControlPlane, HarnessError, pod_manifest, wait_bound

pytestmark = pytest.mark.k8s


def _resources(pod: dict[str, Any]) -> dict[str, Any]:
    res: dict[str, Any] = pod["spec"]["containers"][0]["resources"]
    return res


def test_resize_subresource_patches_cpu_and_memory_of_bound_pod(k8s_control_plane: ControlPlane, k8s_nodes,
                                                                k8s_namespace, k8s_api) -> None:
    from kubernetes import client

    k8s_nodes("rs-n1", cpu="8", memory="16Gi")
    pod = pod_manifest("fn-0", labels={"casa.dev/function": "resize-me"}, cpu="500m", memory="128Mi",
                       cpu_limit="1", memory_limit="256Mi")
    k8s_control_plane.request("POST", f"/api/v1/namespaces/{k8s_namespace}/pods", pod)
    assert wait_bound(k8s_control_plane, k8s_namespace, ["fn-0"]) == {"fn-0": "rs-n1"}

    core = client.CoreV1Api(k8s_api)
    patch = {"spec": {"containers": [{"name": "app", "resources": {
        "requests": {"cpu": "1", "memory": "256Mi"}, "limits": {"cpu": "2", "memory": "512Mi"}}}]}}
    resized = core.patch_namespaced_pod_resize("fn-0", k8s_namespace, patch)
    assert resized.spec is not None
    res = resized.spec.containers[0].resources
    assert res is not None
    assert res.requests == {"cpu": "1", "memory": "256Mi"}
    assert res.limits == {"cpu": "2", "memory": "512Mi"}
    # The same through kubectl, as the docs show it; and a read-back via the plain API.
    k8s_control_plane.kubectl(
        "-n", k8s_namespace, "patch", "pod", "fn-0", "--subresource", "resize", "--type", "strategic", "-p",
        '{"spec":{"containers":[{"name":"app","resources":{"requests":{"cpu":"750m"}}}]}}')
    got = k8s_control_plane.request("GET", f"/api/v1/namespaces/{k8s_namespace}/pods/fn-0")
    assert _resources(got)["requests"] == {"cpu": "750m", "memory": "256Mi"}
    assert got["spec"]["nodeName"] == "rs-n1"
    assert got["status"]["qosClass"] == "Burstable"


def test_resize_cannot_change_qos_class_nor_other_fields(k8s_control_plane: ControlPlane, k8s_nodes,
                                                               k8s_namespace) -> None:
    k8s_nodes("rs-n2")
    pod = pod_manifest("fn-1", cpu="500m", memory="128Mi", cpu_limit="1", memory_limit="256Mi")
    k8s_control_plane.request("POST", f"/api/v1/namespaces/{k8s_namespace}/pods", pod)
    wait_bound(k8s_control_plane, k8s_namespace, ["fn-1"])
    path = f"/api/v1/namespaces/{k8s_namespace}/pods/fn-1/resize"
    guaranteed = {"spec": {"containers": [{"name": "app", "resources": {
        "requests": {"cpu": "1", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}}}]}}
    with pytest.raises(HarnessError, match="422"):
        k8s_control_plane.request("PATCH", path, guaranteed, "application/strategic-merge-patch+json")
    # Through resize, only cpu/memory resources change: other fields in the patch are dropped.
    image = {"spec": {"containers": [{"name": "app", "image": "registry.invalid/other:1"}]}}
    after = k8s_control_plane.request("PATCH", path, image, "application/strategic-merge-patch+json")
    assert after["spec"]["containers"][0]["image"] == "registry.invalid/casa/noop:0"
