"""Knative Serving Revisions as workloads, held at a replica count by min-scale = max-scale.

Read from Knative Serving's source (``knative.dev/serving``, releases 1.15 to 1.24):

- A Service's traffic goes to Revisions (``status.traffic[].revisionName``, ``percent``). The
  autoscaler (KPA) sizes a Revision's Deployment within the bounds of the
  ``autoscaling.knative.dev/min-scale`` / ``max-scale`` annotations *of its PodAutoscaler*
  (``autoscaling.internal.knative.dev/v1alpha1``, same name as the Revision), and applies
  min-scale only while the Revision is routed (reachable).
- From release 1.21 (serving #16186, "Allow manual scaling of the Pod Autoscaler") the Revision
  reconciler copies the Revision's ``autoscaling.knative.dev/*`` annotations onto the
  PodAutoscaler on every reconcile and deletes the PodAutoscaler's own: there casa-sched
  annotates the **Revision**. Up to 1.20 the PodAutoscaler's annotations are set once, when it
  is created, and later reconciles replace only its spec: there casa-sched annotates the
  **PodAutoscaler**, and re-asserts them every epoch (a recreated PodAutoscaler starts again
  from the Revision's annotations).
- Editing a Service's ``spec.template`` creates a new Revision (new pods, a rollout): this
  adapter never writes the Service.

``discover`` returns, per Service, the routed Revision with the most traffic (ties: the latest
ready one); the other Revisions of a traffic split stay under Knative's own autoscaler. The
function id is the Service's name (the ``serving.knative.dev/service`` pod label). The user
container is the Revision's only container, or the one with ports when it has several; its name
defaults to ``user-container``. ``scale(n)`` sets min-scale = max-scale = n for n >= 1; for
n = 0 it sets min-scale 0 and gives max-scale back to the Service template's value (Knative
reads max-scale 0 as "no limit", so zero cannot be forced, only allowed: the KPA scales an idle
Revision to zero on its own). A count above the Service template's own max-scale
(``Workload.max_replicas``) is capped at it, with one warning per Revision.

The release is read once, at construction, from the ``controller`` Deployment in
``knative-serving`` (labels ``app.kubernetes.io/version`` or ``serving.knative.dev/release``).

RBAC: ``list`` services and revisions (``serving.knative.dev``) and podautoscalers
(``autoscaling.internal.knative.dev``); ``get``/``patch`` revisions (1.21+) or podautoscalers
(up to 1.20); ``get`` deployments in ``knative-serving`` (unless ``knative.release`` is set).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

from casa_sched.autoscaler.adapters import AdapterContext, register_adapter
from casa_sched.autoscaler.adapters.base import AdapterError, Workload
from casa_sched.autoscaler.kubeapi import api_error, read_json

log = logging.getLogger(__name__)

PLATFORM = "knative"
MIN_SCALE = "autoscaling.knative.dev/min-scale"
MAX_SCALE = "autoscaling.knative.dev/max-scale"
REVISION_LABEL = "serving.knative.dev/revision"
DEFAULT_USER_CONTAINER = "user-container"  # knative.dev/serving pkg/apis/config DefaultUserContainerName
RELEASE_LABELS = ("app.kubernetes.io/version", "serving.knative.dev/release")
FIRST_REVISION_ANNOTATED_RELEASE = (1, 21)  # serving #16186: Revision annotations reach the PA
SERVING = ("serving.knative.dev", "v1")
AUTOSCALING = ("autoscaling.internal.knative.dev", "v1alpha1")


class KnativeObjectError(ValueError):
    """A Knative object that is not shaped as its CRD says; the message names the JSON path."""


@dataclass(frozen=True, order=True)
class Release:
    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}"

    @property
    def annotates_revision(self) -> bool:
        """Whether min/max-scale go on the Revision (1.21+) rather than its PodAutoscaler."""
        return (self.major, self.minor) >= FIRST_REVISION_ANNOTATED_RELEASE


_RELEASE_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+].*)?$")


def parse_release(text: str) -> Release | None:
    """``v1.15.2``, ``1.21.0``, ``v1.20`` → a :class:`Release`; ``devel`` or junk → None (pure)."""
    m = _RELEASE_RE.match(text.strip())
    if m is None:
        return None
    return Release(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))


def release_of_controller(deployment: Any) -> Release | None:
    """The release a Knative ``controller`` Deployment's labels name, or None (pure)."""
    meta = deployment.get("metadata") if isinstance(deployment, dict) else None
    labels = (meta or {}).get("labels") or {}
    for key in RELEASE_LABELS:
        value = labels.get(key)
        if isinstance(value, str):
            release = parse_release(value)
            if release is not None:
                return release
    return None


def _obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise KnativeObjectError(f"{path}: expected an object, got {type(value).__name__}")
    return value


def _annotations(obj: Mapping[str, Any], path: str) -> dict[str, str]:
    ann = _obj(obj.get("metadata") or {}, f"{path}.metadata").get("annotations") or {}
    if not isinstance(ann, dict) or not all(isinstance(v, str) for v in ann.values()):
        raise KnativeObjectError(f"{path}.metadata.annotations: expected an object of strings")
    return ann


def _name(obj: Mapping[str, Any], path: str) -> tuple[str, str]:
    meta = _obj(obj.get("metadata") or {}, f"{path}.metadata")
    name, namespace = meta.get("name"), meta.get("namespace")
    if not isinstance(name, str) or not name or not isinstance(namespace, str) or not namespace:
        raise KnativeObjectError(f"{path}.metadata: name and namespace are required")
    return namespace, name


def scale_value(text: str | None, path: str) -> int | None:
    """A min-scale / max-scale annotation as an int (None when absent); ``0`` means unset/unlimited."""
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise KnativeObjectError(f"{path}: expected an integer, got {text!r}") from None
    if value < 0:
        raise KnativeObjectError(f"{path}: expected an integer >= 0, got {text!r}")
    return value


def routed_revision(service: Any, path: str = "Service") -> str | None:
    """The routed Revision of a Service with the largest traffic share (pure).

    Ties go to ``status.latestReadyRevisionName``, then to the name. None when nothing is routed
    (the Service is not ready yet, or all its traffic goes to a tag with 0 %).
    """
    status = _obj(_obj(service, path).get("status") or {}, f"{path}.status")
    latest = status.get("latestReadyRevisionName")
    traffic = status.get("traffic") or []
    if not isinstance(traffic, list):
        raise KnativeObjectError(f"{path}.status.traffic: expected an array")
    share: dict[str, int] = {}
    for i, target in enumerate(traffic):
        t = _obj(target, f"{path}.status.traffic[{i}]")
        rev, percent = t.get("revisionName"), t.get("percent", 0)
        if not isinstance(rev, str) or not rev:
            continue
        if not isinstance(percent, int) or isinstance(percent, bool):
            raise KnativeObjectError(f"{path}.status.traffic[{i}].percent: expected an integer, got {percent!r}")
        share[rev] = share.get(rev, 0) + percent
    routed = [(p, rev == latest, rev) for rev, p in share.items() if p > 0]
    if not routed:
        return None
    return max(routed, key=lambda r: (r[0], r[1], [-ord(c) for c in r[2]]))[2]


def user_container(revision: Any, path: str = "Revision") -> str:
    """The user container's name (never ``queue-proxy``, which Knative adds to the pod) (pure)."""
    spec = _obj(_obj(revision, path).get("spec") or {}, f"{path}.spec")
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        raise KnativeObjectError(f"{path}.spec.containers: expected a non-empty array")
    chosen = containers[0]
    if len(containers) > 1:
        with_ports = [c for c in containers if isinstance(c, dict) and c.get("ports")]
        if not with_ports:
            raise KnativeObjectError(f"{path}.spec.containers: several containers and none has ports")
        chosen = with_ports[0]
    name = _obj(chosen, f"{path}.spec.containers[]").get("name")
    return name if isinstance(name, str) and name else DEFAULT_USER_CONTAINER


def template_max_scale(service: Any, path: str = "Service") -> int | None:
    """The Service template's max-scale (the user's ceiling), None when absent or 0 (pure)."""
    spec = _obj(_obj(service, path).get("spec") or {}, f"{path}.spec")
    template = _obj(spec.get("template") or {}, f"{path}.spec.template")
    value = scale_value(_annotations(template, f"{path}.spec.template").get(MAX_SCALE),
                        f"{path}.spec.template.metadata.annotations.{MAX_SCALE}")  # fmt: skip
    return value or None


def desired_scale_annotations(replicas: int, user_max: int | None) -> dict[str, str | None]:
    """The min/max-scale annotations that hold a Revision at ``replicas`` (None: remove) (pure).

    n >= 1: min = max = n. n = 0: min 0, max back to the user's (or removed): Knative cannot be
    told to stay at zero, only allowed to go there.
    """
    if replicas >= 1:
        return {MIN_SCALE: str(replicas), MAX_SCALE: str(replicas)}
    return {MIN_SCALE: "0", MAX_SCALE: str(user_max) if user_max else None}


def annotation_patch(current: Mapping[str, str], desired: Mapping[str, str | None]) -> dict[str, str | None]:
    """The merge-patch of ``metadata.annotations`` that turns ``current`` into ``desired``;
    empty when nothing differs (pure)."""
    return {k: v for k, v in desired.items() if current.get(k) != v}


def workload_of(service: Any, revision: Any, pa: Any | None, path: str = "Service") -> Workload:
    """The :class:`Workload` of a Service's routed ``revision`` (pure)."""
    namespace, service_name = _name(service, path)
    _, rev_name = _name(revision, f"Revision {namespace}/{service_name}")
    replicas: int | None = None
    if pa is not None:
        desired = _obj(pa.get("status") or {}, f"PodAutoscaler {namespace}/{rev_name}.status").get("desiredScale")
        if isinstance(desired, int) and not isinstance(desired, bool) and desired >= 0:
            replicas = desired
    return Workload(
        function=service_name,
        platform=PLATFORM,
        namespace=namespace,
        name=rev_name,
        container=user_container(revision, f"Revision {namespace}/{rev_name}"),
        pod_selector=MappingProxyType({REVISION_LABEL: rev_name}),
        replicas=replicas,
        max_replicas=template_max_scale(service, path),
    )


class KnativeAdapter:
    """Routed Revisions of Knative Services, held at the plan's count through min/max-scale."""

    platform: ClassVar[str] = PLATFORM

    def __init__(
        self,
        api_client: Any,
        *,
        namespaces: Sequence[str] = (),
        release: Release | None = None,
        serving_namespace: str = "knative-serving",
        warn: Callable[[str], None] = log.warning,
    ) -> None:
        from kubernetes import client

        self._custom: Any = client.CustomObjectsApi(api_client)
        self._apps: Any = client.AppsV1Api(api_client)
        self.namespaces = tuple(namespaces)
        self.release = release or self._detect_release(serving_namespace)
        self.skipped: list[str] = []  # malformed objects seen by the last discover()
        self._warn = warn
        self._warned: set[str] = set()

    def _detect_release(self, serving_namespace: str) -> Release:
        what = f"deployment {serving_namespace}/controller"
        try:
            dep = read_json(self._apps.read_namespaced_deployment("controller", serving_namespace,
                                                                  _preload_content=False))  # fmt: skip
        except Exception as exc:
            err = api_error(exc, f"read {what} (to tell the Knative release)")
            raise AdapterError(f"{err}; set knative.release to skip the detection", retryable=err.retryable) from exc
        release = release_of_controller(dep)
        if release is None:
            raise AdapterError(f"{what}: no release label ({' or '.join(RELEASE_LABELS)}) with a version; "
                               "set knative.release (e.g. v1.15.2)", retryable=False)  # fmt: skip
        return release

    def _list(self, group_version: tuple[str, str], plural: str) -> list[Any]:
        group, version = group_version
        out: list[Any] = []
        try:
            if self.namespaces:
                for ns in self.namespaces:
                    resp = self._custom.list_namespaced_custom_object(group, version, ns, plural,
                                                                      _preload_content=False)  # fmt: skip
                    out.extend(read_json(resp).get("items") or [])
            else:
                resp = self._custom.list_cluster_custom_object(group, version, plural, _preload_content=False)
                out.extend(read_json(resp).get("items") or [])
        except Exception as exc:
            err = api_error(exc, f"list {plural}.{group}")
            raise AdapterError(str(err), retryable=err.retryable) from exc  # a 404 here: CRD missing, not gone
        return out

    def discover(self) -> Sequence[Workload]:
        services = self._list(SERVING, "services")
        revisions = {_key(r): r for r in self._list(SERVING, "revisions") if _has_key(r)}
        pas = {_key(p): p for p in self._list(AUTOSCALING, "podautoscalers") if _has_key(p)}
        out: list[Workload] = []
        self.skipped = []
        for i, svc in enumerate(services):
            path = f"services[{i}]"
            try:
                namespace, _ = _name(_obj(svc, path), path)
                rev_name = routed_revision(svc, path)
                if rev_name is None:
                    continue
                revision = revisions.get((namespace, rev_name))
                if revision is None:
                    self.skipped.append(f"{path}: routed revision {namespace}/{rev_name} not found")
                    continue
                out.append(workload_of(svc, revision, pas.get((namespace, rev_name)), path))
            except KnativeObjectError as exc:
                self.skipped.append(str(exc))
        return out

    def target_kind(self) -> str:
        return "revisions" if self.release.annotates_revision else "podautoscalers"

    def scale(self, workload: Workload, replicas: int, *, dry_run: bool = False) -> bool:
        if replicas < 0:
            raise AdapterError(f"knative {workload.namespace}/{workload.name}: replicas must be >= 0, got {replicas}",
                               retryable=False)  # fmt: skip
        if workload.max_replicas is not None and replicas > workload.max_replicas:
            key = f"{workload.namespace}/{workload.name}"
            if key not in self._warned:
                self._warned.add(key)
                self._warn(f"knative {key}: plan asks {replicas} replicas, setting the Service's max-scale "
                           f"{workload.max_replicas}")  # fmt: skip
            replicas = workload.max_replicas
        plural = self.target_kind()
        group, version = SERVING if plural == "revisions" else AUTOSCALING
        what = f"{plural}.{group} {workload.namespace}/{workload.name}"
        try:
            obj = read_json(self._custom.get_namespaced_custom_object(
                group, version, workload.namespace, plural, workload.name, _preload_content=False))
        except Exception as exc:
            raise api_error(exc, f"read {what}") from exc
        try:
            current = _annotations(obj, what)
        except KnativeObjectError as exc:
            raise AdapterError(str(exc), retryable=False) from exc
        patch = annotation_patch(current, desired_scale_annotations(replicas, workload.max_replicas))
        if not patch:
            return False
        if dry_run:
            return True
        body = {"metadata": {"annotations": patch}}
        try:
            self._custom.patch_namespaced_custom_object(  # Content-Type: application/merge-patch+json
                group, version, workload.namespace, plural, workload.name, body,
                _content_type="application/merge-patch+json", _preload_content=False,
            )  # fmt: skip
        except Exception as exc:
            raise api_error(exc, f"patch {what}") from exc
        return True


def _has_key(obj: Any) -> bool:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    return isinstance(meta, dict) and isinstance(meta.get("name"), str) and isinstance(meta.get("namespace"), str)


def _key(obj: Any) -> tuple[str, str]:
    return obj["metadata"]["namespace"], obj["metadata"]["name"]


@register_adapter(PLATFORM)
def knative_adapter(context: AdapterContext) -> KnativeAdapter:
    """The adapter the ``knative`` settings section describes (release detected now unless set)."""
    cfg = context.settings.knative
    release = None
    if cfg.release is not None:
        release = parse_release(cfg.release)
        if release is None:
            raise AdapterError(f"knative.release: expected a version like v1.15.2, got {cfg.release!r}", retryable=False)
    return KnativeAdapter(context.api_client, namespaces=cfg.namespaces, release=release,
                          serving_namespace=cfg.serving_namespace)  # fmt: skip
