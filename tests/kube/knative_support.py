"""Knative Serving objects on the local control plane: the release's real CRDs and ConfigMaps.

The CRDs come from the ``knative.dev/serving`` module of the release under test
(``config/core/300-resources``), fetched by ``hack/build-knative.sh`` into
``~/.cache/casa-sched/knative/<module version>/config``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from casa_sched.devcluster.controlplane import REPO_ROOT, ControlPlane, HarnessError

BUILD_SCRIPT = REPO_ROOT / "hack" / "build-knative.sh"
CRD_NAMES = ("services", "configurations", "revisions", "routes")
SERVING_CRDS = (*(f"{p}.serving.knative.dev" for p in CRD_NAMES), "podautoscalers.autoscaling.internal.knative.dev")
# module version -> the Knative release it is (same tree as the knative-v1.x git tag)
RELEASE_OF = {"v0.42.2": "1.15.2", "v0.51.0": "1.24.0"}


def knative_dir(version: str, *, build: bool) -> Path:
    """``<cache>/<version>`` with ``config/`` (and ``bin/`` when ``build``), made by the script."""
    env = dict(os.environ, CASA_KNATIVE_VERSION=version)
    argv = ["bash", str(BUILD_SCRIPT)] + ([] if build else ["--config-only"])
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise HarnessError(f"{BUILD_SCRIPT} {' '.join(argv[2:])} ({version}) failed:\n{result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def install_serving(cp: ControlPlane, config_dir: Path, release: str) -> None:
    """The release's CRDs, the knative-serving namespace with its ConfigMaps, and a ``controller``
    Deployment labelled with the release (0 replicas: only its labels are read here)."""
    if cp._get_or_none("/api/v1/namespaces/knative-serving") is None:
        cp.create_namespace("knative-serving")
    cp.kubectl("apply", "--server-side", "-f", str(config_dir))
    for crd in SERVING_CRDS:
        cp.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd}")
    controller = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "controller", "namespace": "knative-serving",
                     "labels": {"app.kubernetes.io/name": "knative-serving", "app.kubernetes.io/version": release}},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "controller"}},
                 "template": {"metadata": {"labels": {"app": "controller"}},
                              "spec": {"containers": [{"name": "controller", "image": "controller.invalid/x"}]}}},
    }
    if cp._get_or_none("/apis/apps/v1/namespaces/knative-serving/deployments/controller") is None:
        cp.request("POST", "/apis/apps/v1/namespaces/knative-serving/deployments", controller)


def serving_path(namespace: str, plural: str, name: str = "", group: str = "serving.knative.dev/v1") -> str:
    return f"/apis/{group}/namespaces/{namespace}/{plural}" + (f"/{name}" if name else "")


def create_with_status(cp: ControlPlane, path: str, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    """Create a custom object, then write its ``status`` through the subresource (as a controller would)."""
    created: dict[str, Any] = cp.request("POST", path, obj)
    created["status"] = status
    name = created["metadata"]["name"]
    updated: dict[str, Any] = cp.request("PUT", f"{path}/{name}/status", created)
    return updated
