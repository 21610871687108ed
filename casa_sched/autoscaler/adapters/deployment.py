"""Plain Deployments as function workloads, scaled through the ``scale`` subresource.

A Deployment is a function workload when it carries the label ``casa.dev/function=<id>``; its
pods are those its ``spec.selector.matchLabels`` selects, and the function's container is the
one named by the annotation ``casa.dev/container`` (else the template's first container).
OpenFaaS functions are Deployments too, but the OpenFaaS adapter owns them (it scales through
the gateway so OpenFaaS's own scaler agrees).

``scale`` reads ``deployments/{name}/scale`` and writes it back (with the read
resourceVersion, so a concurrent change is a 409 and is retried) only when the count differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any, ClassVar

from casa_sched.autoscaler.adapters import AdapterContext, register_adapter
from casa_sched.autoscaler.adapters.base import AdapterError, Workload
from casa_sched.conventions import CONTAINER_ANNOTATION, FUNCTION_LABEL
from casa_sched.kube.objects import ObjectError

PLATFORM = "deployment"


def _dict(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ObjectError(path, f"expected an object, got {type(value).__name__}")
    return value


def _str_map(value: Any, path: str) -> dict[str, str]:
    m = _dict(value if value is not None else {}, path)
    for k, v in m.items():
        if not isinstance(v, str):
            raise ObjectError(f"{path}.{k}", f"expected a string, got {type(v).__name__}")
    return m


def workload_from_deployment(obj: Any, path: str = "Deployment") -> Workload | None:
    """The function workload a Deployment JSON object is, or None when it is not a function's.

    Pure. Raises :class:`ObjectError` (naming the JSON path) when a field it reads is malformed:
    no name, a selector without ``matchLabels``, no containers, an unknown ``casa.dev/container``.
    """
    dep = _dict(obj, path)
    meta = _dict(dep.get("metadata") or {}, f"{path}.metadata")
    labels = _str_map(meta.get("labels"), f"{path}.metadata.labels")
    function = labels.get(FUNCTION_LABEL)
    if not function:
        return None
    name, namespace = meta.get("name"), meta.get("namespace")
    if not isinstance(name, str) or not name or not isinstance(namespace, str) or not namespace:
        raise ObjectError(f"{path}.metadata", "name and namespace are required")
    spec = _dict(dep.get("spec") or {}, f"{path}.spec")
    selector = _str_map(_dict(spec.get("selector") or {}, f"{path}.spec.selector").get("matchLabels"),
                        f"{path}.spec.selector.matchLabels")  # fmt: skip
    if not selector:
        raise ObjectError(f"{path}.spec.selector.matchLabels", "a function Deployment needs matchLabels")
    template = _dict(spec.get("template") or {}, f"{path}.spec.template")
    containers = _dict(template.get("spec") or {}, f"{path}.spec.template.spec").get("containers")
    if not isinstance(containers, list) or not containers:
        raise ObjectError(f"{path}.spec.template.spec.containers", "expected a non-empty array")
    names = [c.get("name") if isinstance(c, dict) else None for c in containers]
    annotations = _str_map(meta.get("annotations"), f"{path}.metadata.annotations")
    container = annotations.get(CONTAINER_ANNOTATION) or names[0]
    if not isinstance(container, str) or container not in names:
        raise ObjectError(f"{path}.metadata.annotations.{CONTAINER_ANNOTATION}",
                          f"names no container of the pod template (has {names})")  # fmt: skip
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise ObjectError(f"{path}.spec.replicas", f"expected an integer >= 0, got {replicas!r}")
    return Workload(
        function=function,
        platform=PLATFORM,
        namespace=namespace,
        name=name,
        container=container,
        pod_selector=MappingProxyType(dict(selector)),
        replicas=replicas,
    )


@register_adapter(PLATFORM)
class DeploymentAdapter:
    """Function Deployments (label ``casa.dev/function``), replicas through ``deployments/scale``."""

    platform: ClassVar[str] = PLATFORM

    def __init__(self, context: AdapterContext) -> None:
        self._api = context.api_client
        self.skipped: list[str] = []  # malformed Deployments seen by the last discover()

    def discover(self) -> Sequence[Workload]:
        from casa_sched.autoscaler.kubeapi import api_error, request_json

        try:
            data = request_json(self._api, "GET", "/apis/apps/v1/deployments", query={"labelSelector": FUNCTION_LABEL})
        except Exception as exc:
            raise api_error(exc, "list deployments") from exc
        out: list[Workload] = []
        self.skipped = []
        for i, item in enumerate(data.get("items") or []):
            try:
                w = workload_from_deployment(item, f"deployments[{i}]")
            except ObjectError as exc:
                self.skipped.append(str(exc))
                continue
            if w is not None:
                out.append(w)
        return out

    def scale(self, workload: Workload, replicas: int, *, dry_run: bool = False) -> bool:
        from casa_sched.autoscaler.kubeapi import api_error, request_json

        what = f"deployment {workload.namespace}/{workload.name} scale"
        path = f"/apis/apps/v1/namespaces/{workload.namespace}/deployments/{workload.name}/scale"
        if replicas < 0:
            raise AdapterError(f"{what}: replicas must be >= 0, got {replicas}", retryable=False)
        try:
            current = request_json(self._api, "GET", path)
        except Exception as exc:
            raise api_error(exc, f"read {what}") from exc
        spec = current.get("spec") or {}
        if spec.get("replicas", 0) == replicas:
            return False
        if dry_run:
            return True
        body = {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {
                "name": workload.name,
                "namespace": workload.namespace,
                "resourceVersion": (current.get("metadata") or {}).get("resourceVersion"),
            },
            "spec": {"replicas": replicas},
        }
        try:
            request_json(self._api, "PUT", path, body)
        except Exception as exc:
            raise api_error(exc, f"write {what}") from exc
        return True
