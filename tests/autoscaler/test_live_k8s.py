"""``casa autoscaler`` against a real control plane: kube-apiserver, controller-manager and
kube-scheduler with ``casa extender`` attached, and KWOK nodes whose pods run and report in-place
resizes (one plane for the whole module; the tests run in order and build on each other).

Two Deployment functions on two 16-core nodes; the metrics file gives their load. One epoch
plans with CASA, stores the plan in casa-system/casa-plan, sets replica counts; the real
kube-scheduler, asking the real extender, binds the pods where the plan put them, and the
running pods are resized in place to their planned sizes. A dry run writes nothing, running the
applied epoch again makes no write call, intra-epoch growth stops at a full node, and a standby
takes over when the leader is SIGKILLed; SIGTERM releases the Lease.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from casa_sched.contract.plan import Plan
from casa_sched.conventions import FUNCTION_LABEL, NAMESPACE, PLAN_CONFIGMAP_KEY, PLAN_CONFIGMAP_NAME
from casa_sched.devcluster.controlplane import (
    ControlPlane,
    ExtenderSpec,
    HarnessError,
    Process,
    find_binaries,
    free_port,
)
from casa_sched.devcluster.kwok import find_kwok

pytestmark = pytest.mark.k8s

# An epoch of about 30 minutes that began just now (epoch e spans [e·E, (e+1)·E) s since the Unix
# epoch, so E = t / floor(t / 1800) puts a boundary at t): the module's runs share one epoch.
_T0 = time.time() - 5.0
EPOCH_S = _T0 / math.floor(_T0 / 1800.0)
NS = "fns"
CASA = str(Path(sys.executable).parent / "casa")


def _deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    labels = {FUNCTION_LABEL: name, "app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {FUNCTION_LABEL: name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     "terminationGracePeriodSeconds": 0, "automountServiceAccountToken": False,
                     "containers": [{"name": "app", "image": "registry.invalid/casa/noop:0",
                                     "resources": {"requests": {"cpu": "2", "memory": "150Mi"}}}]}}},
    }


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    try:
        bins = find_binaries(build=True)
        port = free_port()
        cp = ControlPlane.start(tmp_path_factory.mktemp("k8s-as"), bin_dir=bins,
                                extender=ExtenderSpec(url_prefix=f"http://127.0.0.1:{port}"))
    except HarnessError as exc:
        pytest.fail(f"local control plane did not start: {exc}")
    extender: Process | None = None
    try:
        cp.start_kwok(find_kwok())
        cp.create_namespace(NAMESPACE)
        cp.create_namespace(NS)
        for n in ("n1", "n2"):
            cp.create_kwok_node(n, cpu="16", memory="32Gi")
        for fn in ("fa", "fb"):
            cp.request("POST", f"/apis/apps/v1/namespaces/{NS}/deployments", _deployment(fn))
        extender = Process("casa-extender", [CASA, "extender", "--host", "127.0.0.1", "--port", str(port),
                                             "--kubeconfig", str(cp.kubeconfig)], cp.log_dir, env=cp.env())
        spec = cp.extender
        assert spec is not None
        ready = f"http://127.0.0.1:{urlsplit(spec.url_prefix).port}/readyz"
        cp.wait_for("casa extender ready", lambda: _ready(ready) or not extender.alive(), 60)
        assert extender.alive(), extender.log_tail()
        yield cp
    finally:
        if extender is not None:
            extender.stop()
        cp.stop()


@pytest.fixture(scope="module")
def metrics_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # fa: 12000 requests/min × 1 s = 200 in flight; 20 slots per 2-core unit → 10 units, more than
    # one 16-core node holds (8 units): CASA needs containers on both nodes
    # fb: 60 requests/min × 0.5 s = 0.5 in flight → at most one small container
    path = tmp_path_factory.mktemp("metrics") / "metrics.json"
    path.write_text(json.dumps({"functions": {
        "fa": {"requests_per_minute": 12000, "t_ave_s": 1.0},
        "fb": {"requests_per_minute": 60, "t_ave_s": 0.5}}}))
    return path


def _autoscaler(cp: ControlPlane, metrics: Path, *args: str,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [CASA, "autoscaler", "--kubeconfig", str(cp.kubeconfig), "--metrics-file", str(metrics),
            "--epoch-s", repr(EPOCH_S), "--time-budget", "60", "--metrics-port", "0", "--log-level", "WARNING", *args]
    # gen binds before the clock on this loaded machine: the same plan on every run (README: reproducibility)
    full = {**cp.env(), "CASA_PLANNER__GEN": "150", **(env or {})}
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False, env=full)


def _report(res: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    assert len(lines) == 1, res.stdout
    report: dict[str, Any] = json.loads(lines[0])
    return report


def _stored(cp: ControlPlane) -> dict[str, Any]:
    cm: dict[str, Any] = cp.request("GET", f"/api/v1/namespaces/{NAMESPACE}/configmaps/{PLAN_CONFIGMAP_NAME}")
    return cm


def _replicas(cp: ControlPlane, name: str) -> int:
    scale = cp.request("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/{name}/scale")
    return int(scale["spec"].get("replicas", 0))  # 0 is omitted from the JSON


def _pods(cp: ControlPlane, fn: str) -> list[dict[str, Any]]:
    pods = cp.request("GET", f"/api/v1/namespaces/{NS}/pods?labelSelector=app%3D{fn}")["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def _pod_nodes(cp: ControlPlane, fn: str) -> list[str | None]:
    return [p["spec"].get("nodeName") for p in _pods(cp, fn)]


def _millicores(pod: dict[str, Any], *, spec: bool) -> int:
    from casa_sched.kube.quantity import parse_quantity

    if spec:
        res = pod["spec"]["containers"][0]["resources"]
    else:
        res = next(c for c in pod["status"]["containerStatuses"] if c["name"] == "app")["resources"]
    return round(parse_quantity(res["requests"]["cpu"]) * 1000)


def _node_requests_m(cp: ControlPlane, node: str) -> int:
    pods = cp.request("GET", f"/api/v1/pods?fieldSelector=spec.nodeName%3D{node}")["items"]
    return sum(_millicores(p, spec=True) for p in pods if not p["metadata"].get("deletionTimestamp"))


def test_dry_run_prints_the_actions_and_writes_nothing(plane: ControlPlane, metrics_file: Path) -> None:
    before = plane.request("GET", f"/api/v1/namespaces/{NAMESPACE}/configmaps")["items"]
    report = _report(_autoscaler(plane, metrics_file, "--once", "--dry-run", "--json"))
    assert report["writes"] == 0
    assert report["status"] == "planned"
    kinds = Counter(a["kind"] for a in report["actions"])
    assert kinds["scale"] >= 1, json.dumps(report)  # fa needs more than its one replica
    assert all(a["outcome"] == "applied" for a in report["actions"])  # "would apply"
    assert plane.request("GET", f"/api/v1/namespaces/{NAMESPACE}/configmaps")["items"] == before  # no plan stored
    assert (_replicas(plane, "fa"), _replicas(plane, "fb")) == (1, 1)
    table = _autoscaler(plane, metrics_file, "--once", "--dry-run")
    assert table.returncode == 0, table.stderr
    assert "KIND" in table.stdout
    assert "deployment/fa" in table.stdout


def test_epoch_stores_the_plan_scales_and_pods_land_where_planned(plane: ControlPlane, metrics_file: Path) -> None:
    report = _report(_autoscaler(plane, metrics_file, "--once", "--json"))
    assert report["status"] == "planned", report
    cm = _stored(plane)
    plan = Plan.from_json(cm["data"][PLAN_CONFIGMAP_KEY])
    epoch = math.floor(time.time() / EPOCH_S)
    annotations = cm["metadata"]["annotations"]
    assert (plan.epoch, annotations["casa.dev/plan-epoch"], annotations["casa.dev/plan-hash"]) == (
        epoch, str(epoch), report["plan_hash"])
    assert plan.inputs.policy == "casa"
    assert len(plan.slots_by_node("fa")) == 2  # 10 units do not fit one node
    for fn in ("fa", "fb"):
        assert _replicas(plane, fn) == len(plan.containers_of(fn))
        want = Counter(plan.slots_by_node(fn))

        def placed(fn: str = fn, want: Counter[str] = want) -> bool:
            nodes = _pod_nodes(plane, fn)
            return len(nodes) == sum(want.values()) and all(nodes)

        plane.wait_for(f"{fn} pods bound", placed, 90)
        # the real kube-scheduler, asking casa extender, put each pod where the plan has a slot
        assert Counter(_pod_nodes(plane, fn)) == want, (fn, plan.to_dict()["containers"])
    # The running pods were resized in place to k × 2 cores (KWOK reports the applied size).
    sizes = Counter((c.node, c.size * 2000) for c in plan.containers_of("fa"))
    assert Counter((p["spec"]["nodeName"], _millicores(p, spec=True)) for p in _pods(plane, "fa")) == sizes
    assert Counter((p["spec"]["nodeName"], _millicores(p, spec=False)) for p in _pods(plane, "fa")) == sizes


def test_the_applied_epoch_is_not_redone_and_reapplying_makes_no_write(plane: ControlPlane,
                                                                        metrics_file: Path) -> None:
    first = _stored(plane)
    assert first["metadata"]["annotations"]["casa.dev/applied-hash"] == \
        first["metadata"]["annotations"]["casa.dev/plan-hash"]
    again = _report(_autoscaler(plane, metrics_file, "--once", "--json"))
    assert (again["status"], again["writes"], again["actions"]) == ("already-applied", 0, [])
    assert _stored(plane)["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    # Forget that it was applied: the stored plan is resumed (not planned anew) and, the cluster
    # already matching it, the only write is the record that it is applied.
    plane.request("PATCH", f"/api/v1/namespaces/{NAMESPACE}/configmaps/{PLAN_CONFIGMAP_NAME}",
                  {"metadata": {"annotations": {"casa.dev/applied-hash": None}}}, "application/merge-patch+json")
    resumed = _report(_autoscaler(plane, metrics_file, "--once", "--json"))
    assert resumed["status"] == "resumed"
    assert resumed["plan_hash"] == first["metadata"]["annotations"]["casa.dev/plan-hash"]
    assert [a for a in resumed["actions"] if a["outcome"] != "unchanged"] == []
    assert resumed["writes"] == 1  # PUT of the ConfigMap's applied-* annotations


def test_the_epoch_runs_the_power_pass_after_the_apply(plane: ControlPlane, metrics_file: Path,
                                                         tmp_path: Path) -> None:
    # fa's 10 units need both 16-core nodes, so the plan sleeps neither: the power pass (hook mode)
    # finds both on and writes nothing, and its hook never runs
    calls = tmp_path / "calls"
    hook = json.dumps([sys.executable, "-c", f"open({str(calls)!r}, 'a').write('called')"])
    env = {"CASA_AUTOSCALER__POWER_MODE": "hook", "CASA_AUTOSCALER__POWER_OFF_COMMAND": hook,
           "CASA_AUTOSCALER__POWER_ON_COMMAND": hook}
    report = _report(_autoscaler(plane, metrics_file, "--once", "--json", env=env))
    assert report["status"] == "already-applied"
    assert report["power"] == {"mode": "hook", "writes": 0, "states": {"n1": "on", "n2": "on"}, "actions": []}
    assert not calls.exists()


def _start(cp: ControlPlane, metrics: Path, identity: str, metrics_port: int) -> Process:
    argv = [CASA, "autoscaler", "--kubeconfig", str(cp.kubeconfig), "--metrics-file", str(metrics),
            "--epoch-s", repr(EPOCH_S), "--time-budget", "60", "--metrics-port", str(metrics_port),
            "--intra-interval-s", "1", "--identity", identity, "--log-level", "INFO"]
    return Process(f"autoscaler-{identity}", argv, cp.log_dir, env={**cp.env(), "CASA_PLANNER__GEN": "150"})


def _holder(cp: ControlPlane) -> str:
    try:
        lease = cp.request("GET", f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/casa-autoscaler")
    except HarnessError:
        return ""
    return str(lease["spec"].get("holderIdentity") or "")


def _metric(port: int, name: str) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return -1.0
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def test_intra_epoch_growth_stops_at_a_full_node_and_a_standby_takes_over(plane: ControlPlane,
                                                                          metrics_file: Path,
                                                                          tmp_path: Path) -> None:
    plan = Plan.from_json(_stored(plane)["data"][PLAN_CONFIGMAP_KEY])
    # fa's requests in flight jump far above its slots: every tick grows a pod of fa by one unit
    # where the node has room, until both nodes are full (16 cores of requests each).
    hot = tmp_path / "hot.json"
    hot.write_text(json.dumps({"functions": {
        "fa": {"requests_per_minute": 12000, "t_ave_s": 1.0, "in_flight": 100000},
        "fb": {"requests_per_minute": 60, "t_ave_s": 0.5}}}))
    port_a, port_b = free_port(), free_port()
    a = _start(plane, hot, "replica-a", port_a)
    plane.wait_for("replica-a leads", lambda: _holder(plane) == "replica-a" or not a.alive(), 60)
    b = _start(plane, hot, "replica-b", port_b)
    try:
        assert a.alive(), a.log_tail()
        free_nodes = [n for n in ("n1", "n2") if _node_requests_m(plane, n) < 16000]
        assert free_nodes, plan.to_dict()["containers"]  # the plan left room somewhere to grow into
        plane.wait_for("fa grown until its nodes are full",
                       lambda: all(_node_requests_m(plane, n) == 16000 for n in ("n1", "n2")
                                   if plan.slots_by_node("fa").get(n)) or not a.alive(), 120)
        assert a.alive(), a.log_tail()
        ticks = _metric(port_a, "casa_autoscaler_ticks_total")
        plane.wait_for("three more ticks", lambda: _metric(port_a, "casa_autoscaler_ticks_total") >= ticks + 3, 60)
        # never past 100 % of a node's allocatable (16 cores)
        assert [_node_requests_m(plane, n) for n in ("n1", "n2")] == [
            16000 if plan.slots_by_node("fa").get(n) else _node_requests_m(plane, n) for n in ("n1", "n2")]
        assert max(_node_requests_m(plane, n) for n in ("n1", "n2")) <= 16000
        assert _metric(port_b, "casa_autoscaler_leader") == 0.0  # the standby does nothing
        # SIGKILL the leader: it cannot release; the standby takes over once the Lease expires.
        a.popen.kill()
        a.popen.wait(10)
        plane.wait_for("replica-b leads", lambda: _holder(plane) == "replica-b" or not b.alive(), 60)
        plane.wait_for("replica-b acting", lambda: _metric(port_b, "casa_autoscaler_leader") == 1.0, 30)
        assert b.alive(), b.log_tail()
        # SIGTERM: the Lease is released (no holder) and the process exits cleanly.
        b.popen.terminate()
        assert b.popen.wait(60) == 0, b.log_tail()
        assert _holder(plane) == ""
    finally:
        a.stop()
        b.stop()


def _executor_through(proxy_port: int, cp: ControlPlane, sleeps: list[float]) -> tuple[Any, Any, Any]:
    from kubernetes import client

    from casa_sched.autoscaler.adapters import AdapterContext
    from casa_sched.autoscaler.adapters.deployment import DeploymentAdapter
    from casa_sched.autoscaler.apply import Executor
    from casa_sched.autoscaler.kubeapi import CountingApiClient
    from casa_sched.metrics import CasaMetrics
    from casa_sched.settings import CasaSettings

    cfg = client.Configuration()
    cfg.host = f"http://127.0.0.1:{proxy_port}"
    cfg.api_key = {"authorization": f"Bearer {cp.token}"}
    api = CountingApiClient(cfg, timeout_s=(2.0, 10.0))
    adapter = DeploymentAdapter(AdapterContext(api, CasaSettings()))
    metrics = CasaMetrics()
    clock = [0.0]

    def sleep(s: float) -> None:  # backoff without waiting: the clock moves, the test does not
        sleeps.append(s)
        clock[0] += s

    ex = Executor(api, {"deployment": adapter}, None, metrics, sleep=sleep, clock=lambda: clock[0])
    return ex, adapter, metrics


def test_api_failures_back_off_and_the_remaining_actions_resume(plane: ControlPlane, caplog) -> None:
    """503, 429, 409 and dropped connections: each action is retried after a backoff and the
    rest of the list carries on; past the deadline what is left is reported pending (none is
    half-applied silently) and the next pass finishes it; a workload deleted mid-epoch is
    skipped with one log line."""
    import logging

    from casa_sched.autoscaler.actions import ScaleAction
    from casa_sched.autoscaler.adapters.deployment import workload_from_deployment

    from .faultproxy import FaultProxy

    for fn in ("fc", "fd", "fe"):
        plane.request("POST", f"/apis/apps/v1/namespaces/{NS}/deployments", _deployment(fn, replicas=0))
    works = {}
    for fn in ("fc", "fd", "fe"):
        w = workload_from_deployment(plane.request("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/{fn}"))
        assert w is not None
        works[fn] = w
    actions = [ScaleAction(fn, works[fn], 0, n) for fn, n in (("fc", 3), ("fd", 2), ("fe", 1))]
    plane.request("DELETE", f"/apis/apps/v1/namespaces/{NS}/deployments/fe")  # gone before its turn
    host, port = plane.server.removeprefix("https://").split(":")
    assert plane.pki is not None
    sleeps: list[float] = []
    with FaultProxy(host, int(port), str(plane.pki.ca_cert)) as proxy:
        ex, _, metrics = _executor_through(proxy.port, plane, sleeps)
        proxy.script.extend([503, 429, "drop", 409])  # fc: GET 503, GET 429, GET dropped, PUT 409
        with caplog.at_level(logging.INFO, logger="casa_sched.autoscaler.apply"):
            out = ex.run(actions, deadline=1000.0)
        assert [(o.action.function, o.outcome) for o in out] == [("fc", "applied"), ("fd", "applied"),
                                                                 ("fe", "skipped")]
        assert [f for _, _, f in proxy.faulted] == [503, 429, "drop", 409]
        # urllib3 itself retries a 429 (after its Retry-After) and a dropped connection; the 503
        # and the 409 reach the executor, which backs off 0.5 s, then 1 s (doubling)
        assert sleeps == [0.5, 1.0]
        assert metrics.registry.get_sample_value("casa_autoscaler_api_retries_total", {"phase": "apply"}) == 2
        assert len([r for r in caplog.records if "fe" in r.getMessage()]) == 1
        assert (_replicas(plane, "fc"), _replicas(plane, "fd")) == (3, 2)

        # API server unreachable past the deadline: nothing left half-done without saying so
        more = [ScaleAction("fc", works["fc"], 3, 1), ScaleAction("fd", works["fd"], 2, 1)]
        proxy.script.extend(["drop"] * 40)
        out = ex.run(more, deadline=sum(sleeps) + 10.0)  # the clock is at sum(sleeps)
        assert [o.outcome for o in out] == ["pending", "pending"]
        assert (_replicas(plane, "fc"), _replicas(plane, "fd")) == (3, 2)
        proxy.script.clear()
        assert [o.outcome for o in ex.run(more, deadline=10_000.0)] == ["applied", "applied"]
        assert (_replicas(plane, "fc"), _replicas(plane, "fd")) == (1, 1)
        # and again: nothing to write
        assert [o.outcome for o in ex.run(more, deadline=10_000.0)] == ["unchanged", "unchanged"]


def test_an_infeasible_resize_is_reported_once_and_kept_track_of(plane: ControlPlane, tmp_path: Path) -> None:
    """The node answers a resize with PodResizePending/Infeasible (KWOK, on request): one Warning
    Event on the pod, one count in casa_autoscaler_resize_total{outcome="infeasible"}, the pod
    recorded as not applied; later passes neither resize it again nor repeat the Event."""
    from casa_sched.autoscaler.adapters import AdapterContext, create_adapter
    from casa_sched.autoscaler.apply import Executor
    from casa_sched.autoscaler.epoch_signals import SignalReader
    from casa_sched.autoscaler.forecast import FileMetricsSource, HistoryForecaster
    from casa_sched.autoscaler.kubeapi import counting_api_client
    from casa_sched.autoscaler.loop import Autoscaler, _Current
    from casa_sched.autoscaler.resize import PodResizer
    from casa_sched.autoscaler.store import PlanStore
    from casa_sched.contract.plan import Container
    from casa_sched.devcluster.kwok import TEST_RESIZE_ANNOTATION
    from casa_sched.metrics import CasaMetrics
    from casa_sched.settings import load_settings

    plane.create_kwok_node("n3", cpu="16", memory="32Gi")  # n1 and n2 are full after the growth test
    dep = _deployment("fi")
    dep["spec"]["template"]["metadata"]["annotations"] = {TEST_RESIZE_ANNOTATION: "infeasible"}
    dep["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": "n3"}
    plane.request("POST", f"/apis/apps/v1/namespaces/{NS}/deployments", dep)
    plane.wait_for("fi running", lambda: [p.get("status", {}).get("phase") for p in _pods(plane, "fi")] == ["Running"],
                   90)
    (pod,) = _pods(plane, "fi")
    metrics_path = tmp_path / "m.json"
    metrics_path.write_text(json.dumps({"functions": {}}))
    settings = load_settings(environ={})
    api = counting_api_client(plane.kubeconfig)
    assert api is not None
    metrics = CasaMetrics()
    adapter = create_adapter("deployment", AdapterContext(api, settings))
    source = FileMetricsSource(metrics_path)
    scaler = Autoscaler(settings, api, [adapter], HistoryForecaster(source, 1.0), source,
                        SignalReader(settings, metrics), PlanStore(api),
                        Executor(api, {"deployment": adapter}, PodResizer(api), metrics), metrics)
    plan = Plan(epoch=1, containers={"fi": (Container(pod["spec"]["nodeName"], 2),)})  # k=2: 4 cores
    scaler.current = _Current(1, plan, ("fi",), None, applied=True)
    first = scaler.tick()
    assert [(o.action.kind, o.outcome) for o in first] == [("resize", "applied")]  # the patch was accepted

    def reported() -> bool:
        scaler.tick()
        return bool(scaler.current and pod["metadata"]["uid"] in scaler.current.not_applied)

    plane.wait_for("the Infeasible resize noticed", reported, 60, 1.0)
    assert scaler.current is not None
    assert scaler.current.not_applied[pod["metadata"]["uid"]]["reason"] == "Infeasible"
    assert metrics.registry.get_sample_value("casa_autoscaler_resize_total", {"outcome": "infeasible"}) == 1
    writes = api.write_count
    for _ in range(3):
        assert scaler.tick() == []  # the spec already asks for k=2: nothing to resize again
    assert api.write_count == writes  # and no second Event
    events = plane.request("GET", f"/api/v1/namespaces/{NS}/events?fieldSelector=reason%3DCasaResizeInfeasible")
    assert [e["involvedObject"]["name"] for e in events["items"]] == [pod["metadata"]["name"]]
    assert "Infeasible" in events["items"][0]["message"]
