"""``casa dev-cluster up|down|status|register`` as a user runs it: one up/down cycle per module.

The cluster is started by the real command in a subprocess (so its processes really outlive the
command), checked through its kubeconfig, its extender and its Prometheus, then stopped by
``down``. Bad inputs are checked to fail with one stderr line before anything starts.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from casa_sched.devcluster.cluster import STATE_FILE, DevClusterState, load_state, proc_identity
from casa_sched.devcluster.controlplane import HarnessError, find_binaries, pod_manifest
from casa_sched.devcluster.kwok import find_kwok
from casa_sched.devcluster.prometheus import query, tools_missing, wait_for_value
from casa_sched.models.power import DEFAULT_NODE_CURVE, PowerCurve

pytestmark = [pytest.mark.k8s, pytest.mark.prometheus, pytest.mark.slow]

CASA = str(Path(sys.executable).with_name("casa"))
NODES = 3


def casa(*args: str, env: dict[str, str] | None = None, timeout_s: float = 300.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CASA, "dev-cluster", *args], capture_output=True, text=True, timeout=timeout_s,
                          env=env, check=False)  # fmt: skip


class Kube:
    """Raw API calls with the dev cluster's own kubeconfig (what a user's kubectl reads)."""

    def __init__(self, kubeconfig: Path):
        cfg = yaml.safe_load(kubeconfig.read_text())
        self.server = cfg["clusters"][0]["cluster"]["server"]
        self.ca = cfg["clusters"][0]["cluster"]["certificate-authority"]
        self.token = cfg["users"][0]["user"]["token"]

    def call(self, method: str, path: str, body: Any = None) -> Any:
        import ssl
        import urllib.request

        req = urllib.request.Request(f"{self.server}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=self.ca), timeout=10) as r:
            raw = r.read()
        return json.loads(raw) if raw.startswith(b"{") else raw.decode()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, DevClusterState, str]]:
    reason = tools_missing()
    if reason:
        pytest.fail(reason)
    try:  # fill the caches as the other k8s tests do (dev-cluster itself never builds)
        find_binaries(build=True)
        find_kwok(build=True)
    except HarnessError as exc:
        pytest.fail(f"no Kubernetes/KWOK binaries: {exc}")
    directory = tmp_path_factory.mktemp("dev-cluster")
    done = casa("up", "--nodes", str(NODES), "--dir", str(directory))
    state = load_state(directory)
    try:
        assert done.returncode == 0, done.stderr
        assert state is not None
        yield directory, state, done.stdout
    finally:
        if state is not None:
            casa("down", "--dir", str(directory))


def test_up_prints_kubeconfig_and_prometheus_url(cluster: tuple[Path, DevClusterState, str]) -> None:
    directory, state, stdout = cluster
    assert f"kubeconfig: {directory / 'admin.kubeconfig'}" in stdout.splitlines()
    assert f"prometheus: {state.prometheus_url}" in stdout.splitlines()
    assert [p.name for p in state.processes] == ["etcd", "kube-apiserver", "kube-controller-manager",
                                                 "casa-extender", "kube-scheduler", "kwok", "prometheus"]
    for p in state.processes:  # detached: the command that started them has exited
        assert proc_identity(p.pid) == (p.start_ticks, p.cmdline), p.name


def test_apiserver_answers_and_nodes_are_ready_with_the_default_node(
    cluster: tuple[Path, DevClusterState, str],
) -> None:
    _, state, _ = cluster
    kube = Kube(Path(state.kubeconfig))
    assert kube.call("GET", "/readyz") == "ok"
    nodes = kube.call("GET", "/api/v1/nodes")["items"]
    assert sorted(n["metadata"]["name"] for n in nodes) == sorted(state.nodes)
    assert len(nodes) == NODES
    for n in nodes:
        ready = {c["type"]: c["status"] for c in n["status"]["conditions"]}["Ready"]
        assert ready == "True"
        assert n["status"]["allocatable"]["cpu"] == str(DEFAULT_NODE_CURVE.cores)
        curve = PowerCurve.from_dict(json.loads(n["metadata"]["annotations"]["casa.dev/power-model"]))
        assert curve.coeffs == DEFAULT_NODE_CURVE.coeffs


def test_a_pod_is_scheduled_through_the_extender_and_prometheus_scrapes_it(
    cluster: tuple[Path, DevClusterState, str],
) -> None:
    _, state, _ = cluster
    kube = Kube(Path(state.kubeconfig))
    kube.call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t1"}})
    deadline = time.monotonic() + 60
    while True:  # pods need the namespace's default ServiceAccount
        try:
            kube.call("GET", "/api/v1/namespaces/t1/serviceaccounts/default")
            break
        except OSError:
            assert time.monotonic() < deadline, "no default ServiceAccount in t1"
            time.sleep(0.2)
    kube.call("POST", "/api/v1/namespaces/t1/pods", pod_manifest("p1", labels={"casa.dev/function": "f1"}))
    deadline = time.monotonic() + 60
    while not (pod := kube.call("GET", "/api/v1/namespaces/t1/pods/p1"))["spec"].get("nodeName"):
        assert time.monotonic() < deadline, "pod p1 was not scheduled"
        time.sleep(0.2)
    assert pod["spec"]["nodeName"] in state.nodes
    # the scheduler called the extender for it: both verbs answered 200 ...
    import urllib.request

    with urllib.request.urlopen(f"{state.extender_url}/metrics", timeout=5) as r:
        text = r.read().decode()
    assert 'casa_extender_requests_total{code="200",verb="filter"}' in text
    # ... and Prometheus scrapes the extender
    wait_for_value(state.prometheus_url, 'up{job="casa-extender"}', 1, "extender scraped")
    wait_for_value(state.prometheus_url, 'sum(casa_extender_requests_total{verb="filter",code="200"})', 1,
                   "extender's filter calls scraped")  # fmt: skip


def test_register_adds_a_scrape_target(cluster: tuple[Path, DevClusterState, str]) -> None:
    directory, state, _ = cluster

    class Metrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"casa_test_registered_value 42\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        done = casa("register", "probe", f"127.0.0.1:{server.server_address[1]}", "--dir", str(directory))
        assert done.returncode == 0, done.stderr
        wait_for_value(state.prometheus_url, 'casa_test_registered_value{job="probe"}', 42, "registered target")
    finally:
        server.shutdown()
        server.server_close()
    bad = casa("register", "probe", "no-port", "--dir", str(directory))
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1
    assert "host:port" in bad.stderr


def test_status_json_reports_every_process_up(cluster: tuple[Path, DevClusterState, str]) -> None:
    directory, state, _ = cluster
    done = casa("status", "--json", "--dir", str(directory))
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["up"] is True
    assert [(p["name"], p["pid"], p["up"]) for p in doc["processes"]] == [(p.name, p.pid, True)
                                                                          for p in state.processes]
    assert doc["prometheus_url"] == state.prometheus_url


def test_second_up_in_the_same_dir_is_refused(cluster: tuple[Path, DevClusterState, str]) -> None:
    directory, state, _ = cluster
    done = casa("up", "--dir", str(directory))
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1
    assert "already up" in done.stderr
    assert load_state(directory) == state  # untouched


def test_down_stops_every_recorded_process_then_status_reports_down(
    cluster: tuple[Path, DevClusterState, str],
) -> None:
    """Last in the module: it ends the cycle."""
    directory, state, _ = cluster
    done = casa("down", "--dir", str(directory))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"{p.name}: stopped" for p in reversed(state.processes)]
    for p in state.processes:
        assert proc_identity(p.pid) != (p.start_ticks, p.cmdline), f"{p.name} (pid {p.pid}) still runs"
    assert query(state.prometheus_url, "up") == []  # nothing answers any more
    status = casa("status", "--dir", str(directory))
    assert status.returncode == 3
    assert all(line.split()[-1] == "down" for line in status.stdout.splitlines()[: len(state.processes)])
    again = casa("down", "--dir", str(directory))
    assert again.returncode == 0
    assert all(line.endswith(": was down") for line in again.stdout.splitlines())


# -- without a cluster: identity checks and bad inputs --------------------------------------------


def test_down_never_signals_a_pid_whose_identity_changed(tmp_path: Path) -> None:
    """A recorded pid now running something else (other start time or command line) is left alone."""
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        ident = proc_identity(sleeper.pid)
        assert ident is not None
        state: dict[str, Any] = {
            "version": 1, "dir": str(tmp_path), "boot_id": Path("/proc/sys/kernel/random/boot_id").read_text().strip(),
            "created_at": "", "kubeconfig": "", "api_server": "", "prometheus_url": "", "extender_url": "", "nodes": [],
        }  # fmt: skip
        state["processes"] = [
            {"name": "reused-start", "pid": sleeper.pid, "start_ticks": ident[0] - 1, "cmdline": list(ident[1]),
             "started_at": "", "log": ""},
            {"name": "reused-cmdline", "pid": sleeper.pid, "start_ticks": ident[0], "cmdline": ["etcd"],
             "started_at": "", "log": ""},
        ]  # fmt: skip
        (tmp_path / STATE_FILE).write_text(json.dumps(state))
        done = casa("down", "--dir", str(tmp_path))
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["reused-cmdline: was down", "reused-start: was down"]
        assert sleeper.poll() is None, "down killed a process it did not start"
        status = casa("status", "--dir", str(tmp_path))
        assert status.returncode == 3
    finally:
        sleeper.kill()
        sleeper.wait()


def _one_line(done: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert done.returncode == code, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.mark.parametrize(("args", "code", "words"), [
    (("--nodes", "0"), 2, ("--nodes 0", "1 to 1000")),
    (("--nodes", "1001"), 2, ("--nodes 1001",)),
    (("--nodes", "two"), 2, ("--nodes",)),
])  # fmt: skip
def test_bad_node_count(tmp_path: Path, args: tuple[str, ...], code: int, words: tuple[str, ...]) -> None:
    _one_line(casa("up", *args, "--dir", str(tmp_path / "c")), code, *words)
    assert not (tmp_path / "c").exists()


def test_unusable_dir(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    _one_line(casa("up", "--dir", str(a_file)), 2, "--dir", "not a directory")
    _one_line(casa("up", "--dir", str(a_file / "sub")), 2, "--dir", "not writable")


def test_missing_binaries_fail_before_anything_starts(tmp_path: Path) -> None:
    env = {**os.environ, "KUBEBUILDER_ASSETS": "", "CASA_K8S_CACHE": str(tmp_path / "no-cache")}
    _one_line(casa("up", "--dir", str(tmp_path / "c"), env=env), 1, "Kubernetes binaries not found", "make k8s-bins")
    env = {**os.environ, "CASA_KWOK_BIN": str(tmp_path / "no-kwok")}
    _one_line(casa("up", "--dir", str(tmp_path / "c"), env=env), 1, "CASA_KWOK_BIN")
    assert not (tmp_path / "c").exists()


def test_status_and_down_without_a_cluster(tmp_path: Path) -> None:
    _one_line(casa("status", "--dir", str(tmp_path)), 1, "no dev cluster")
    _one_line(casa("down", "--dir", str(tmp_path)), 1, "no dev cluster")
    (tmp_path / STATE_FILE).write_text("{not json")
    _one_line(casa("status", "--dir", str(tmp_path)), 1, "not a dev-cluster state file")
