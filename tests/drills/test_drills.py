"""Fault drills on ``casa dev-cluster``: the real control plane, the real extender and a real
Prometheus, one up/down cycle for the module; each drill breaks one part and checks what the
loop does about it (README, "Fault drills").

- the extender killed: pods still schedule (it is attached ``ignorable``);
- the leader ``casa autoscaler`` SIGKILLed: the standby takes over within the Lease;
- the API server restarted mid-apply: the epoch's actions complete afterwards;
- a node NotReady: its containers are planned elsewhere the next epoch;
- the carbon provider failing: the last known value is planned with, and counted;
- Prometheus stopped for an epoch: the last forecast, the staleness gauge, nothing invented.

The autoscaler runs in process where a drill needs to reach inside an epoch (the API server
restart, the epochs planned back to back), built by the same wiring as ``casa autoscaler``
(:func:`casa_sched.cli.autoscaler_cmd.build_autoscaler`), and as two real processes for the
leader drill. Each in-process drill uses its own epoch numbers, so no drill finds another's plan.
"""

from __future__ import annotations

import http.server
import json
import math
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from casa_sched.contract.plan import Plan
from casa_sched.conventions import FUNCTION_LABEL, NAMESPACE, PLAN_CONFIGMAP_KEY, PLAN_CONFIGMAP_NAME
from casa_sched.devcluster import cluster
from casa_sched.devcluster.controlplane import ControlPlane, HarnessError, Process, find_binaries, free_port, http_ok
from casa_sched.devcluster.controlplane import pod_manifest as bare_pod
from casa_sched.devcluster.kwok import KWOK_NODE_LABEL, find_kwok
from casa_sched.devcluster.prometheus import tools_missing

pytestmark = [pytest.mark.k8s, pytest.mark.prometheus, pytest.mark.slow]

CASA = str(Path(sys.executable).with_name("casa"))
NS = "fns"
NODES = 3
FUNCTIONS = {  # fa: 30 units (needs containers on more than one 128-core node? no: 60 cores); fb small
    "fa": {"requests_per_minute": 36000, "t_ave_s": 1.0},
    "fb": {"requests_per_minute": 60, "t_ave_s": 0.5},
}
OPENFAAS_RPM = 1200.0  # fa's rate on the exporter Prometheus scrapes (the Prometheus drill)


def _deployment(name: str) -> dict[str, Any]:
    labels = {FUNCTION_LABEL: name, "app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {FUNCTION_LABEL: name}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     "terminationGracePeriodSeconds": 0, "automountServiceAccountToken": False,
                     "containers": [{"name": "app", "image": "registry.invalid/casa/noop:0",
                                     "resources": {"requests": {"cpu": "2", "memory": "150Mi"}}}]}}},
    }  # fmt: skip


class _OpenFaasGateway:
    """Counters as OpenFaaS' gateway exports them, for fa only, growing at ``OPENFAAS_RPM``."""

    def __init__(self) -> None:
        self.t0 = time.time()
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                n = OPENFAAS_RPM * (time.time() - gateway.t0) / 60.0
                body = (f'gateway_function_invocation_total{{function_name="fa",code="200"}} {n}\n'
                        f'gateway_functions_seconds_sum{{function_name="fa"}} {0.5 * n}\n'
                        f'gateway_functions_seconds_count{{function_name="fa"}} {n}\n').encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Dev:
    directory: Path
    state: cluster.DevClusterState
    cp: ControlPlane
    metrics_file: Path
    gateway: _OpenFaasGateway
    next_epoch: int

    def epochs(self, n: int) -> list[int]:
        """``n`` consecutive epoch numbers no other drill uses."""
        first, self.next_epoch = self.next_epoch, self.next_epoch + n + 10
        return list(range(first, first + n))


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    reason = tools_missing()
    if reason:
        pytest.fail(reason)
    try:
        find_binaries(build=True)
        find_kwok(build=True)
    except HarnessError as exc:
        pytest.fail(f"no Kubernetes/KWOK binaries: {exc}")
    directory = tmp_path_factory.mktemp("drills")
    up = subprocess.run([CASA, "dev-cluster", "up", "--nodes", str(NODES), "--dir", str(directory)],
                        capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    gateway = _OpenFaasGateway()
    try:
        assert up.returncode == 0, up.stderr
        cp = cluster.attach(directory)
        cp.create_namespace(NAMESPACE)
        cp.create_namespace(NS)
        for fn in FUNCTIONS:
            cp.request("POST", f"/apis/apps/v1/namespaces/{NS}/deployments", _deployment(fn))
        cluster.register_target(directory, "openfaas", gateway.target)
        metrics_file = directory / "metrics.json"
        metrics_file.write_text(json.dumps({"functions": FUNCTIONS}))
        state = cluster.status(directory)[0]
        yield Dev(directory, state, cp, metrics_file, gateway, math.floor(time.time() / 900.0) + 1000)
    finally:
        gateway.close()
        subprocess.run([CASA, "dev-cluster", "down", "--dir", str(directory)], capture_output=True, timeout=120,
                       check=False)  # fmt: skip


def _settings(**overrides: Any) -> Any:
    from casa_sched.settings import load_settings

    base = {"planner.gen": 150, "planner.time_budget_s": 30.0, "autoscaler.apply_settle_s": 20.0,
            "autoscaler.settle_poll_s": 0.5}  # fmt: skip
    return load_settings(overrides={**base, **overrides}, environ={})


@contextmanager
def _autoscaler(dev: Dev, source: Any = None, **overrides: Any) -> Iterator[Any]:
    """An in-process autoscaler wired as ``casa autoscaler`` wires it, once it leads."""
    from casa_sched.autoscaler.forecast import FileMetricsSource
    from casa_sched.cli.autoscaler_cmd import build_autoscaler

    settings = _settings(**overrides)
    stop = threading.Event()
    scaler, elector = build_autoscaler(settings, Path(dev.state.kubeconfig), source or FileMetricsSource(dev.metrics_file),
                                       dry_run=False, identity=f"drill-{time.monotonic_ns()}", stop=stop)  # fmt: skip
    try:
        dev.cp.wait_for("the in-process autoscaler leads", elector.is_leader, 60)
        yield scaler
    finally:
        stop.set()
        elector.stop(release=True)


def _metric(scaler: Any, name: str, **labels: str) -> float:
    got = scaler.metrics.registry.get_sample_value(name, labels)
    return 0.0 if got is None else float(got)


def _stored(cp: ControlPlane) -> dict[str, Any]:
    cm: dict[str, Any] = cp.request("GET", f"/api/v1/namespaces/{NAMESPACE}/configmaps/{PLAN_CONFIGMAP_NAME}")
    return cm


def _replicas(cp: ControlPlane, name: str) -> int:
    return int(cp.request("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/{name}/scale")["spec"].get("replicas", 0))


# -- the drills, in the order they run ----------------------------------------------------------


def test_extender_killed_pods_still_schedule(dev: Dev) -> None:
    assert cluster.stop_process(dev.directory, "casa-extender", sig=9)
    assert not http_ok(f"{dev.state.extender_url}/healthz")
    dev.cp.request("POST", f"/api/v1/namespaces/{NS}/pods", bare_pod("while-down", labels={FUNCTION_LABEL: "fz"}))
    # ignorable: the scheduler skips the unreachable extender and binds with its own plugins
    dev.cp.wait_for("a pod bound while the extender is down",
                    lambda: bool(dev.cp.request("GET", f"/api/v1/namespaces/{NS}/pods/while-down")["spec"].get("nodeName")),
                    60, 0.2)  # fmt: skip
    record = cluster.start_process(dev.directory, "casa-extender")
    assert cluster.status(dev.directory)[1]["casa-extender"] is True
    assert record.pid != next(p.pid for p in dev.state.processes if p.name == "casa-extender")
    dev.cp.request("POST", f"/api/v1/namespaces/{NS}/pods", bare_pod("after", labels={FUNCTION_LABEL: "fz"}))
    dev.cp.wait_for("a pod bound after the restart",
                    lambda: bool(dev.cp.request("GET", f"/api/v1/namespaces/{NS}/pods/after")["spec"].get("nodeName")),
                    60, 0.2)  # fmt: skip
    import urllib.request

    with urllib.request.urlopen(f"{dev.state.extender_url}/metrics", timeout=5) as r:
        assert 'casa_extender_requests_total{code="200",verb="filter"}' in r.read().decode()  # asked again
    for name in ("while-down", "after"):
        dev.cp.request("DELETE", f"/api/v1/namespaces/{NS}/pods/{name}?gracePeriodSeconds=0")
    # gone before the next drill: a function pod still terminating is part of that drill's D_{e-1}
    dev.cp.wait_for("the drill's pods deleted", lambda: not [
        p for p in dev.cp.request("GET", f"/api/v1/namespaces/{NS}/pods")["items"]
        if p["metadata"]["labels"].get(FUNCTION_LABEL) == "fz"], 60, 0.2)  # fmt: skip


def _restart_apiserver(directory: Path, done: threading.Event) -> None:
    time.sleep(2.0)  # down for a while, as a restarting API server is
    cluster.start_process(directory, "kube-apiserver")
    done.set()


def _scale(cp: ControlPlane, name: str, replicas: int) -> None:
    cp.request("PATCH", f"/apis/apps/v1/namespaces/{NS}/deployments/{name}/scale", {"spec": {"replicas": replicas}},
               "application/merge-patch+json")  # fmt: skip
    cp.wait_for(f"{name} at {replicas} pod(s)", lambda: len([
        p for p in cp.request("GET", f"/api/v1/namespaces/{NS}/pods")["items"]
        if p["metadata"]["labels"].get(FUNCTION_LABEL) == name]) == replicas, 60, 0.2)  # fmt: skip


def test_api_server_restarted_mid_apply_the_epochs_actions_complete_afterwards(dev: Dev) -> None:
    (epoch,) = dev.epochs(1)
    # fa carries load and has no container: whatever the signals of the hour, the plan scales it up,
    # so the epoch has an apply for the API server to vanish under (a plan equal to D_{e-1} has none)
    _scale(dev.cp, "fa", 0)
    restarted = threading.Event()
    restarts: list[threading.Thread] = []
    with _autoscaler(dev) as scaler:
        api = scaler.api_client
        chained = api._on_write
        apply_writes: list[str] = []

        def on_write(verb: str, url: str) -> None:
            chained(verb, url)
            if "/configmaps" in url:
                return
            apply_writes.append(f"{verb} {url}")
            if len(apply_writes) == 1:  # the plan is stored; the API server goes away as the apply starts
                assert cluster.stop_process(dev.directory, "kube-apiserver")
                t = threading.Thread(target=_restart_apiserver, args=(dev.directory, restarted))
                restarts.append(t)
                t.start()

        api._on_write = on_write
        report = scaler.run_epoch(epoch)
        assert restarts, (report.status, report.writes, [o.row() for o in report.outcomes], report.message)
        restarts[0].join(120)
        assert restarted.is_set(), "the API server did not come back"
        plan = report.plan
        assert plan is not None
        assert report.status == "planned"
        assert len(apply_writes) >= 2, apply_writes  # the first apply write was retried after the restart
        assert scaler.current is not None
        deadline = time.monotonic() + 120
        while not scaler.current.applied:  # the intra-epoch ticks converge on the stored plan
            assert time.monotonic() < deadline, "the epoch's actions did not complete after the restart"
            if scaler.leader():
                try:
                    scaler.tick()
                except Exception as exc:  # the API server still warming up: the next tick retries
                    print(f"tick: {type(exc).__name__}: {exc}")
            time.sleep(0.5)
        retries = _metric(scaler, "casa_autoscaler_api_retries_total", phase="apply")
    cm = _stored(dev.cp)
    assert cm["metadata"]["annotations"]["casa.dev/applied-hash"] == cm["metadata"]["annotations"]["casa.dev/plan-hash"]
    assert Plan.from_json(cm["data"][PLAN_CONFIGMAP_KEY]).epoch == epoch
    for fn in FUNCTIONS:
        assert _replicas(dev.cp, fn) == len(plan.containers_of(fn)), fn
    print(f"api retries during the apply: {retries:g}; outcomes: {Counter(o.outcome for o in report.outcomes)}")


def test_node_not_ready_its_containers_are_planned_elsewhere_next_epoch(dev: Dev) -> None:
    e1, e2 = dev.epochs(2)
    with _autoscaler(dev) as scaler:
        first = scaler.run_epoch(e1).plan
        assert first is not None
        used = Counter(c.node for fn in FUNCTIONS for c in first.containers_of(fn))
        victim = used.most_common(1)[0][0]
        # the kubelet stops: KWOK no longer manages the node, its Ready condition turns Unknown as
        # node-lifecycle-controller would set it
        dev.cp.request("PATCH", f"/api/v1/nodes/{victim}", {"metadata": {"labels": {KWOK_NODE_LABEL: None}}},
                       "application/merge-patch+json")  # fmt: skip
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        node = dev.cp.request("GET", f"/api/v1/nodes/{victim}")
        conditions = [c for c in node["status"]["conditions"] if c["type"] != "Ready"] + [
            {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
             "message": "Kubelet stopped posting node status.", "lastHeartbeatTime": now, "lastTransitionTime": now}]
        dev.cp.request("PATCH", f"/api/v1/nodes/{victim}/status", {"status": {"conditions": conditions}},
                       "application/strategic-merge-patch+json")  # fmt: skip
        try:
            second = scaler.run_epoch(e2).plan
            assert second is not None
            moved = {fn for fn in FUNCTIONS if any(c.node == victim for c in first.containers_of(fn))}
            assert moved
            assert all(c.node != victim for fn in FUNCTIONS for c in second.containers_of(fn)), second.to_dict()
            for fn in moved:  # still planned, on the nodes that are left
                assert second.containers_of(fn), fn
        finally:
            dev.cp.request("PATCH", f"/api/v1/nodes/{victim}", {"metadata": {"labels": {KWOK_NODE_LABEL: "true"}}},
                           "application/merge-patch+json")  # fmt: skip

            def ready() -> bool:
                got = dev.cp.request("GET", f"/api/v1/nodes/{victim}")["status"]["conditions"]
                return any(c["type"] == "Ready" and c["status"] == "True" for c in got)

            dev.cp.wait_for(f"{victim} Ready again", ready, 120, 1.0)


class _CarbonApi:
    """UK Carbon Intensity's documented JSON (``/intensity/{from}/fw48h``) on loopback, until
    ``failing`` is set: then HTTP 503, as a provider outage answers."""

    def __init__(self, ci_g_per_kwh: float) -> None:
        self.failing = False
        self.calls: list[str] = []
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.calls.append(self.path)
                if api.failing:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = datetime.strptime(urllib.parse.unquote(self.path.split("/")[2]), "%Y-%m-%dT%H:%MZ")
                data = [{"from": (start + timedelta(minutes=30 * i)).strftime("%Y-%m-%dT%H:%MZ"),
                         "to": (start + timedelta(minutes=30 * (i + 1))).strftime("%Y-%m-%dT%H:%MZ"),
                         "intensity": {"forecast": ci_g_per_kwh, "actual": None, "index": "moderate"}}
                        for i in range(96)]  # fmt: skip
                body = json.dumps({"data": data}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def test_carbon_provider_failing_the_last_known_value_is_used_and_counted(dev: Dev) -> None:
    e1, e2 = dev.epochs(2)
    api = _CarbonApi(321.0)
    try:
        with _autoscaler(dev, **{"signals.carbon_source": "ukci", "signals.api_base_url": api.url,
                                 "signals.http_retries": 0}) as scaler:  # fmt: skip
            first = scaler.run_epoch(e1).plan
            assert first is not None
            assert first.inputs.ci_g_per_kwh == pytest.approx(321.0)
            assert api.calls, "the provider was not asked"
            assert _metric(scaler, "casa_signal_fallback_total", signal="carbon", reason="unavailable") == 0.0
            api.failing = True
            asked = len(api.calls)
            second = scaler.run_epoch(e2).plan
            assert second is not None
            assert len(api.calls) > asked  # it was asked, and failed
            assert second.inputs.ci_g_per_kwh == pytest.approx(321.0)  # the last known value
            fallbacks = {labels: v for (labels, v) in _samples(scaler, "casa_signal_fallback_total")
                         if dict(labels).get("signal") == "carbon"}  # fmt: skip
            assert sum(fallbacks.values()) >= 1, fallbacks
    finally:
        api.server.shutdown()
        api.server.server_close()


def _samples(scaler: Any, name: str) -> list[tuple[tuple[tuple[str, str], ...], float]]:
    out = []
    for fam in scaler.metrics.registry.collect():
        for s in fam.samples:
            if s.name == name:
                out.append((tuple(sorted(s.labels.items())), float(s.value)))
    return out


def test_leader_sigkilled_the_standby_takes_over_within_the_lease(dev: Dev, tmp_path: Path) -> None:
    from casa_sched.autoscaler.lease import LeaseRecord

    def lease() -> LeaseRecord | None:
        try:
            return LeaseRecord.from_lease(
                dev.cp.request("GET", f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/casa-autoscaler"))
        except HarnessError:
            return None

    def start(identity: str) -> Process:
        argv = [CASA, "autoscaler", "--kubeconfig", dev.state.kubeconfig, "--metrics-file", str(dev.metrics_file),
                "--time-budget", "30", "--metrics-port", str(free_port()), "--identity", identity, "--log-level", "INFO"]
        return Process(f"autoscaler-{identity}", argv, tmp_path, env={**dev.cp.env(), "CASA_PLANNER__GEN": "150"})

    a = start("replica-a")
    b: Process | None = None
    try:
        dev.cp.wait_for("replica-a leads", lambda: (lease() or _NO).holder == "replica-a" or not a.alive(), 90)
        assert a.alive(), a.log_tail()
        b = start("replica-b")
        time.sleep(5.0)  # b runs as a standby for a few renewals
        assert (lease() or _NO).holder == "replica-a"
        a.popen.kill()  # SIGKILL: no release
        a.popen.wait(10)
        last = lease()
        assert last is not None
        assert last.renew_time is not None
        standby = b
        dev.cp.wait_for("replica-b leads", lambda: (lease() or _NO).holder == "replica-b" or not standby.alive(),
                        last.lease_duration_s + 60)  # a bound on waiting; the lag is asserted below
        assert b.alive(), b.log_tail()
        taken = lease()
        assert taken is not None
        assert taken.acquire_time is not None
        lag_s = (taken.acquire_time - last.renew_time).total_seconds()
        # not before the Lease expired, and within it plus the standby's retry period (2 s) and
        # a margin for this shared machine
        assert last.lease_duration_s - 0.05 <= lag_s <= last.lease_duration_s + 2.0 + 5.0, lag_s
        print(f"takeover {lag_s:.2f} s after the last renewal (lease {last.lease_duration_s} s)")
        b.popen.terminate()
        assert b.popen.wait(60) == 0, b.log_tail()
    finally:
        a.stop()
        if b is not None:
            b.stop()


class _NoLease:
    holder = ""


_NO: Any = _NoLease()


def test_prometheus_stopped_for_an_epoch_fallback_staleness_nothing_invented(dev: Dev) -> None:
    """Last: a 2-minute epoch whose every minute (and the baseline before it) the gateway's
    counters, registered at the start, have been scraped in."""
    from casa_sched.metricsources import create_source

    wait_s = dev.gateway.t0 + 200.0 - time.time()
    if wait_s > 0:
        time.sleep(wait_s)
    # An epoch boundary now (epoch e spans [e·E, (e+1)·E)): the forecast reads the minutes just scraped.
    t = time.time() - 1.0
    epoch_s = t / math.floor(t / 120.0)
    overrides = {"workload.epoch_s": epoch_s, "forecast.source": "openfaas", "forecast.method": "last",
                 "autoscaler.prometheus_url": dev.state.prometheus_url, "forecast.max_stale_epochs": 2}  # fmt: skip
    source = create_source(_settings(**overrides))
    with _autoscaler(dev, source=source, **overrides) as scaler:
        e = scaler.epoch_at(t + 0.5)
        first = scaler.run_epoch(e)
        assert first.plan is not None
        assert first.held == ("fb",)  # no series for fb: held as it is, not planned from nothing
        assert first.plan.inputs.forecast_functions == 1
        rate = first.plan.inputs.forecast_requests
        assert rate > 0
        assert cluster.stop_process(dev.directory, "prometheus")
        try:
            second = scaler.run_epoch(e + 1)
        finally:
            cluster.start_process(dev.directory, "prometheus")
        assert second.plan is not None
        assert second.held == ("fb",)
        assert second.plan.inputs.forecast_functions == 1
        assert second.plan.inputs.forecast_requests == pytest.approx(rate)  # fa on its last forecast
        assert _metric(scaler, "casa_forecast_stale_epochs", function="fa") == 1.0
        assert _metric(scaler, "casa_signal_fallback_total", signal="forecast", reason="unreachable") >= 1.0
        assert second.plan.containers_of("fb") == first.plan.containers_of("fb")
