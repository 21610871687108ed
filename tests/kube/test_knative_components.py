"""Knative Serving's real controller and autoscaler (release 1.15.2, built by hack/build-knative.sh)
against the local control plane: the adapter's min/max-scale → the PodAutoscaler → the real KPA
→ the Deployment's ``spec.replicas``.

What runs and what does not:

- No webhook (it needs TLS serving certificates and admission registration): the Service is
  written already defaulted (container name, ``autoscaling.knative.dev/class``), as the
  webhook would leave it. No activator, no ingress, no kubelet: the Revision's pods never run,
  so the Revision never becomes Ready, the Route never routes it, and ``discover`` rightly
  returns nothing (min-scale applies only to routed Revisions). The test scales the Revision's
  workload directly, which is what ``scale`` does for a discovered one.
- Knative's controller (health probes) and autoscaler (stats server) both listen on a fixed
  ``:8080``, so they cannot run at once on one host. They run in turns, each until the state
  it is responsible for appears: controller (Revision, Deployment, PodAutoscaler) → autoscaler
  (ServerlessService) → controller (its private Service) → autoscaler (the scale).
- The autoscaler publishes its own address (``POD_IP``) in an Endpoints object, which rejects
  loopback; it gets 192.0.2.1 (TEST-NET-1, RFC 5737). Nothing dials it: the process holds the
  only bucket, and an owner never forwards to itself (statforwarder ``leaseUpdated``).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from casa_sched.autoscaler.adapters.base import Workload
from casa_sched.autoscaler.adapters.knative import MAX_SCALE, MIN_SCALE, KnativeAdapter
from casa_sched.devcluster.controlplane import ControlPlane, HarnessError, Process, free_port

from .knative_support import RELEASE_OF, install_serving, knative_dir, serving_path

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

VERSION = "v0.42.2"  # release 1.15.2: min/max-scale on the PodAutoscaler
DIGEST = "@sha256:" + "1" * 64  # digests skip the controller's tag-to-digest registry lookup
NS = "fns"
PA = serving_path(NS, "podautoscalers", "thumb-00001", group="autoscaling.internal.knative.dev/v1alpha1")
DEPLOYMENT = f"/apis/apps/v1/namespaces/{NS}/deployments/thumb-00001-deployment"
SKS = serving_path(NS, "serverlessservices", "thumb-00001", group="networking.internal.knative.dev/v1alpha1")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("0.0.0.0", port))  # all interfaces: what Knative's binaries bind
        except OSError:
            return False
    return True


class Knative:
    """The release's binaries, run in turns against one plane."""

    def __init__(self, cp: ControlPlane, home: Path, workdir: Path) -> None:
        self.cp, self.home, self.workdir, self.turns = cp, home, workdir, 0

    def run_until(self, binary: str, what: str, done: Callable[[], bool], timeout_s: float = 120.0) -> None:
        self.turns += 1
        env = dict(self.cp.env(), SYSTEM_NAMESPACE="knative-serving", CONFIG_LOGGING_NAME="config-logging",
                   CONFIG_OBSERVABILITY_NAME="config-observability", METRICS_DOMAIN="knative.dev/internal/serving",
                   POD_NAME=f"{binary}-{self.turns}", POD_IP="192.0.2.1", PROFILING_PORT=str(free_port()),
                   METRICS_PROMETHEUS_PORT=str(free_port()))  # fmt: skip
        proc = Process(f"knative-{binary}-{self.turns}", [str(self.home / "bin" / binary),
                       f"--kubeconfig={self.cp.kubeconfig}"], self.workdir, env=env)  # fmt: skip
        try:
            deadline = time.monotonic() + timeout_s
            while not done():
                if not proc.alive():
                    pytest.fail(f"Knative {binary} exited ({proc.popen.returncode}) before {what}:\n{proc.log_tail()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"Knative {binary}: no {what} after {timeout_s:.0f} s:\n{proc.log_tail()}")
                time.sleep(0.3)
        finally:
            proc.stop()


def _get(cp: ControlPlane, path: str) -> Any:
    return cp._get_or_none(path)


@pytest.fixture(scope="module")
def knative(tmp_path_factory: pytest.TempPathFactory, k8s_bin_dir: Path) -> Iterator[Knative]:
    if not _port_free(8080):
        pytest.fail("port 8080 is taken on this host; Knative's controller and autoscaler listen on a fixed :8080")
    try:
        home = knative_dir(VERSION, build=True)
        cp = ControlPlane.start(tmp_path_factory.mktemp("kn-real"), bin_dir=k8s_bin_dir, scheduler=False)
    except HarnessError as exc:
        pytest.fail(f"Knative {VERSION}: {exc}")
    try:
        install_serving(cp, home / "config", RELEASE_OF[VERSION])
        cp.request("PATCH", "/api/v1/namespaces/knative-serving/configmaps/config-deployment",
                   {"data": {"queue-sidecar-image": "queue.invalid/queue" + DIGEST}},
                   content_type="application/merge-patch+json")  # fmt: skip
        cp.create_namespace(NS)
        yield Knative(cp, home, tmp_path_factory.mktemp("kn-logs"))
    finally:
        cp.stop()


def test_min_max_scale_on_the_podautoscaler_drives_the_deployment(knative: Knative) -> None:
    cp = knative.cp
    cp.request("POST", serving_path(NS, "services"), {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "thumb", "namespace": NS},
        "spec": {"template": {
            "metadata": {"annotations": {"autoscaling.knative.dev/class": "kpa.autoscaling.knative.dev",
                                         "autoscaling.knative.dev/metric": "concurrency"}},
            "spec": {"containerConcurrency": 0, "timeoutSeconds": 300, "containers": [
                {"name": "user-container", "image": "fn.invalid/thumb" + DIGEST, "ports": [{"containerPort": 8080}]}]},
        }}})  # fmt: skip
    knative.run_until("controller", "Revision, Deployment and PodAutoscaler",
                      lambda: _get(cp, DEPLOYMENT) is not None and _get(cp, PA) is not None)
    knative.run_until("autoscaler", "ServerlessService", lambda: _get(cp, SKS) is not None)
    knative.run_until("controller", "SKS private service",
                      lambda: bool(((_get(cp, SKS) or {}).get("status") or {}).get("privateServiceName")))

    adapter = KnativeAdapter(cp.api_client(), namespaces=[NS])
    assert str(adapter.release) == "v1.15.2"
    assert adapter.discover() == []  # not routed: no pod runs here, so the Revision is never Ready
    workload = Workload(function="thumb", platform="knative", namespace=NS, name="thumb-00001",
                        container="user-container",
                        pod_selector=MappingProxyType({"serving.knative.dev/revision": "thumb-00001"}))
    assert _get(cp, DEPLOYMENT)["spec"]["replicas"] == 1  # the revision's initial scale

    assert adapter.scale(workload, 3) is True
    knative.run_until("autoscaler", "Deployment at 3 replicas", lambda: _get(cp, DEPLOYMENT)["spec"]["replicas"] == 3)
    assert _get(cp, PA)["status"]["desiredScale"] == 3

    # The 1.15 Revision reconciler replaces the PA's spec but keeps its annotations.
    knative.run_until("controller", "a Revision reconcile",
                      lambda: _get(cp, serving_path(NS, "revisions", "thumb-00001")).get("status", {})
                      .get("observedGeneration") == 1)  # fmt: skip
    ann = _get(cp, PA)["metadata"]["annotations"]
    assert (ann[MIN_SCALE], ann[MAX_SCALE]) == ("3", "3")
    assert adapter.scale(workload, 3) is False

    assert adapter.scale(workload, 2) is True
    knative.run_until("autoscaler", "Deployment at 2 replicas", lambda: _get(cp, DEPLOYMENT)["spec"]["replicas"] == 2)
