"""In-place resizing of a function's container through the ``pods/{name}/resize`` subresource.

The paper lets a container change its size (cores, memory) during an epoch instead of being
replaced (§III-B: "scale up from an initial allocation of 2 cores and 150MB DRAM to 4 cores and
300MB DRAM"). On Kubernetes that is in-place pod vertical scaling (KEP-1287): the
``resize`` subresource of a Pod (API server ≥ 1.32; on by default from 1.33, GA in 1.35) changes
``spec.containers[].resources``; the kubelet then admits the new size, actuates it in the
cgroups and reports it.

Two halves, kopf style: pure decisions on a pod's JSON (:func:`decide`, :func:`resize_state`,
:func:`resize_patch`) and thin I/O (:func:`send_resize`, :func:`server_supports_resize`).

**What is resized.** Only the function's own container, named by the workload
(``Workload.container``); sidecars such as Knative's ``queue-proxy`` are never in the patch.
The patch is a strategic-merge patch keyed by container name, so every other container and
every other resource (ephemeral-storage, extended resources) is left as it is.

**Requests and limits.** The target size is the container's *request* (what the scheduler and
the planner count). Limits follow it so that the pod's QoS class never changes — the API
server rejects a resize that would change it (HTTP 422, "Pod QoS is immutable"):

- a container whose cpu and memory limits equal its requests (Guaranteed) gets limits equal
  to the new requests, and stays Guaranteed;
- any other limit keeps its ratio to the request (a 2-core limit over a 1-core request becomes
  4 cores over 2), and stays strictly above the request, so a Burstable pod stays Burstable;
- a resource without a limit stays without one (BestEffort has no requests and cannot be
  resized to have some: it is reported as :attr:`Step.SKIP`).

Quantities are written as whole millicores (Kubernetes' cpu granularity) and whole bytes (with
the largest binary suffix that divides them: ``256Mi``).

**Reading the outcome** (kubelet behaviour in 1.33+, see the in-place resize docs): the kubelet
reports the size it actually configured in ``status.containerStatuses[].resources`` (and the
requests it admitted in ``allocatedResources``), sets the pod condition ``PodResizePending``
with reason ``Deferred`` (does not fit the node now, retried) or ``Infeasible`` (can never fit
this node), and ``PodResizeInProgress`` while it actuates (reason ``Error`` when actuation
failed). :func:`resize_state` turns that into a :class:`ResizeState`; a condition whose
``observedGeneration`` is older than the pod's ``metadata.generation`` describes an earlier
spec and is ignored.

**No resize subresource** (API server < 1.32, or the feature gate off): the loop prints one
warning and does not resize in place; it still scales replicas, and container sizes stay what
the workload's pod template says. casa does not edit templates to carry the new size: that
rolls every pod of a Deployment and creates a new Knative Revision.
"""

from __future__ import annotations

import contextlib
import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from casa_sched.autoscaler.adapters.base import AdapterError, WorkloadGone
from casa_sched.kube.quantity import QuantityError, parse_quantity

if TYPE_CHECKING:
    from casa_sched.autoscaler.actions import ResizeAction

RESIZE_PENDING = "PodResizePending"
RESIZE_IN_PROGRESS = "PodResizeInProgress"
REASON_DEFERRED = "Deferred"
REASON_INFEASIBLE = "Infeasible"
REASON_ERROR = "Error"
PATCH_CONTENT_TYPE = "application/strategic-merge-patch+json"
_RESOURCES = ("cpu", "memory")


@dataclass(frozen=True, slots=True)
class ContainerSize:
    """A container's target request: cpu in cores, memory in bytes."""

    cpu_cores: float
    memory_bytes: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cpu_cores) and self.cpu_cores >= 0.001):
            raise ValueError(f"cpu_cores must be a finite number >= 0.001 (1m), got {self.cpu_cores}")
        if self.memory_bytes < 1:
            raise ValueError(f"memory_bytes must be >= 1 byte, got {self.memory_bytes}")

    @property
    def cpu_millicores(self) -> int:
        """The cpu request as written to the API: whole millicores (Kubernetes' granularity)."""
        return max(1, round(self.cpu_cores * 1000))


class ResizeState(enum.Enum):
    """Where a pod's in-place resize stands, as its status reports it."""

    APPLIED = "applied"  # the container runs with the size its spec asks for
    IN_PROGRESS = "in_progress"  # accepted; the kubelet has not reported the new size yet
    DEFERRED = "deferred"  # PodResizePending/Deferred: does not fit the node now; kubelet retries
    INFEASIBLE = "infeasible"  # PodResizePending/Infeasible: can never fit this node
    ERROR = "error"  # PodResizeInProgress/Error: actuation failed; kubelet retries
    NOT_RUNNING = "not_running"  # unbound, not yet Running, terminating or finished: resize later
    UNREPORTED = "unreported"  # Running, but the node reports no container resources (no resize support)


class Step(enum.Enum):
    """What the loop should do about one pod this epoch."""

    NONE = "none"  # spec already has the target size
    PATCH = "patch"  # send :attr:`ResizeDecision.patch` to pods/{name}/resize
    LATER = "later"  # not Running yet (or the node cannot resize): retry next epoch
    SKIP = "skip"  # cannot be resized in place (no such container, BestEffort): leave it


@dataclass(frozen=True, slots=True)
class ResizeStatus:
    """:class:`ResizeState` plus the kubelet's message, if any."""

    state: ResizeState
    message: str = ""


@dataclass(frozen=True, slots=True)
class ResizeDecision:
    """The outcome of :func:`decide` for one pod."""

    step: Step
    status: ResizeStatus
    patch: Mapping[str, Any] | None = None  # set iff step is PATCH
    reason: str = ""


class ResizePodError(ValueError):
    """The pod JSON lacks what a resize decision needs; the message names the field."""


# -- pure: reading a pod -------------------------------------------------------------------------


def _container(pod: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    for c in (pod.get("spec") or {}).get("containers") or []:
        if isinstance(c, Mapping) and c.get("name") == name:
            return c
    return None


def _quantities(resource_list: Any, path: str) -> dict[str, float]:
    """cpu (cores) and memory (bytes) of a ResourceList; absent keys are left out."""
    if resource_list is None:
        return {}
    if not isinstance(resource_list, Mapping):
        raise ResizePodError(f"{path}: expected a ResourceList object")
    out: dict[str, float] = {}
    for key in _RESOURCES:
        text = resource_list.get(key)
        if text is None:
            continue
        try:
            out[key] = parse_quantity(str(text))
        except QuantityError as exc:
            raise ResizePodError(f"{path}.{key}: {exc}") from None
    return out


def _requirements(resources: Any, path: str) -> tuple[dict[str, float], dict[str, float]]:
    if resources is None:
        return {}, {}
    if not isinstance(resources, Mapping):
        raise ResizePodError(f"{path}: expected a ResourceRequirements object")
    return (_quantities(resources.get("requests"), f"{path}.requests"),
            _quantities(resources.get("limits"), f"{path}.limits"))


def _effective_requests(requests: Mapping[str, float], limits: Mapping[str, float]) -> dict[str, float]:
    """Kubernetes defaults a missing request to its limit (API defaulting of pods)."""
    return {**limits, **requests}


def _same(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    """Equal as quantities: "1" == "1000m", "128Mi" == "134217728"."""
    return a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=1e-9, abs_tol=1e-9) for k in a)


def _conditions(pod: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(cond, Mapping) and isinstance(cond.get("type"), str):
            out[cond["type"]] = cond
    return out


def _current(cond: Mapping[str, Any], generation: int | None) -> bool:
    """A condition true for the pod's current spec (not left over from an earlier generation)."""
    if cond.get("status") != "True":
        return False
    observed = cond.get("observedGeneration")
    return not (isinstance(observed, int) and generation is not None and observed < generation)


def resize_state(pod: Mapping[str, Any], container: str) -> ResizeStatus:
    """Classify the resize of ``container`` from the pod's status (pure).

    Order: not running → conditions of the current generation (Infeasible, Deferred, Error,
    in progress) → the size the kubelet reports against the spec.

    >>> pod = {"spec": {"nodeName": "n1", "containers": [{"name": "app", "resources": {
    ...     "requests": {"cpu": "1", "memory": "128Mi"}}}]},
    ...     "status": {"phase": "Running", "containerStatuses": [{"name": "app", "resources": {
    ...     "requests": {"cpu": "1000m", "memory": "134217728"}}}]}}
    >>> resize_state(pod, "app").state
    <ResizeState.APPLIED: 'applied'>
    """
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    if (meta.get("deletionTimestamp") or not (pod.get("spec") or {}).get("nodeName")
            or status.get("phase") != "Running"):
        return ResizeStatus(ResizeState.NOT_RUNNING, f"phase {status.get('phase') or 'unknown'}")
    generation = meta.get("generation") if isinstance(meta.get("generation"), int) else None
    conds = _conditions(pod)
    pending = conds.get(RESIZE_PENDING)
    if pending is not None and _current(pending, generation):
        message = str(pending.get("message") or "")
        if pending.get("reason") == REASON_INFEASIBLE:
            return ResizeStatus(ResizeState.INFEASIBLE, message)
        return ResizeStatus(ResizeState.DEFERRED, message)  # Deferred, or a reason added later
    progress = conds.get(RESIZE_IN_PROGRESS)
    if progress is not None and _current(progress, generation):
        if progress.get("reason") == REASON_ERROR:
            return ResizeStatus(ResizeState.ERROR, str(progress.get("message") or ""))
        return ResizeStatus(ResizeState.IN_PROGRESS, str(progress.get("message") or ""))

    spec_c = _container(pod, container)
    if spec_c is None:
        raise ResizePodError(f"spec.containers: no container named {container!r}")
    want_req, want_lim = _requirements(spec_c.get("resources"), f"spec.containers[{container}].resources")
    for cs in status.get("containerStatuses") or []:
        if isinstance(cs, Mapping) and cs.get("name") == container:
            if cs.get("resources") is None:
                return ResizeStatus(ResizeState.UNREPORTED, "the node reports no container resources")
            got_req, got_lim = _requirements(cs["resources"],
                                             f"status.containerStatuses[{container}].resources")
            if (_same(_effective_requests(got_req, got_lim), _effective_requests(want_req, want_lim))
                    and _same(got_lim, want_lim)):
                observed = status.get("observedGeneration")
                if isinstance(observed, int) and generation is not None and observed < generation:
                    return ResizeStatus(ResizeState.IN_PROGRESS, "kubelet has not observed the spec yet")
                return ResizeStatus(ResizeState.APPLIED)
            return ResizeStatus(ResizeState.IN_PROGRESS, "reported size differs from the spec")
    return ResizeStatus(ResizeState.UNREPORTED, f"no status for container {container!r}")


# -- pure: building the patch --------------------------------------------------------------------


def _fmt_cpu(millicores: int) -> str:
    return f"{millicores}m"


def _fmt_memory(n_bytes: int) -> str:
    """Whole bytes in the largest binary suffix that divides them (268435456 -> "256Mi"): the API
    server keeps a quantity's format, so this is what ``kubectl get`` shows."""
    for suffix, power in (("Ei", 60), ("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)):
        if n_bytes % (1 << power) == 0:
            return f"{n_bytes >> power}{suffix}"
    return str(n_bytes)


def _target_limits(size: ContainerSize, requests: Mapping[str, float],
                   limits: Mapping[str, float]) -> dict[str, str]:
    """New limits under the QoS-preserving rule of the module docstring."""
    guaranteed = all(k in limits and k in requests and math.isclose(limits[k], requests[k])
                     for k in _RESOURCES)
    new_req = {"cpu": size.cpu_millicores / 1000, "memory": float(size.memory_bytes)}
    out: dict[str, str] = {}
    for key in _RESOURCES:
        if key not in limits:
            continue
        if guaranteed:
            value = new_req[key]
        else:
            old_req = requests.get(key) or limits[key]
            value = new_req[key] * limits[key] / old_req
            if limits[key] > old_req:
                # keep the limit strictly above the request (one unit of granularity)
                value = max(value, new_req[key] + (0.001 if key == "cpu" else 1.0))
            value = max(value, new_req[key])  # a limit below the request is invalid
        # round away float noise before ceil, so re-deriving the limit from itself is a no-op
        out[key] = (_fmt_cpu(math.ceil(round(value * 1000, 6))) if key == "cpu"
                    else _fmt_memory(math.ceil(round(value, 6))))
    return out


def resize_patch(pod: Mapping[str, Any], container: str, size: ContainerSize) -> dict[str, Any]:
    """The strategic-merge patch for ``pods/{name}/resize`` that gives ``container`` ``size`` (pure).

    Touches that one container's cpu and memory only.

    >>> pod = {"spec": {"containers": [{"name": "app", "resources": {
    ...     "requests": {"cpu": "1", "memory": "128Mi"}, "limits": {"cpu": "2"}}},
    ...     {"name": "queue-proxy", "resources": {"requests": {"cpu": "25m"}}}]}}
    >>> resize_patch(pod, "app", ContainerSize(cpu_cores=2.0, memory_bytes=256 * 2**20))
    {'spec': {'containers': [{'name': 'app', 'resources': {'requests': {'cpu': '2000m', \
'memory': '256Mi'}, 'limits': {'cpu': '4000m'}}}]}}
    """
    spec_c = _container(pod, container)
    if spec_c is None:
        raise ResizePodError(f"spec.containers: no container named {container!r}")
    requests, limits = _requirements(spec_c.get("resources"), f"spec.containers[{container}].resources")
    resources: dict[str, Any] = {"requests": {"cpu": _fmt_cpu(size.cpu_millicores),
                                              "memory": _fmt_memory(size.memory_bytes)}}
    new_limits = _target_limits(size, requests, limits)
    if new_limits:
        resources["limits"] = new_limits
    return {"spec": {"containers": [{"name": container, "resources": resources}]}}


def resize_needed(pod: Mapping[str, Any], container: str, size: ContainerSize) -> bool:
    """Whether the container's spec differs from what :func:`resize_patch` would write (pure)."""
    spec_c = _container(pod, container)
    if spec_c is None:
        raise ResizePodError(f"spec.containers: no container named {container!r}")
    requests, limits = _requirements(spec_c.get("resources"), f"spec.containers[{container}].resources")
    want = resize_patch(pod, container, size)["spec"]["containers"][0]["resources"]
    want_req = _quantities(want["requests"], "patch.requests")
    want_lim = _quantities(want.get("limits"), "patch.limits")
    return not (_same(_effective_requests(requests, limits), want_req) and _same(limits, want_lim))


def decide(pod: Mapping[str, Any], container: str, size: ContainerSize) -> ResizeDecision:
    """What to do about one pod of a function whose planned container size is ``size`` (pure).

    - no container ``container`` or a BestEffort container → :attr:`Step.SKIP`;
    - spec already at the target → :attr:`Step.NONE` (with the current :class:`ResizeStatus`:
      the loop reads Deferred / Infeasible from it and applies its own fallback rule);
    - not Running yet, or Running on a node that reports no container resources (the API
      server refuses the resize there) → :attr:`Step.LATER`;
    - otherwise → :attr:`Step.PATCH` with :func:`resize_patch`.
    """
    spec_c = _container(pod, container)
    if spec_c is None:
        return ResizeDecision(Step.SKIP, ResizeStatus(ResizeState.NOT_RUNNING),
                              reason=f"pod has no container {container!r}")
    requests, limits = _requirements(spec_c.get("resources"), f"spec.containers[{container}].resources")
    if not requests and not limits:
        return ResizeDecision(Step.SKIP, resize_state(pod, container),
                              reason="container has no requests (BestEffort): resize would change its QoS class")
    status = resize_state(pod, container)
    if not resize_needed(pod, container, size):
        return ResizeDecision(Step.NONE, status, reason="spec already has the target size")
    if status.state in (ResizeState.NOT_RUNNING, ResizeState.UNREPORTED):
        return ResizeDecision(Step.LATER, status, reason=f"pod is {status.state.value}: resize later")
    return ResizeDecision(Step.PATCH, status, patch=resize_patch(pod, container, size),
                          reason="spec differs from the target size")


# -- I/O -----------------------------------------------------------------------------------------


def _status_message(exc: BaseException) -> str:
    """The ``message`` of the API server's Status body, if the exception carries one."""
    body = getattr(exc, "body", None)
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body or "")
    with contextlib.suppress(ValueError, AttributeError):
        return str(json.loads(text).get("message") or "")
    return ""


def _api_error(exc: BaseException, what: str) -> AdapterError:
    """:func:`casa_sched.autoscaler.kubeapi.api_error` (404 gone; 409/429/5xx/timeouts retry),
    with the API server's own message appended (e.g. why a resize is invalid)."""
    from casa_sched.autoscaler.kubeapi import api_error

    err = api_error(exc, what)
    message = _status_message(exc)
    if message and not isinstance(err, WorkloadGone):
        return AdapterError(f"{err}: {message}"[:500], retryable=err.retryable)
    return err


def _transport_errors() -> tuple[type[BaseException], ...]:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    return (ApiException, HTTPError, OSError)


def send_resize(api_client: Any, namespace: str, name: str, decision: ResizeDecision, *,
                dry_run: bool = False, timeout_s: float = 10.0) -> bool:
    """Send ``decision.patch`` to ``pods/{name}/resize``; ``True`` iff a write call was made.

    Nothing is sent unless ``decision.step`` is :attr:`Step.PATCH`. With ``dry_run`` the
    API server validates the patch (``dryRun=All``: admission runs, nothing is stored) and
    ``False`` is returned. Uses ``CoreV1Api.patch_namespaced_pod_resize`` when the client has
    it (clients generated from Kubernetes 1.32 on), else a raw PATCH through
    ``api_client.call_api``. Raises :class:`WorkloadGone` (HTTP 404) or :class:`AdapterError`
    (``retryable`` for timeouts, connection errors, 409, 429 and 5xx; not for 400/403/422, e.g.
    a resize that would change the QoS class).
    """
    if decision.step is not Step.PATCH or decision.patch is None:
        return False
    from kubernetes import client

    what = f"resize of pod {namespace}/{name}"
    body = dict(decision.patch)
    core: Any = client.CoreV1Api(api_client)  # Any: raw responses (_preload_content=False)
    kwargs: dict[str, Any] = {"_request_timeout": timeout_s, "_preload_content": False,
                              "_content_type": PATCH_CONTENT_TYPE}
    if dry_run:
        kwargs["dry_run"] = "All"
    try:
        if hasattr(core, "patch_namespaced_pod_resize"):
            resp = core.patch_namespaced_pod_resize(name, namespace, body, **kwargs)
        else:  # pragma: no cover - exercised only with a client older than 1.32's
            resp = api_client.call_api(
                "/api/v1/namespaces/{namespace}/pods/{name}/resize", "PATCH",
                path_params={"namespace": namespace, "name": name},
                query_params=[("dryRun", "All")] if dry_run else [],
                header_params={"Content-Type": PATCH_CONTENT_TYPE, "Accept": "application/json"},
                body=body, auth_settings=["BearerToken"], response_type=None,
                _preload_content=False, _request_timeout=timeout_s)
            resp = resp[0] if isinstance(resp, tuple) else resp
        status = getattr(resp, "status", 200)
        if isinstance(status, int) and status >= 300:
            raise AdapterError(f"{what}: HTTP {status}", retryable=status >= 500)
    except _transport_errors() as exc:
        raise _api_error(exc, what) from exc
    return not dry_run


@dataclass(frozen=True, slots=True)
class ResizeSupport:
    """Whether the API server serves ``pods/resize`` (checked once at start-up)."""

    supported: bool
    server_version: str  # e.g. "v1.35.4" ("" when /version could not be read)
    warning: str  # one line for the loop to print when not supported ("" otherwise)


def resize_support_from_discovery(resource_names: Any, server_version: str) -> ResizeSupport:
    """Pure: decide from the names in the core/v1 APIResourceList (``pods``, ``pods/resize``...)."""
    names = {str(n) for n in resource_names or ()}
    if "pods/resize" in names:
        return ResizeSupport(True, server_version, "")
    return ResizeSupport(False, server_version, (
        f"the API server ({server_version or 'version unknown'}) has no pods/resize subresource "
        "(needs Kubernetes >= 1.32 with InPlacePodVerticalScaling; on by default from 1.33): "
        "container sizes are not changed in place; replicas are still scaled and new pods start "
        "at their template's size"))


def server_supports_resize(api_client: Any, *, timeout_s: float = 10.0) -> ResizeSupport:
    """API discovery of core/v1 (``GET /api/v1``): is ``pods/resize`` among its resources?

    Raises :class:`AdapterError` (retryable) when the API server cannot be reached.
    """
    from kubernetes import client

    core: Any = client.CoreV1Api(api_client)  # Any: raw responses (_preload_content=False)
    versions: Any = client.VersionApi(api_client)
    errors = _transport_errors()
    version_errors: tuple[type[BaseException], ...] = (*errors, ValueError)
    try:
        resp = core.get_api_resources(_preload_content=False, _request_timeout=timeout_s)
        names = [r.get("name") for r in json.loads(resp.data).get("resources") or []]
    except errors as exc:
        raise _api_error(exc, "API discovery of core/v1") from exc
    try:
        ver = versions.get_code(_preload_content=False, _request_timeout=timeout_s)
        version = str(json.loads(ver.data).get("gitVersion") or "")
    except version_errors:
        version = ""
    return resize_support_from_discovery(names, version)


class PodResizer:
    """The executor's ``Resizer`` (:class:`casa_sched.autoscaler.apply.Resizer`): read the pod,
    :func:`decide`, and :func:`send_resize` when the spec differs from the action's size.

    Reads before it writes, so re-running an applied action makes no write. A pod that cannot be
    resized now (not Running yet, or on a node that reports no container sizes) or at all (no
    such container, BestEffort) raises a non-retryable :class:`AdapterError` naming why: the
    loop recomputes its actions next pass. How an accepted resize ends (applied, Deferred,
    Infeasible) is read later from the pod's status with :func:`resize_state`.
    """

    def __init__(self, api_client: Any, *, dry_run: bool = False, timeout_s: float = 10.0) -> None:
        self.api_client = api_client
        self.dry_run = dry_run
        self.timeout_s = timeout_s

    def read_pod(self, namespace: str, name: str) -> dict[str, Any]:
        """The pod's JSON; :class:`WorkloadGone` when it no longer exists."""
        from kubernetes import client

        core: Any = client.CoreV1Api(self.api_client)  # Any: raw JSON (_preload_content=False)
        try:
            resp = core.read_namespaced_pod(name, namespace, _preload_content=False,
                                            _request_timeout=self.timeout_s)
            pod: dict[str, Any] = json.loads(resp.data)
        except _transport_errors() as exc:
            raise _api_error(exc, f"read pod {namespace}/{name}") from exc
        return pod

    def resize(self, action: ResizeAction) -> None:
        """Resize ``action.container`` of ``action.pod`` to ``action.cpu_cores`` / ``memory_bytes``."""
        pod = self.read_pod(action.namespace, action.pod)
        size = ContainerSize(cpu_cores=action.cpu_cores, memory_bytes=math.ceil(action.memory_bytes))
        try:
            decision = decide(pod, action.container, size)
        except ResizePodError as exc:
            raise AdapterError(f"resize of pod {action.namespace}/{action.pod}: {exc}", retryable=False) from exc
        if decision.step in (Step.LATER, Step.SKIP):
            raise AdapterError(f"resize of pod {action.namespace}/{action.pod}: {decision.reason}", retryable=False)
        send_resize(self.api_client, action.namespace, action.pod, decision, dry_run=self.dry_run,
                    timeout_s=self.timeout_s)
