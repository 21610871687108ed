"""The Knative adapter against a real apiserver holding Knative Serving's real CRDs.

Two releases, each on its own plane: 1.15.2 (module v0.42.2: min/max-scale go on the
PodAutoscaler) and 1.24.0 (module v0.51.0: they go on the Revision, serving #16186). The
Service, Revision and PodAutoscaler objects are written here the way Knative's controllers
write them (status through the status subresource); no Knative controller runs in this module
(``test_knative_components.py`` runs the real ones).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from casa_sched.autoscaler.adapters.base import AdapterError, WorkloadGone
from casa_sched.autoscaler.adapters.knative import MAX_SCALE, MIN_SCALE, KnativeAdapter, Release
from casa_sched.devcluster.controlplane import ControlPlane, HarnessError

from .knative_support import RELEASE_OF, create_with_status, install_serving, knative_dir, serving_path

pytestmark = pytest.mark.k8s

AUTOSCALING = "autoscaling.internal.knative.dev/v1alpha1"


@pytest.fixture(scope="module", params=["v0.42.2", "v0.51.0"], ids=["release-1.15", "release-1.24"])
def knative_plane(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                  k8s_bin_dir: Path) -> Iterator[tuple[ControlPlane, str]]:
    version: str = request.param
    try:
        config = knative_dir(version, build=False) / "config"
        cp = ControlPlane.start(tmp_path_factory.mktemp(f"kn-{version}"), bin_dir=k8s_bin_dir, scheduler=False)
    except HarnessError as exc:
        pytest.fail(f"Knative {version} plane: {exc}")
    try:
        install_serving(cp, config, RELEASE_OF[version])
        yield cp, RELEASE_OF[version]
    finally:
        cp.stop()


def _service(cp: ControlPlane, ns: str, name: str, traffic: list[dict[str, Any]], *,
             template_ann: dict[str, str] | None = None, containers: list[dict[str, Any]] | None = None) -> None:
    """A Service, its Revisions (one per traffic target) and their PodAutoscalers, with status."""
    containers = containers or [{"image": "registry.invalid/fn@sha256:" + "0" * 64}]
    svc = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
           "spec": {"template": {"metadata": {"annotations": template_ann or {}}, "spec": {"containers": containers}}}}
    latest = traffic[-1]["revisionName"]
    for t in traffic:
        rev = t["revisionName"]
        cp.request("POST", serving_path(ns, "revisions"), {
            "apiVersion": "serving.knative.dev/v1", "kind": "Revision",
            "metadata": {"name": rev, "namespace": ns, "annotations": dict(template_ann or {}),
                         "labels": {"serving.knative.dev/service": name}},
            "spec": {"containers": containers}})
        create_with_status(cp, serving_path(ns, "podautoscalers", group=AUTOSCALING), {
            "apiVersion": AUTOSCALING, "kind": "PodAutoscaler",
            "metadata": {"name": rev, "namespace": ns, "annotations": dict(template_ann or {})},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{rev}-deployment"},
                     "protocolType": "http1"}},
            {"desiredScale": 1, "actualScale": 1, "serviceName": rev, "metricsServiceName": f"{rev}-private"})
    create_with_status(cp, serving_path(ns, "services"), svc,
                       {"latestReadyRevisionName": latest, "latestCreatedRevisionName": latest, "traffic": traffic})


def _annotations(cp: ControlPlane, ns: str, plural: str, name: str) -> dict[str, str]:
    group = AUTOSCALING if plural == "podautoscalers" else "serving.knative.dev/v1"
    obj = cp.request("GET", serving_path(ns, plural, name, group=group))
    ann: dict[str, str] = obj["metadata"].get("annotations") or {}
    return {k: v for k, v in ann.items() if k.startswith("autoscaling.knative.dev/")}


@pytest.fixture
def kn_ns(knative_plane: tuple[ControlPlane, str]) -> Iterator[str]:
    cp, _ = knative_plane
    ns = f"kn-{secrets.token_hex(3)}"
    cp.create_namespace(ns)
    try:
        yield ns
    finally:
        cp.delete_namespace(ns)


def test_release_is_detected_from_the_controller_deployment(knative_plane: tuple[ControlPlane, str]) -> None:
    cp, release = knative_plane
    adapter = KnativeAdapter(cp.api_client())
    assert str(adapter.release) == f"v{release}"
    assert adapter.target_kind() == ("revisions" if adapter.release.annotates_revision else "podautoscalers")


def test_no_controller_deployment_is_a_clear_error_unless_the_release_is_set(
        knative_plane: tuple[ControlPlane, str]) -> None:
    cp, _ = knative_plane
    with pytest.raises(AdapterError, match=r"knative-elsewhere/controller.*set knative\.release"):
        KnativeAdapter(cp.api_client(), serving_namespace="knative-elsewhere")
    assert KnativeAdapter(cp.api_client(), serving_namespace="knative-elsewhere",
                          release=Release(1, 20, 0)).target_kind() == "podautoscalers"


def test_discover_returns_the_routed_revision_of_each_service(knative_plane: tuple[ControlPlane, str],
                                                              kn_ns: str) -> None:
    cp, _ = knative_plane
    _service(cp, kn_ns, "thumb", [{"revisionName": "thumb-00001", "percent": 100, "latestRevision": True}],
             template_ann={MAX_SCALE: "8"})
    _service(cp, kn_ns, "split", [{"revisionName": "split-00001", "percent": 70},
                                  {"revisionName": "split-00002", "percent": 30}],
             containers=[{"name": "log", "image": "registry.invalid/log"},
                         {"name": "app", "image": "registry.invalid/app", "ports": [{"containerPort": 8080}]}])
    got = {w.function: w for w in KnativeAdapter(cp.api_client(), namespaces=[kn_ns]).discover()}
    assert sorted(got) == ["split", "thumb"]
    assert (got["thumb"].name, got["thumb"].container, got["thumb"].max_replicas) == ("thumb-00001",
                                                                                      "user-container", 8)
    assert (got["split"].name, got["split"].container) == ("split-00001", "app")  # 70 % > 30 %
    assert got["thumb"].replicas == 1  # PodAutoscaler status.desiredScale
    assert dict(got["split"].pod_selector) == {"serving.knative.dev/revision": "split-00001"}


def test_scale_annotates_the_release_s_object_once_and_never_the_service(knative_plane: tuple[ControlPlane, str],
                                                                          kn_ns: str) -> None:
    cp, _ = knative_plane
    _service(cp, kn_ns, "thumb", [{"revisionName": "thumb-00001", "percent": 100}])
    adapter = KnativeAdapter(cp.api_client(), namespaces=[kn_ns])
    (w,) = adapter.discover()
    target = adapter.target_kind()
    other = "podautoscalers" if target == "revisions" else "revisions"
    svc_before = cp.request("GET", serving_path(kn_ns, "services", "thumb"))

    assert adapter.scale(w, 3, dry_run=True) is True
    assert _annotations(cp, kn_ns, target, "thumb-00001") == {}  # dry run wrote nothing
    assert adapter.scale(w, 3) is True
    assert _annotations(cp, kn_ns, target, "thumb-00001") == {MIN_SCALE: "3", MAX_SCALE: "3"}
    assert _annotations(cp, kn_ns, other, "thumb-00001") == {}
    assert adapter.scale(w, 3) is False  # idempotent: read, equal, no write
    assert adapter.scale(w, 0) is True  # zero: allowed, not forced; max-scale removed
    assert _annotations(cp, kn_ns, target, "thumb-00001") == {MIN_SCALE: "0"}

    svc_after = cp.request("GET", serving_path(kn_ns, "services", "thumb"))
    assert svc_after["metadata"]["generation"] == svc_before["metadata"]["generation"]
    assert svc_after["spec"] == svc_before["spec"]


def test_scale_reasserts_after_someone_else_overwrites(knative_plane: tuple[ControlPlane, str], kn_ns: str) -> None:
    cp, _ = knative_plane
    _service(cp, kn_ns, "thumb", [{"revisionName": "thumb-00001", "percent": 100}])
    adapter = KnativeAdapter(cp.api_client(), namespaces=[kn_ns])
    (w,) = adapter.discover()
    target = adapter.target_kind()
    group = AUTOSCALING if target == "podautoscalers" else "serving.knative.dev/v1"
    assert adapter.scale(w, 2) is True
    # what a reconciler that recreates the object from the Revision's annotations would leave
    cp.request("PATCH", serving_path(kn_ns, target, "thumb-00001", group=group),
               {"metadata": {"annotations": {MIN_SCALE: None, MAX_SCALE: None}}},
               content_type="application/merge-patch+json")
    assert adapter.scale(w, 2) is True
    assert _annotations(cp, kn_ns, target, "thumb-00001") == {MIN_SCALE: "2", MAX_SCALE: "2"}


def test_scale_of_a_deleted_revision_is_workload_gone(knative_plane: tuple[ControlPlane, str], kn_ns: str) -> None:
    cp, _ = knative_plane
    _service(cp, kn_ns, "thumb", [{"revisionName": "thumb-00001", "percent": 100}])
    adapter = KnativeAdapter(cp.api_client(), namespaces=[kn_ns])
    (w,) = adapter.discover()
    group = AUTOSCALING if adapter.target_kind() == "podautoscalers" else "serving.knative.dev/v1"
    cp.request("DELETE", serving_path(kn_ns, adapter.target_kind(), "thumb-00001", group=group))
    with pytest.raises(WorkloadGone):
        adapter.scale(w, 2)


def test_scale_above_the_service_max_scale_is_clamped_with_one_warning(knative_plane: tuple[ControlPlane, str],
                                                                       kn_ns: str) -> None:
    cp, _ = knative_plane
    _service(cp, kn_ns, "thumb", [{"revisionName": "thumb-00001", "percent": 100}], template_ann={MAX_SCALE: "4"})
    warnings: list[str] = []
    adapter = KnativeAdapter(cp.api_client(), namespaces=[kn_ns], warn=warnings.append)
    (w,) = adapter.discover()
    target = adapter.target_kind()
    assert adapter.scale(w, 6) is True
    assert _annotations(cp, kn_ns, target, "thumb-00001") == {MIN_SCALE: "4", MAX_SCALE: "4"}
    assert adapter.scale(w, 6) is False
    assert len(warnings) == 1
    assert "max-scale 4" in warnings[0]
    assert adapter.scale(w, 0) is True  # back to the user's ceiling
    assert _annotations(cp, kn_ns, target, "thumb-00001") == {MIN_SCALE: "0", MAX_SCALE: "4"}
