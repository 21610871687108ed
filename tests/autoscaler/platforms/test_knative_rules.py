"""Knative adapter, pure parts: release detection, routed revision, user container, annotations."""

from __future__ import annotations

from typing import Any

import pytest

from casa_sched.autoscaler.adapters.knative import (
    MAX_SCALE,
    MIN_SCALE,
    KnativeObjectError,
    Release,
    annotation_patch,
    desired_scale_annotations,
    parse_release,
    release_of_controller,
    routed_revision,
    user_container,
    workload_of,
)


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("v1.15.2", Release(1, 15, 2), id="v-prefixed"),
    pytest.param("1.21.0", Release(1, 21, 0), id="bare"),
    pytest.param("v1.20", Release(1, 20, 0), id="no-patch"),
    pytest.param("1.24.0-rc.1", Release(1, 24, 0), id="pre-release-suffix"),
    pytest.param("devel", None, id="source-tree-label"),
    pytest.param("", None, id="empty"),
])
def test_parse_release(text: str, expected: Release | None) -> None:
    assert parse_release(text) == expected


@pytest.mark.parametrize(("release", "on_revision"), [
    pytest.param(Release(1, 15, 2), False, id="1.15-podautoscaler"),
    pytest.param(Release(1, 20, 9), False, id="1.20-podautoscaler"),
    pytest.param(Release(1, 21, 0), True, id="1.21-revision-serving-16186"),
    pytest.param(Release(1, 24, 0), True, id="1.24-revision"),
    pytest.param(Release(2, 0, 0), True, id="2.0-revision"),
])
def test_which_object_carries_min_max_scale(release: Release, on_revision: bool) -> None:
    assert release.annotates_revision is on_revision


@pytest.mark.parametrize(("labels", "expected"), [
    pytest.param({"app.kubernetes.io/version": "1.15.2"}, Release(1, 15, 2), id="app-version"),
    pytest.param({"serving.knative.dev/release": "v1.20.1"}, Release(1, 20, 1), id="release-label"),
    pytest.param({"app.kubernetes.io/version": "devel", "serving.knative.dev/release": "v1.21.0"},
                 Release(1, 21, 0), id="devel-then-release"),
    pytest.param({"app.kubernetes.io/version": "devel"}, None, id="devel-only"),
    pytest.param({}, None, id="no-labels"),
])
def test_release_of_controller(labels: dict[str, str], expected: Release | None) -> None:
    assert release_of_controller({"metadata": {"name": "controller", "labels": labels}}) == expected


def _svc(traffic: list[dict[str, Any]], latest: str | None = None, template_ann: dict[str, str] | None = None) -> Any:
    return {"metadata": {"name": "thumb", "namespace": "fns"},
            "spec": {"template": {"metadata": {"annotations": template_ann or {}}}},
            "status": {"traffic": traffic, "latestReadyRevisionName": latest}}


@pytest.mark.parametrize(("traffic", "latest", "expected"), [
    pytest.param([], None, None, id="not-ready-yet"),
    pytest.param([{"revisionName": "thumb-00001", "percent": 100, "latestRevision": True}], "thumb-00001",
                 "thumb-00001", id="all-to-latest"),
    pytest.param([{"revisionName": "thumb-00001", "percent": 80}, {"revisionName": "thumb-00002", "percent": 20}],
                 "thumb-00002", "thumb-00001", id="split-most-traffic-wins"),
    pytest.param([{"revisionName": "thumb-00001", "percent": 50}, {"revisionName": "thumb-00002", "percent": 50}],
                 "thumb-00002", "thumb-00002", id="tie-goes-to-latest-ready"),
    # two targets on one revision (a tag and the default route): 30 + 30 = 60 > 40
    pytest.param([{"revisionName": "thumb-00001", "percent": 30}, {"revisionName": "thumb-00001", "percent": 30,
                  "tag": "old"}, {"revisionName": "thumb-00002", "percent": 40}], "thumb-00002", "thumb-00001",
                 id="shares-add-up-per-revision"),
    pytest.param([{"revisionName": "thumb-00003", "percent": 0, "tag": "canary"}], "thumb-00003", None,
                 id="zero-percent-tag-is-not-routed"),
])
def test_routed_revision(traffic: list[dict[str, Any]], latest: str | None, expected: str | None) -> None:
    assert routed_revision(_svc(traffic, latest)) == expected


@pytest.mark.parametrize(("containers", "expected"), [
    pytest.param([{"image": "x"}], "user-container", id="unnamed-defaults"),
    pytest.param([{"name": "app", "image": "x"}], "app", id="named"),
    pytest.param([{"name": "sidecar", "image": "s"}, {"name": "app", "image": "x", "ports": [{"containerPort": 8080}]}],
                 "app", id="multi-container-serving-one-has-ports"),
])
def test_user_container(containers: list[dict[str, Any]], expected: str) -> None:
    assert user_container({"spec": {"containers": containers}}) == expected


@pytest.mark.parametrize(("revision", "fragment"), [
    pytest.param({"spec": {}}, "spec.containers", id="no-containers"),
    pytest.param({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}, "none has ports", id="multi-no-ports"),
])
def test_user_container_rejects_malformed_revision(revision: Any, fragment: str) -> None:
    with pytest.raises(KnativeObjectError, match=fragment):
        user_container(revision)


@pytest.mark.parametrize(("replicas", "user_max", "expected"), [
    pytest.param(3, None, {MIN_SCALE: "3", MAX_SCALE: "3"}, id="pin-at-3"),
    pytest.param(1, 10, {MIN_SCALE: "1", MAX_SCALE: "1"}, id="pin-at-1-below-user-max"),
    pytest.param(0, None, {MIN_SCALE: "0", MAX_SCALE: None}, id="zero-allowed-max-removed"),
    pytest.param(0, 10, {MIN_SCALE: "0", MAX_SCALE: "10"}, id="zero-allowed-user-max-restored"),
])
def test_desired_scale_annotations(replicas: int, user_max: int | None, expected: dict[str, str | None]) -> None:
    assert desired_scale_annotations(replicas, user_max) == expected


@pytest.mark.parametrize(("current", "desired", "expected"), [
    pytest.param({MIN_SCALE: "3", MAX_SCALE: "3", "other": "x"}, {MIN_SCALE: "3", MAX_SCALE: "3"}, {},
                 id="already-there-no-write"),
    pytest.param({MIN_SCALE: "2", MAX_SCALE: "3"}, {MIN_SCALE: "3", MAX_SCALE: "3"}, {MIN_SCALE: "3"},
                 id="only-the-changed-key"),
    pytest.param({MIN_SCALE: "2", MAX_SCALE: "2"}, {MIN_SCALE: "0", MAX_SCALE: None},
                 {MIN_SCALE: "0", MAX_SCALE: None}, id="remove-max-with-null"),
    pytest.param({MIN_SCALE: "0"}, {MIN_SCALE: "0", MAX_SCALE: None}, {}, id="absent-equals-removed"),
])
def test_annotation_patch(current: dict[str, str], desired: dict[str, str | None],
                          expected: dict[str, str | None]) -> None:
    assert annotation_patch(current, desired) == expected


def test_workload_of_routed_revision() -> None:
    svc = _svc([{"revisionName": "thumb-00002", "percent": 100}], "thumb-00002", {MAX_SCALE: "8"})
    rev = {"metadata": {"name": "thumb-00002", "namespace": "fns"}, "spec": {"containers": [{"image": "x"}]}}
    pa = {"metadata": {"name": "thumb-00002", "namespace": "fns"}, "status": {"desiredScale": 2}}
    w = workload_of(svc, rev, pa)
    assert (w.function, w.namespace, w.name, w.container) == ("thumb", "fns", "thumb-00002", "user-container")
    assert dict(w.pod_selector) == {"serving.knative.dev/revision": "thumb-00002"}
    assert (w.replicas, w.max_replicas) == (2, 8)
    assert workload_of(svc, rev, None).replicas is None


def test_template_max_scale_malformed_names_the_path() -> None:
    svc = _svc([{"revisionName": "thumb-00001", "percent": 100}], None, {MAX_SCALE: "many"})
    rev = {"metadata": {"name": "thumb-00001", "namespace": "fns"}, "spec": {"containers": [{"image": "x"}]}}
    with pytest.raises(KnativeObjectError, match=r"spec\.template\.metadata\.annotations"):
        workload_of(svc, rev, None)
