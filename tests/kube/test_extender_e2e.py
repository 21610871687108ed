"""End to end: the real kube-scheduler calls the real ``casa extender``, which
reads the plan from the ConfigMap casa-system/casa-plan and the pods/nodes from the API.

Contract used (docs/architecture.md): ``casa extender --host H --port P --kubeconfig K`` serves
POST /filter, /prioritize and GET /readyz; function pods carry ``casa.dev/function``; while some
feasible node has a free planned slot for the pod's function, only such nodes are kept; the plan
is a preference, never a reason to leave a pod pending; other pods pass through untouched.
Skipped (loudly) while ``casa extender`` does not exist.
"""

from __future__ import annotations

import contextlib
import secrets
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from casa_sched.contract.plan import Container, Plan
from casa_sched.conventions import FUNCTION_LABEL, NAMESPACE, PLAN_CONFIGMAP_KEY, PLAN_CONFIGMAP_NAME
from casa_sched.devcluster.controlplane import REPO_ROOT, ControlPlane, bound_nodes, pod_manifest, wait_bound

pytestmark = pytest.mark.k8s


def _publish(cp: ControlPlane, containers: dict[str, list[str]]) -> Plan:
    plan = Plan(epoch=1, containers={f: tuple(Container(n) for n in nodes) for f, nodes in containers.items()},
                epoch_start=datetime.now(UTC), epoch_length_s=3600.0)
    cp.apply_configmap(NAMESPACE, PLAN_CONFIGMAP_NAME, {PLAN_CONFIGMAP_KEY: plan.to_json()})
    return plan


def _names(prefix: str, *suffixes: str) -> list[str]:
    return [f"{prefix}-{s}" for s in suffixes]


def _create(cp: ControlPlane, ns: str, pod: dict[str, Any]) -> None:
    cp.request("POST", f"/api/v1/namespaces/{ns}/pods", pod)


def test_function_pods_follow_plan_other_pods_unaffected(k8s_control_plane: ControlPlane, k8s_nodes,
                                                         k8s_namespace, casa_extender) -> None:
    cp = k8s_control_plane
    a, b, c = _names(f"e2e{secrets.token_hex(2)}", "a", "b", "c")
    for n in (a, b, c):
        k8s_nodes(n, cpu="16", memory="32Gi")
    fn = f"fa-{secrets.token_hex(2)}"
    _publish(cp, {fn: [b, b, c]})
    casa_extender()

    for i in range(3):
        _create(cp, k8s_namespace, pod_manifest(f"fn-{i}", labels={FUNCTION_LABEL: fn}))
    got = wait_bound(cp, k8s_namespace, ["fn-0", "fn-1", "fn-2"], timeout_s=60)
    assert Counter(got.values()) == Counter({b: 2, c: 1}), got

    # A pod of no function may go anywhere, including a node outside every plan.
    _create(cp, k8s_namespace, pod_manifest("plain-on-a", only_on_nodes=[a]))
    for i in range(4):
        _create(cp, k8s_namespace, pod_manifest(f"plain-{i}"))
    plain = wait_bound(cp, k8s_namespace, ["plain-on-a", *(f"plain-{i}" for i in range(4))], timeout_s=60)
    assert plain["plain-on-a"] == a


def test_plan_is_a_preference_never_a_reason_to_stay_pending(k8s_control_plane: ControlPlane, k8s_nodes,
                                                             k8s_namespace, casa_extender) -> None:
    """A function pod that may only run where the plan has no slot for it (its own node
    affinity) still schedules: the extender keeps every feasible node when no planned slot is
    among them (casa_sched/extender/decide.py)."""
    cp = k8s_control_plane
    a, b = _names(f"off{secrets.token_hex(2)}", "a", "b")
    for n in (a, b):
        k8s_nodes(n)
    fn = f"fo-{secrets.token_hex(2)}"
    _publish(cp, {fn: [b]})
    casa_extender()
    _create(cp, k8s_namespace, pod_manifest("only-a", labels={FUNCTION_LABEL: fn}, only_on_nodes=[a]))
    _create(cp, k8s_namespace, pod_manifest("free", labels={FUNCTION_LABEL: fn}))
    assert wait_bound(cp, k8s_namespace, ["only-a", "free"], timeout_s=30) == {"only-a": a, "free": b}


@contextlib.contextmanager
def _scheduler_paused(cp: ControlPlane) -> Iterator[None]:
    """Stop the session's kube-scheduler, run the block, start it again: pods created in the
    block wait in one queue and are then scheduled back to back (each pod's scheduling cycle
    starts before the previous binding can reach the extender's watch)."""
    extender = cp.extender
    cp.stop_scheduler()
    try:
        yield
    finally:
        cp.start_scheduler(extender)


def test_two_pods_created_together_take_one_slot_each(k8s_control_plane: ControlPlane, k8s_nodes,
                                                      k8s_namespace, casa_extender) -> None:
    """Two pods of one function, pending together, one planned slot on each of two nodes: only
    the extender's bookkeeping of the pods it answered for (not yet bound) keeps them apart."""
    cp = k8s_control_plane
    a, b, c = _names(f"two{secrets.token_hex(2)}", "a", "b", "c")
    for n in (a, b, c):
        k8s_nodes(n, cpu="16", memory="32Gi")
    fn = f"f2-{secrets.token_hex(2)}"
    _publish(cp, {fn: [a, b]})
    casa_extender()
    with _scheduler_paused(cp):
        for i in range(2):
            _create(cp, k8s_namespace, pod_manifest(f"p{i}", labels={FUNCTION_LABEL: fn}))
    got = wait_bound(cp, k8s_namespace, ["p0", "p1"], timeout_s=30)
    assert sorted(got.values()) == [a, b], got


@pytest.mark.parametrize("paused", [False, True], ids=["live", "queued"])
def test_replicas_created_together_do_not_overfill_planned_slots(k8s_control_plane: ControlPlane, k8s_nodes,
                                                                 k8s_namespace, casa_extender, paused: bool) -> None:
    """A Deployment's 4 replicas against slots a:1, b:2, c:1, created while the scheduler runs
    (live) or queued while it is stopped. kube-scheduler's own scores (PodTopologySpread spreads
    one ReplicaSet's pods) differ from the extender's, so its bookkeeping must not guess."""
    cp = k8s_control_plane
    a, b, c = _names(f"tg{secrets.token_hex(2)}", "a", "b", "c")
    for n in (a, b, c):
        k8s_nodes(n, cpu="16", memory="32Gi")
    fn = f"fb-{secrets.token_hex(2)}"
    _publish(cp, {fn: [a, b, b, c]})
    casa_extender()
    labels = {FUNCTION_LABEL: fn, "app": fn}
    template = pod_manifest("unused", labels=labels)
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": fn},
        "spec": {"replicas": 4, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": template["spec"]}},
    }
    with _scheduler_paused(cp) if paused else contextlib.nullcontext():
        cp.request("POST", f"/apis/apps/v1/namespaces/{k8s_namespace}/deployments", deployment)
        cp.wait_for("4 pods created", lambda: len(bound_nodes(cp, k8s_namespace)) == 4, 30)

    placed: dict[str, str | None] = {}

    def four_bound() -> bool:
        placed.clear()
        placed.update(bound_nodes(cp, k8s_namespace))
        return len(placed) == 4 and all(placed.values())

    cp.wait_for("4 replicas bound", four_bound, 60)
    assert Counter(placed.values()) == Counter({a: 1, b: 2, c: 1}), placed


def test_extender_stopped_pods_still_schedule(k8s_control_plane: ControlPlane, k8s_nodes, k8s_namespace,
                                              casa_extender) -> None:
    cp = k8s_control_plane
    (a,) = _names(f"stop{secrets.token_hex(2)}", "a")
    k8s_nodes(a)
    fn = f"fs-{secrets.token_hex(2)}"
    _publish(cp, {fn: [a]})
    proc = casa_extender()
    _create(cp, k8s_namespace, pod_manifest("before", labels={FUNCTION_LABEL: fn}))
    assert wait_bound(cp, k8s_namespace, ["before"]) == {"before": a}
    proc.stop()
    # The plan's only slot is taken and the extender is gone: ignorable, so the pod schedules.
    _create(cp, k8s_namespace, pod_manifest("after", labels={FUNCTION_LABEL: fn}))
    _create(cp, k8s_namespace, pod_manifest("plain-after"))
    assert wait_bound(cp, k8s_namespace, ["after", "plain-after"], timeout_s=30) == {"after": a, "plain-after": a}


def test_extender_runs_with_the_manifests_least_privilege_rbac(k8s_control_plane: ControlPlane, k8s_nodes,
                                                                k8s_namespace, casa_extender, tmp_path: Path) -> None:
    """The real extender, authenticated as the casa-extender ServiceAccount with exactly the
    rules of manifests/extender/rbac.yaml, loads the plan and steers pods."""
    cp = k8s_control_plane
    a, b = _names(f"rbac{secrets.token_hex(2)}", "a", "b")
    for n in (a, b):
        k8s_nodes(n)
    fn = f"fr-{secrets.token_hex(2)}"
    _publish(cp, {fn: [b, b]})  # also creates the namespace casa-system
    cp.kubectl("apply", "--server-side", "-f", str(REPO_ROOT / "manifests" / "extender" / "rbac.yaml"))
    kubeconfig = cp.service_account_kubeconfig(NAMESPACE, "casa-extender", tmp_path / "sa.kubeconfig")
    proc = casa_extender(kubeconfig=kubeconfig)
    for i in range(2):
        _create(cp, k8s_namespace, pod_manifest(f"r{i}", labels={FUNCTION_LABEL: fn}))
    assert wait_bound(cp, k8s_namespace, ["r0", "r1"]) == {"r0": b, "r1": b}
    log = proc.log_tail(200_000)
    assert "403" not in log
    assert "forbidden" not in log.lower()


def test_scheduler_calls_the_extender_over_https(k8s_control_plane: ControlPlane, k8s_nodes, k8s_namespace,
                                                 tmp_path: Path) -> None:
    """``casa extender --tls-cert-file --tls-key-file`` and a scheduler entry with
    ``enableHTTPS: true`` and ``tlsConfig.caData`` (as manifests/scheduler/kube-scheduler-config-https.yaml):
    the real kube-scheduler verifies the certificate, calls the verbs and follows the plan."""
    import ssl
    import subprocess
    import sys
    import time

    import httpx

    from casa_sched.devcluster.controlplane import ExtenderSpec, Process, free_port

    cp = k8s_control_plane
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "1", "-keyout", str(key), "-out", str(cert), "-subj", "/CN=casa-extender",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    a, b, c = _names(f"tls{secrets.token_hex(2)}", "a", "b", "c")
    for n in (a, b, c):
        k8s_nodes(n, cpu="16", memory="32Gi")
    fn = f"ft-{secrets.token_hex(2)}"
    _publish(cp, {fn: [b]})
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    argv = [str(Path(sys.executable).parent / "casa"), "extender", "--host", "127.0.0.1", "--port", str(port),
            "--kubeconfig", str(cp.kubeconfig), "--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    proc = Process(f"casa-extender-tls-{port}", argv, tmp_path, env=cp.env())
    session = cp.extender
    trust = ssl.create_default_context(cafile=str(cert))
    try:
        with httpx.Client(verify=trust, timeout=2) as client:
            deadline = time.monotonic() + 30
            while True:
                assert proc.alive(), proc.log_tail()
                try:
                    if client.get(f"{url}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, proc.log_tail()
                time.sleep(0.2)
            cp.restart_scheduler(ExtenderSpec(url_prefix=url, ca_pem=cert.read_bytes()))
            _create(cp, k8s_namespace, pod_manifest("over-tls", labels={FUNCTION_LABEL: fn}))
            assert wait_bound(cp, k8s_namespace, ["over-tls"], timeout_s=60) == {"over-tls": b}
            metrics = client.get(f"{url}/metrics").text
        assert 'casa_extender_requests_total{code="200",verb="filter"}' in metrics
    finally:
        cp.restart_scheduler(session)
        proc.stop()
