"""In-place resize decisions on pod JSON (casa_sched.autoscaler.resize): pure tables."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from casa_sched.autoscaler.adapters.base import AdapterError, WorkloadGone
from casa_sched.autoscaler.resize import (
    ContainerSize,
    ResizeDecision,
    ResizePodError,
    ResizeState,
    ResizeStatus,
    Step,
    _api_error,
    decide,
    resize_needed,
    resize_patch,
    resize_state,
    resize_support_from_discovery,
    send_resize,
)

MI = 2**20


def pod(requests: dict[str, str] | None = None, limits: dict[str, str] | None = None, *,
        phase: str = "Running", node: str | None = "n1", status_resources: dict[str, Any] | None = None,
        report: bool = True, conditions: list[dict[str, Any]] | None = None, generation: int | None = None,
        observed: int | None = None, deleting: bool = False) -> dict[str, Any]:
    res: dict[str, Any] = {}
    if requests is not None:
        res["requests"] = requests
    if limits is not None:
        res["limits"] = limits
    meta: dict[str, Any] = {"name": "fn-0", "namespace": "ns"}
    if generation is not None:
        meta["generation"] = generation
    if deleting:
        meta["deletionTimestamp"] = "2030-01-01T00:00:00Z"
    status: dict[str, Any] = {"phase": phase, "conditions": conditions or []}
    if observed is not None:
        status["observedGeneration"] = observed
    cs: dict[str, Any] = {"name": "app", "ready": True}
    if report:
        cs["resources"] = status_resources if status_resources is not None else res
    status["containerStatuses"] = [cs, {"name": "queue-proxy", "resources": {"requests": {"cpu": "25m"}}}]
    spec: dict[str, Any] = {"containers": [{"name": "app", "resources": res},
                                           {"name": "queue-proxy", "resources": {"requests": {"cpu": "25m"}}}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": meta, "spec": spec, "status": status}


def cond(type_: str, reason: str = "", *, observed: int | None = None, message: str = "") -> dict[str, Any]:
    c: dict[str, Any] = {"type": type_, "status": "True", "reason": reason, "message": message}
    if observed is not None:
        c["observedGeneration"] = observed
    return c


# -- the patch -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("requests", "limits", "size", "want"), [
    pytest.param({"cpu": "1", "memory": "128Mi"}, None, ContainerSize(2.0, 256 * MI),
                 {"requests": {"cpu": "2000m", "memory": "256Mi"}}, id="requests-only-stays-requests-only"),
    # Guaranteed: limits == requests before, so limits = new requests after (stays Guaranteed).
    pytest.param({"cpu": "1", "memory": "128Mi"}, {"cpu": "1", "memory": "128Mi"}, ContainerSize(0.5, 64 * MI),
                 {"requests": {"cpu": "500m", "memory": "64Mi"},
                  "limits": {"cpu": "500m", "memory": "64Mi"}}, id="guaranteed-limits-follow-requests"),
    # Burstable: cpu limit 2 over request 1 (ratio 2) -> 2 x 1.5 = 3 cores; memory 256Mi over 128Mi
    # (ratio 2) -> 2 x 192Mi = 384Mi.
    pytest.param({"cpu": "1", "memory": "128Mi"}, {"cpu": "2", "memory": "256Mi"}, ContainerSize(1.5, 192 * MI),
                 {"requests": {"cpu": "1500m", "memory": "192Mi"},
                  "limits": {"cpu": "3000m", "memory": "384Mi"}}, id="burstable-limits-keep-their-ratio"),
    # Only a cpu limit (ratio 1.5): 0.333 cores -> 333m request, 333 x 1.5 = 499.5 -> ceil 500m.
    pytest.param({"cpu": "1", "memory": "128Mi"}, {"cpu": "1500m"}, ContainerSize(0.333, 128 * MI),
                 {"requests": {"cpu": "333m", "memory": "128Mi"}, "limits": {"cpu": "500m"}},
                 id="cpu-limit-only-rounded-up-to-whole-millicores"),
    # Ratio 1001/1000: 1m over the request; scaling to 1m would give 1.001m -> must stay above: 2m.
    pytest.param({"cpu": "1", "memory": "128Mi"}, {"cpu": "1001m", "memory": "128Mi"}, ContainerSize(0.001, MI),
                 {"requests": {"cpu": "1m", "memory": "1Mi"}, "limits": {"cpu": "2m", "memory": "1Mi"}},
                 id="burstable-limit-stays-strictly-above-request"),
])
def test_patch_sets_requests_and_qos_preserving_limits(requests, limits, size, want) -> None:
    p = resize_patch(pod(requests, limits), "app", size)
    assert p == {"spec": {"containers": [{"name": "app", "resources": want}]}}


def test_patch_names_the_function_container_only() -> None:
    p = resize_patch(pod({"cpu": "1", "memory": "1Gi"}), "app", ContainerSize(2, 2 * 2**30))
    assert [c["name"] for c in p["spec"]["containers"]] == ["app"]  # never queue-proxy


@pytest.mark.parametrize(("n_bytes", "text"), [
    pytest.param(256 * MI, "256Mi", id="mebibytes"),
    pytest.param(3 * 2**30, "3Gi", id="gibibytes"),
    pytest.param(1536 * 2**10, "1536Ki", id="kibibytes"),  # 1.5 Mi: not a whole Mi
    pytest.param(1000, "1000", id="bytes"),
])
def test_memory_is_written_with_the_largest_exact_binary_suffix(n_bytes: int, text: str) -> None:
    p = resize_patch(pod({"cpu": "1", "memory": "1Gi"}), "app", ContainerSize(1.0, n_bytes))
    assert p["spec"]["containers"][0]["resources"]["requests"]["memory"] == text


def test_cpu_is_written_in_whole_millicores() -> None:
    # 0.0004 cores would be 0.4m: Kubernetes' granularity is 1m, and a size is at least 1m.
    assert ContainerSize(0.0014, 1).cpu_millicores == 1
    assert ContainerSize(1.2346, 1).cpu_millicores == 1235  # 1234.6m -> nearest whole 1235m
    with pytest.raises(ValueError, match="cpu_cores"):
        ContainerSize(0.0, 1)
    with pytest.raises(ValueError, match="memory_bytes"):
        ContainerSize(1.0, 0)


@pytest.mark.parametrize(("requests", "limits", "size", "needed"), [
    # "1" == "1000m" and "128Mi" == 134217728 bytes: the same quantity written two ways.
    pytest.param({"cpu": "1", "memory": "128Mi"}, None, ContainerSize(1.0, 128 * MI), False, id="same-size"),
    pytest.param({"cpu": "1000m", "memory": "134217728"}, None, ContainerSize(1.0, 128 * MI), False,
                 id="same-size-other-spelling"),
    pytest.param({"cpu": "1", "memory": "128Mi"}, None, ContainerSize(1.001, 128 * MI), True, id="cpu-differs-1m"),
    pytest.param({"cpu": "1", "memory": "128Mi"}, None, ContainerSize(1.0, 128 * MI + 1), True,
                 id="memory-differs-1-byte"),
    # Burstable, already resized with its ratio kept: re-deriving the limit gives the same limit.
    pytest.param({"cpu": "333m", "memory": "128Mi"}, {"cpu": "500m"}, ContainerSize(0.333, 128 * MI), False,
                 id="limit-rule-is-idempotent"),
])
def test_resize_needed_compares_quantities(requests, limits, size, needed) -> None:
    assert resize_needed(pod(requests, limits), "app", size) is needed


def test_reapplying_the_patch_needs_nothing() -> None:
    p0 = pod({"cpu": "700m", "memory": "100Mi"}, {"cpu": "1400m", "memory": "300Mi"})
    size = ContainerSize(1.25, 333 * MI + 7)
    res = resize_patch(p0, "app", size)["spec"]["containers"][0]["resources"]
    p1 = pod(res["requests"], res["limits"])
    assert not resize_needed(p1, "app", size)
    assert resize_patch(p1, "app", size) == resize_patch(p0, "app", size)


# -- the state -------------------------------------------------------------------------------------

R = {"cpu": "1", "memory": "128Mi"}
R2 = {"cpu": "2", "memory": "256Mi"}


@pytest.mark.parametrize(("p", "state"), [
    pytest.param(pod(R), ResizeState.APPLIED, id="status-equals-spec"),
    pytest.param(pod(R, status_resources={"requests": {"cpu": "1000m", "memory": "134217728"}}),
                 ResizeState.APPLIED, id="status-equals-spec-other-spelling"),
    pytest.param(pod(R2, status_resources={"requests": R}), ResizeState.IN_PROGRESS, id="status-behind-spec"),
    pytest.param(pod(R2, status_resources={"requests": R}, conditions=[cond("PodResizeInProgress")]),
                 ResizeState.IN_PROGRESS, id="in-progress-condition"),
    pytest.param(pod(R2, status_resources={"requests": R}, conditions=[cond("PodResizePending", "Deferred")]),
                 ResizeState.DEFERRED, id="pending-deferred"),
    pytest.param(pod(R2, status_resources={"requests": R}, conditions=[cond("PodResizePending", "Infeasible")]),
                 ResizeState.INFEASIBLE, id="pending-infeasible"),
    pytest.param(pod(R2, status_resources={"requests": R}, conditions=[cond("PodResizeInProgress", "Error")]),
                 ResizeState.ERROR, id="in-progress-error"),
    # Infeasible for generation 2, but the spec is now generation 3: stale; the kubelet has not
    # looked at the new spec yet.
    pytest.param(pod(R2, status_resources={"requests": R}, generation=3, observed=2,
                     conditions=[cond("PodResizePending", "Infeasible", observed=2)]),
                 ResizeState.IN_PROGRESS, id="stale-condition-ignored"),
    pytest.param(pod(R, generation=3, observed=2), ResizeState.IN_PROGRESS, id="status-not-observed-yet"),
    pytest.param(pod(R, generation=3, observed=3), ResizeState.APPLIED, id="status-observed"),
    pytest.param(pod(R, phase="Pending"), ResizeState.NOT_RUNNING, id="pending"),
    pytest.param(pod(R, node=None, phase="Pending"), ResizeState.NOT_RUNNING, id="unbound"),
    pytest.param(pod(R, deleting=True), ResizeState.NOT_RUNNING, id="terminating"),
    pytest.param(pod(R, phase="Succeeded"), ResizeState.NOT_RUNNING, id="finished"),
    pytest.param(pod(R, report=False), ResizeState.UNREPORTED, id="node-reports-no-resources"),
])
def test_state_from_status(p: dict[str, Any], state: ResizeState) -> None:
    assert resize_state(p, "app").state is state


def test_state_carries_the_kubelet_message() -> None:
    p = pod(R2, status_resources={"requests": R}, conditions=[
        cond("PodResizePending", "Infeasible", message="Node didn't have enough capacity: cpu, requested: 2000")])
    assert resize_state(p, "app") == ResizeStatus(ResizeState.INFEASIBLE,
                                                  "Node didn't have enough capacity: cpu, requested: 2000")


# -- the decision ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("p", "size", "step", "state"), [
    pytest.param(pod(R), ContainerSize(2, 256 * MI), Step.PATCH, ResizeState.APPLIED, id="running-differs"),
    pytest.param(pod(R), ContainerSize(1, 128 * MI), Step.NONE, ResizeState.APPLIED, id="already-there"),
    # Spec already asks for 2 cores and the kubelet deferred it: nothing to send again.
    pytest.param(pod(R2, status_resources={"requests": R}, conditions=[cond("PodResizePending", "Deferred")]),
                 ContainerSize(2, 256 * MI), Step.NONE, ResizeState.DEFERRED, id="asked-and-deferred"),
    # A new target while Infeasible: a smaller size may fit, so patch again.
    pytest.param(pod(R2, status_resources={"requests": R}, conditions=[cond("PodResizePending", "Infeasible")]),
                 ContainerSize(1.5, 128 * MI), Step.PATCH, ResizeState.INFEASIBLE, id="infeasible-new-target"),
    pytest.param(pod(R, phase="Pending"), ContainerSize(2, 256 * MI), Step.LATER, ResizeState.NOT_RUNNING,
                 id="not-running-later"),
    pytest.param(pod(R, report=False), ContainerSize(2, 256 * MI), Step.LATER, ResizeState.UNREPORTED,
                 id="node-cannot-resize-later"),
    pytest.param(pod(None), ContainerSize(2, 256 * MI), Step.SKIP, ResizeState.APPLIED, id="best-effort-skip"),
])
def test_decide(p, size, step, state) -> None:
    d = decide(p, "app", size)
    assert (d.step, d.status.state) == (step, state)
    assert (d.patch is not None) is (step is Step.PATCH)


def test_decide_on_a_pod_without_the_container_skips() -> None:
    d = decide(pod(R), "user-container", ContainerSize(1, MI))
    assert d.step is Step.SKIP
    assert "user-container" in d.reason


def test_malformed_quantity_names_the_field() -> None:
    with pytest.raises(ResizePodError, match=r"spec.containers\[app\].resources.requests.cpu"):
        decide(pod({"cpu": "lots", "memory": "1Mi"}), "app", ContainerSize(1, MI))


def test_send_writes_nothing_unless_the_decision_is_patch() -> None:
    # No client is touched: the api_client argument is never used.
    none = ResizeDecision(Step.NONE, ResizeStatus(ResizeState.APPLIED))
    assert send_resize(object(), "ns", "fn-0", none) is False


# -- errors and discovery --------------------------------------------------------------------------


def api_exc(status: int, body: str = "") -> ApiException:
    exc = ApiException(status=status, reason="reason")
    exc.body = body
    return exc


@pytest.mark.parametrize(("exc", "gone", "retryable"), [
    pytest.param(api_exc(404), True, False, id="404-gone"),
    pytest.param(api_exc(409), False, True, id="409-conflict-retry"),
    pytest.param(api_exc(429), False, True, id="429-throttled-retry"),
    pytest.param(api_exc(500), False, True, id="500-retry"),
    pytest.param(api_exc(503), False, True, id="503-retry"),
    pytest.param(api_exc(422, '{"message": "Pod QoS is immutable"}'), False, False, id="422-invalid"),
    pytest.param(api_exc(403), False, False, id="403-forbidden"),
    pytest.param(TimeoutError("read timed out"), False, True, id="timeout-retry"),
    pytest.param(ConnectionRefusedError("refused"), False, True, id="connection-retry"),
])
def test_api_errors_map_to_retryable_or_gone(exc: BaseException, gone: bool, retryable: bool) -> None:
    err = _api_error(exc, "resize of pod ns/fn-0")
    assert isinstance(err, AdapterError)
    assert isinstance(err, WorkloadGone) is gone
    assert err.retryable is retryable


def test_422_message_carries_the_status_message() -> None:
    err = _api_error(api_exc(422, '{"kind":"Status","message":"Pod QoS is immutable"}'), "resize")
    assert str(err) == "resize: HTTP 422 reason: Pod QoS is immutable"


@pytest.mark.parametrize(("names", "supported"), [
    pytest.param(["pods", "pods/status", "pods/resize", "pods/binding"], True, id="1.33-plus"),
    pytest.param(["pods", "pods/status", "pods/binding"], False, id="older"),
])
def test_support_from_discovery(names: list[str], supported: bool) -> None:
    s = resize_support_from_discovery(names, "v1.31.0")
    assert s.supported is supported
    assert (s.warning == "") is supported
    if not supported:
        assert "v1.31.0" in s.warning
        assert "pods/resize" in s.warning
