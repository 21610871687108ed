"""Scheduling throughput of the real kube-scheduler with and without the casa extender.

Starts a local control plane (``casa_sched/devcluster/controlplane.py``; binaries from ``make k8s-bins``),
creates ``--nodes`` fake Ready nodes and, per round, ``--pods`` pending function pods; then
starts kube-scheduler (with or without the extender) and measures, from a watch on the pods,
the bind rate between the first and the last binding (scheduler start-up excluded). Rounds
alternate without/with the extender; the median of each is reported with the ratio.

    python -m benchmarks.scheduler_throughput                      # casa extender
    python -m benchmarks.scheduler_throughput --extender stub      # a trivial Python extender
    python -m benchmarks.scheduler_throughput --nodes 100 --pods 2000 --rounds 3

Target: the extender costs < 10 % of the throughput. Everything (etcd, apiserver,
scheduler, extender, this client) shares the machine's cores, so expect noise on 2 cores; the
extender process also runs (watching pods) during the rounds without it, so both modes pay its
watch load. Also printed: kube-scheduler's own mean scheduling-algorithm time per pod (filter +
score, extender calls included), which is less sensitive to the API server's load.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import shutil
import ssl
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from casa_sched.devcluster.controlplane import (
    ControlPlane,
    ExtenderSpec,
    HarnessError,
    Process,
    free_port,
    pod_manifest,
)
from casa_sched.devcluster.stub_extender import StubExtender

FUNCTION = "bench-fn"
NAMESPACE_PLAN = "casa-system"


@dataclass(frozen=True)
class Round:
    mode: str
    pods: int
    bind_seconds: float  # first binding -> last binding
    total_seconds: float  # scheduler start -> last binding
    algorithm_ms: float  # mean scheduling_algorithm_duration (filter + score, extender included)

    @property
    def pods_per_s(self) -> float:
        return (self.pods - 1) / self.bind_seconds if self.bind_seconds > 0 else math.inf


class BindWatch:
    """Records the monotonic time at which each pod of a namespace is first seen bound."""

    def __init__(self, cp: ControlPlane, namespace: str, expected: int):
        self.cp, self.namespace, self.expected = cp, namespace, expected
        self.bound: dict[str, float] = {}
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.reconnects = 0
        listing = cp.request("GET", f"/api/v1/namespaces/{namespace}/pods?limit=1")
        self._rv = listing["metadata"]["resourceVersion"]
        self._conn: http.client.HTTPSConnection | None = None
        self._thread = threading.Thread(target=self._run, name="bind-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # kube-apiserver closes watchers that fall behind a burst ("Forcing pods watcher close due
        # to unresponsiveness"); resume from the last resourceVersion seen, which replays the gap.
        try:
            while not self.done.is_set():
                self._watch_once()
                self.reconnects += 1
        except Exception as exc:
            if not self.done.is_set():
                self.error = exc
            self.done.set()

    def _watch_once(self) -> None:
        assert self.cp.pki is not None
        ctx = ssl.create_default_context(cafile=str(self.cp.pki.ca_cert))
        self._conn = conn = http.client.HTTPSConnection("127.0.0.1", self.cp.api_port, context=ctx, timeout=600)
        try:
            conn.request("GET", f"/api/v1/namespaces/{self.namespace}/pods?watch=1&resourceVersion={self._rv}",
                         headers={"Authorization": f"Bearer {self.cp.token}"})
            resp = conn.getresponse()
            if resp.status != 200:
                raise HarnessError(f"watch: HTTP {resp.status}: {resp.read()[:500]!r}")
            buf = b""
            while not self.done.is_set():
                chunk = resp.read1(1 << 16)
                if not chunk:
                    return
                buf += chunk
                *lines, buf = buf.split(b"\n")
                now = time.monotonic()
                for line in lines:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        raise HarnessError(f"watch error event: {event.get('object')}")
                    obj = event.get("object", {})
                    self._rv = obj.get("metadata", {}).get("resourceVersion", self._rv)
                    if obj.get("spec", {}).get("nodeName"):
                        self.bound.setdefault(obj["metadata"]["name"], now)
                if len(self.bound) >= self.expected:
                    self.done.set()
        finally:
            conn.close()

    def close(self) -> None:
        self.done.set()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                if self._conn.sock is not None:
                    self._conn.sock.shutdown(2)
            self._conn.close()
        self._thread.join(5)


def _algorithm_ms(metrics: str) -> float:
    """Mean of kube-scheduler's scheduler_scheduling_algorithm_duration_seconds, in ms."""
    total = count = 0.0
    for line in metrics.splitlines():
        if line.startswith("scheduler_scheduling_algorithm_duration_seconds_sum"):
            total += float(line.split()[-1])
        elif line.startswith("scheduler_scheduling_algorithm_duration_seconds_count"):
            count += float(line.split()[-1])
    return 1000 * total / count if count else math.nan


def _create_pods(cp: ControlPlane, namespace: str, count: int) -> None:
    path = f"/api/v1/namespaces/{namespace}/pods"
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda i: cp.request("POST", path, pod_manifest(
            f"p{i:05d}", labels={"casa.dev/function": FUNCTION}, cpu="10m", memory="16Mi")), range(count)))


def _clear(cp: ControlPlane, namespace: str) -> None:
    cp.request("DELETE", f"/api/v1/namespaces/{namespace}/pods?gracePeriodSeconds=0")
    cp.wait_for(f"pods of {namespace} deleted",
                lambda: not cp.request("GET", f"/api/v1/namespaces/{namespace}/pods?limit=1")["items"], 120, 0.5)


def _publish_plan(cp: ControlPlane, nodes: list[str], slots_per_node: int) -> None:
    plan = {
        "version": 1, "epoch": 1, "epoch_start": datetime.now(UTC).isoformat(), "epoch_length_s": 3600.0,
        "base_cpu_cores": 2.0, "base_memory_mb": 150.0, "inputs": {"policy": "benchmark"}, "predicted": None,
        "containers": {FUNCTION: [{"node": n, "size": 1} for n in nodes for _ in range(slots_per_node)]},
    }
    with contextlib.suppress(ImportError):  # prefer the real serialiser when casa_sched is installed
        from casa_sched.contract.plan import Container, Plan

        plan = json.loads(Plan(epoch=1, containers={FUNCTION: tuple(
            Container(n) for n in nodes for _ in range(slots_per_node))}, epoch_start=datetime.now(UTC),
            epoch_length_s=3600.0).to_json())
    cp.apply_configmap(NAMESPACE_PLAN, "casa-plan", {"plan.json": json.dumps(plan)})


@contextlib.contextmanager
def _extender(kind: str, cp: ControlPlane, port: int, logdir: Path) -> Iterator[None]:
    if kind == "stub":
        with StubExtender(port):
            yield
        return
    casa = Path(sys.executable).parent / "casa"
    if not casa.exists():
        casa = Path(shutil.which("casa") or "casa")
    proc = Process("casa-extender", [str(casa), "extender", "--host", "127.0.0.1", "--port", str(port),
                                     "--kubeconfig", str(cp.kubeconfig)], logdir, env=cp.env())
    try:
        deadline = time.monotonic() + 60
        while True:
            if not proc.alive():
                raise HarnessError(f"casa extender exited:\n{proc.log_tail()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    break
            if time.monotonic() > deadline:
                raise HarnessError(f"casa extender not ready:\n{proc.log_tail()}")
            time.sleep(0.2)
        yield
    finally:
        proc.stop()


def run_round(cp: ControlPlane, namespace: str, pods: int, extender: ExtenderSpec | None, mode: str,
              qps: float, timeout_s: float) -> Round:
    _create_pods(cp, namespace, pods)
    watch = BindWatch(cp, namespace, pods)
    try:
        start = time.monotonic()
        cp.start_scheduler(extender, qps=qps, burst=int(qps))
        if not watch.done.wait(timeout_s):
            raise HarnessError(f"{mode}: only {len(watch.bound)}/{pods} pods bound after {timeout_s:.0f} s")
        if watch.error is not None:
            raise HarnessError(f"{mode}: watch failed: {watch.error}")
        times = sorted(watch.bound.values())
        return Round(mode, pods, times[-1] - times[0], times[-1] - start, _algorithm_ms(cp.scheduler_metrics()))
    finally:
        watch.close()
        cp.stop_scheduler()
        _clear(cp, namespace)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--pods", type=int, default=2000, help="pods per round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per mode (alternating)")
    ap.add_argument("--extender", choices=["casa", "stub"], default="casa")
    ap.add_argument("--qps", type=float, default=1000.0,
                    help="scheduler client QPS/burst (high, so API rate limits do not hide the extender)")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", action="store_true", help="also print the result as one JSON line")
    args = ap.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="casa-sched-bench-"))
    port = free_port()
    spec = ExtenderSpec(url_prefix=f"http://127.0.0.1:{port}", weight=5)
    print(f"control plane in {workdir}; {args.nodes} nodes, {args.pods} pods/round, {args.rounds} rounds/mode, "
          f"extender={args.extender}, scheduler qps={args.qps:g}", flush=True)
    cp = ControlPlane.start(workdir, scheduler=False)
    try:
        nodes = [f"bench-{i:03d}" for i in range(args.nodes)]
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(lambda n: cp.create_node(n, cpu="64", memory="256Gi", pods=110), nodes))
        cp.create_namespace("bench")
        _publish_plan(cp, nodes, slots_per_node=math.ceil(args.pods / args.nodes) + 1)
        rounds: list[Round] = []
        with _extender(args.extender, cp, port, workdir / "logs"):
            for r in range(args.rounds):
                for mode, ext in (("without", None), ("with", spec)):
                    res = run_round(cp, "bench", args.pods, ext, mode, args.qps, args.timeout)
                    rounds.append(res)
                    print(f"  round {r + 1} {mode:7s} extender: {res.pods_per_s:8.1f} pods/s "
                          f"(binds over {res.bind_seconds:.2f} s; {res.total_seconds:.2f} s incl. start-up; "
                          f"algorithm {res.algorithm_ms:.2f} ms/pod)", flush=True)
    finally:
        cp.stop()
    without = statistics.median(r.pods_per_s for r in rounds if r.mode == "without")
    with_ext = statistics.median(r.pods_per_s for r in rounds if r.mode == "with")
    ratio = with_ext / without
    alg_without = statistics.median(r.algorithm_ms for r in rounds if r.mode == "without")
    alg_with = statistics.median(r.algorithm_ms for r in rounds if r.mode == "with")
    print(f"without extender: {without:.1f} pods/s (median; scheduling algorithm {alg_without:.2f} ms/pod)")
    print(f"with {args.extender} extender: {with_ext:.1f} pods/s (median; scheduling algorithm {alg_with:.2f} ms/pod)")
    print(f"ratio with/without: {ratio:.3f} (extender cost {100 * (1 - ratio):.1f} %; target < 10 %)")
    if args.json:
        print(json.dumps({"nodes": args.nodes, "pods": args.pods, "extender": args.extender,
                          "without_pods_per_s": without, "with_pods_per_s": with_ext, "ratio": ratio,
                          "algorithm_ms_without": alg_without, "algorithm_ms_with": alg_with,
                          "rounds": [r.__dict__ for r in rounds]}))
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
