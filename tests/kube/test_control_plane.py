"""The local control plane itself, and how the real kube-scheduler treats an extender.

Uses a stub extender (no casa code) on the port the session scheduler is configured with, so
these tests pin the scheduler side of the contract the casa extender relies on.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from casa_sched.devcluster.controlplane import (
    DEFAULT_K8S_VERSION,
    ControlPlane,
    bound_nodes,
    pod_manifest,
    wait_bound,
)
from casa_sched.devcluster.stub_extender import StubExtender

pytestmark = pytest.mark.k8s


def _extender_port(cp: ControlPlane) -> int:
    assert cp.extender is not None
    port = urlsplit(cp.extender.url_prefix).port
    assert port is not None
    return port


def test_version_is_stamped(k8s_control_plane: ControlPlane) -> None:
    version = k8s_control_plane.request("GET", "/version")
    expected = os.environ.get("CASA_K8S_VERSION", DEFAULT_K8S_VERSION)
    if not os.environ.get("KUBEBUILDER_ASSETS"):
        assert version["gitVersion"] == expected
    assert version["major"] == "1"
    assert int(version["minor"]) >= 34
    out = k8s_control_plane.kubectl("version", "-o", "json").stdout
    assert f'"gitVersion": "{version["gitVersion"]}"' in out


def _listening_addresses(pid: int) -> list[str]:
    """Local addresses of the TCP sockets in LISTEN state owned by ``pid`` (IPv4 and IPv6)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A = LISTEN
                found.append(cols[1])
    return found


def test_nothing_listens_beyond_loopback(k8s_control_plane: ControlPlane) -> None:
    loopback = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1
    for name, proc in k8s_control_plane.processes.items():
        addrs = _listening_addresses(proc.pid)
        assert addrs, f"{name} listens nowhere?"
        bad = [a for a in addrs if a.split(":")[0] not in loopback]
        assert not bad, f"{name} (pid {proc.pid}) listens beyond loopback: {bad}"


def test_node_is_ready_untainted_and_schedulable(k8s_control_plane: ControlPlane, k8s_nodes, k8s_namespace) -> None:
    node = k8s_nodes("cp-n1", cpu="4", memory="8Gi", pods=20)
    assert node["status"]["allocatable"]["pods"] == "20"
    got = k8s_control_plane.request("GET", "/api/v1/nodes/cp-n1")
    assert not got["spec"].get("taints")
    ready = [c for c in got["status"]["conditions"] if c["type"] == "Ready"]
    assert ready
    assert ready[0]["status"] == "True"
    k8s_control_plane.request("POST", f"/api/v1/namespaces/{k8s_namespace}/pods", pod_manifest("p1"))
    assert wait_bound(k8s_control_plane, k8s_namespace, ["p1"]) == {"p1": "cp-n1"}


def test_ignorable_extender_down_pods_still_schedule(k8s_control_plane: ControlPlane, k8s_nodes,
                                                     k8s_namespace) -> None:
    """Nothing listens on the extender port: with ignorable: true every pod still schedules."""
    for n in ("ign-a", "ign-b"):
        k8s_nodes(n)
    pods = [pod_manifest("fn-1", labels={"casa.dev/function": "f"}), pod_manifest("plain-1")]
    for p in pods:
        k8s_control_plane.request("POST", f"/api/v1/namespaces/{k8s_namespace}/pods", p)
    got = wait_bound(k8s_control_plane, k8s_namespace, ["fn-1", "plain-1"], timeout_s=30)
    assert set(got.values()) <= {"ign-a", "ign-b"}
    assert "Skipping extender" in (Path(k8s_control_plane.log_dir) / "kube-scheduler.log").read_text()


def test_ignorable_extender_timeout_and_errors(k8s_control_plane: ControlPlane, k8s_nodes, k8s_namespace) -> None:
    """An extender slower than httpTimeout (1 s), or answering 500, does not block scheduling."""
    k8s_nodes("slow-a")
    with StubExtender(_extender_port(k8s_control_plane)) as stub:
        stub.delay_s = 2.5
        k8s_control_plane.request("POST", f"/api/v1/namespaces/{k8s_namespace}/pods", pod_manifest("slow-1"))
        assert wait_bound(k8s_control_plane, k8s_namespace, ["slow-1"], timeout_s=30) == {"slow-1": "slow-a"}
        stub.delay_s = 0
        stub.status = 500
        k8s_control_plane.request("POST", f"/api/v1/namespaces/{k8s_namespace}/pods", pod_manifest("err-1"))
        assert wait_bound(k8s_control_plane, k8s_namespace, ["err-1"], timeout_s=30) == {"err-1": "slow-a"}
        assert "filter" in stub.verbs()


def test_scheduler_calls_extender_with_node_names(k8s_control_plane: ControlPlane, k8s_nodes,
                                                  k8s_namespace) -> None:
    """Wire format with nodeCacheCapable: capitalised keys, NodeNames only; the filter decides."""
    for n in ("wire-a", "wire-b", "wire-c"):
        k8s_nodes(n)
    with StubExtender(_extender_port(k8s_control_plane)) as stub:
        stub.allow = {"wire-c"}
        for i in range(3):
            k8s_control_plane.request("POST", f"/api/v1/namespaces/{k8s_namespace}/pods",
                                      pod_manifest(f"w{i}", labels={"casa.dev/function": "wf"}))
        got = wait_bound(k8s_control_plane, k8s_namespace, ["w0", "w1", "w2"], timeout_s=30)
        assert set(got.values()) == {"wire-c"}
        filters = [body for verb, body in stub.calls if verb == "filter"]
        assert filters, stub.calls
        body = next(b for b in filters if b["Pod"]["metadata"]["name"] == "w0")
        assert set(body) >= {"Pod", "NodeNames"}
        assert body.get("Nodes") is None
        assert {"wire-a", "wire-b", "wire-c"} <= set(body["NodeNames"])
        assert body["Pod"]["metadata"]["labels"] == {"casa.dev/function": "wf"}
        # Only nodes that passed the filter are prioritised (a single node skips prioritize).
        assert all(set(b["NodeNames"]) <= {"wire-c"} for v, b in stub.calls if v == "prioritize")


def test_filter_rejection_leaves_pod_pending(k8s_control_plane: ControlPlane, k8s_nodes, k8s_namespace) -> None:
    """A reachable extender that rejects every node keeps the pod unscheduled (ignorable only
    covers errors, not answers)."""
    k8s_nodes("rej-a")
    with StubExtender(_extender_port(k8s_control_plane)) as stub:
        stub.allow = set()
        k8s_control_plane.request("POST", f"/api/v1/namespaces/{k8s_namespace}/pods", pod_manifest("r1"))
        k8s_control_plane.wait_for("a filter call for r1", lambda: "filter" in stub.verbs(), 30)

        def unschedulable() -> bool:
            pod = k8s_control_plane.request("GET", f"/api/v1/namespaces/{k8s_namespace}/pods/r1")
            conds = {c["type"]: c for c in pod["status"].get("conditions", [])}
            return bool(conds.get("PodScheduled", {}).get("reason") == "Unschedulable")

        k8s_control_plane.wait_for("r1 Unschedulable", unschedulable, 30)
        assert bound_nodes(k8s_control_plane, k8s_namespace, ["r1"]) == {"r1": None}


def test_second_scheduler_profile_with_extender(k8s_control_plane: ControlPlane, k8s_nodes, k8s_namespace,
                                                tmp_path: Path) -> None:
    """The shipped second-scheduler variant: its own kube-scheduler process, profile
    casa-scheduler, extender attached; only pods naming that scheduler go through it."""
    import yaml

    from casa_sched.devcluster.controlplane import REPO_ROOT, ExtenderSpec, free_port

    cp = k8s_control_plane
    shipped = yaml.safe_load((REPO_ROOT / "manifests/second-scheduler/kube-scheduler-config.yaml").read_text())
    (profile,) = shipped["profiles"]
    (ext,) = shipped["extenders"]
    port = free_port()
    spec = ExtenderSpec(url_prefix=f"http://127.0.0.1:{port}", weight=ext["weight"],
                        node_cache_capable=ext["nodeCacheCapable"], ignorable=ext["ignorable"],
                        http_timeout=ext["httpTimeout"])
    for n in ("two-a", "two-b"):
        k8s_nodes(n)
    with StubExtender(port) as stub:
        stub.allow = {"two-b"}
        cp.start_scheduler(spec, [profile["schedulerName"]], name="casa-scheduler")
        try:
            for i in range(2):
                pod = pod_manifest(f"s{i}", labels={"casa.dev/function": "sf"}, scheduler_name="casa-scheduler",
                                   only_on_nodes=["two-a", "two-b"])
                cp.request("POST", f"/api/v1/namespaces/{k8s_namespace}/pods", pod)
            assert wait_bound(cp, k8s_namespace, ["s0", "s1"]) == {"s0": "two-b", "s1": "two-b"}
            names = {b["Pod"]["metadata"]["name"] for v, b in stub.calls if v == "filter"}
            assert names == {"s0", "s1"}
        finally:
            cp.stop_scheduler("casa-scheduler")
