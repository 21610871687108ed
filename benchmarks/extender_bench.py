"""Extender benchmark: in-process decision latency, loopback HTTP throughput, memory over time.

Run:  .venv/bin/python benchmarks/extender_bench.py [--nodes 100,1000,5000] [--http-seconds 10]
      [--memory-requests 100000] [--skip-http] [--skip-memory]

1. In process: ``Extender.filter`` + ``Extender.prioritize`` on the same body (parse JSON, decide,
   encode) for one function pod against N nodes named only (nodeCacheCapable: true), with a
   plan placing the function on 10 % of the nodes and one bound pod per planned node.
2. HTTP: ``casa extender --plan-file`` in a subprocess on 127.0.0.1, driven by ``wrk`` (one
   thread, so that the load generator takes as little CPU from the server as possible on a small
   box; 32 connections, a Lua script alternating filter and prioritize POSTs with the real
   body); prints requests/s and the latency percentiles wrk reports.
3. Memory: RSS of that server after a warm-up and then after every 10 s of load until
   ``--memory-requests`` requests have been served (1,000 nodes).
Targets: in-process p99 <= 5 ms at 1,000 nodes; HTTP >= 1,000 req/s, p99 <= 20 ms at
concurrency 32; RSS flat over 100,000 requests.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from casa_sched.contract.plan import Plan
from casa_sched.extender.app import Extender
from casa_sched.extender.state import ExtenderState
from casa_sched.metrics import CasaMetrics

FUNCTION = "thumbnail"


def pod_json() -> dict[str, Any]:
    from casa_sched.devcluster.payloads import real_pod

    return real_pod(labels={"casa.dev/function": FUNCTION})


def plan_text(n_nodes: int) -> str:
    planned = [f"node-{i:05d}" for i in range(0, n_nodes, 10)]
    return json.dumps(
        {
            "version": 1,
            "epoch": 1,
            "epoch_start": "2100-01-01T00:00:00+00:00",
            "epoch_length_s": 900.0,
            "inputs": {"policy": "casa", "ci_g_per_kwh": 420.0},
            "containers": {FUNCTION: [{"node": n, "size": 1} for n in planned for _ in range(2)]},
        }
    )


def body_bytes(n_nodes: int) -> bytes:
    return json.dumps(
        {"Pod": pod_json(), "Nodes": None, "NodeNames": [f"node-{i:05d}" for i in range(n_nodes)]}
    ).encode()


def in_process(n_nodes: int, iterations: int) -> tuple[float, float, float]:
    state = ExtenderState()
    state.set_plan(Plan.from_json(plan_text(n_nodes)), "ok", "bench")
    bound = [
        {
            "metadata": {"uid": f"b{i}", "name": f"b{i}", "namespace": "d", "labels": {"casa.dev/function": FUNCTION}},
            "spec": {"nodeName": f"node-{i:05d}", "containers": [{"resources": {"requests": {"cpu": "2"}}}]},
            "status": {"phase": "Running"},
        }
        for i in range(0, n_nodes, 10)
    ]
    state.replace_pods(bound)
    ext = Extender(state, CasaMetrics())
    body = body_bytes(n_nodes)
    for _ in range(50):
        ext.filter(body)
        ext.prioritize(body)
    samples = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        s1, _ = ext.filter(body)
        s2, _ = ext.prioritize(body)
        samples.append(time.perf_counter() - t0)
        assert s1 == s2 == 200
    samples.sort()
    return (
        statistics.median(samples) * 1e3,
        samples[int(0.99 * len(samples)) - 1] * 1e3,
        samples[-1] * 1e3,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


class Server:
    def __init__(self, n_nodes: int, tmp: Path) -> None:
        self.port = _free_port()
        plan = tmp / f"plan-{n_nodes}.json"
        plan.write_text(plan_text(n_nodes))
        casa = Path(sys.executable).with_name("casa")
        self.proc = subprocess.Popen(
            [
                str(casa),
                "extender",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--plan-file",
                str(plan),
                "--log-level",
                "ERROR",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("extender did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


LUA = r"""
local bodies = {}
local paths = {"/filter", "/prioritize"}
local counter = 0
local f = io.open(os.getenv("BENCH_BODY"), "rb")
local body = f:read("*all")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = body
request = function()
  counter = counter + 1
  return wrk.format(nil, paths[(counter % 2) + 1])
end
response = function(status, headers, body)
  if status ~= 200 then error("status " .. status) end
end
"""


def run_wrk(port: int, body_file: Path, lua: Path, seconds: int) -> dict[str, float]:
    env = dict(os.environ, BENCH_BODY=str(body_file))
    out = subprocess.run(
        ["wrk", "-t1", "-c32", f"-d{seconds}s", "--latency", "-s", str(lua), f"http://127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    res: dict[str, float] = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else float("nan")
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = float(m.group(1)) if m else float("nan")
    for pct in ("50", "90", "99"):
        m = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out)
        if m:
            v = float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
            res[f"p{pct}_ms"] = v
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = float(m.group(1)) if m else 0.0
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", default="100,1000,5000")
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--http-seconds", type=int, default=10)
    ap.add_argument("--memory-requests", type=int, default=100_000)
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    a = ap.parse_args()
    sizes = [int(x) for x in a.nodes.split(",")]

    print("== in process: filter + prioritize, one function pod, names only ==")
    for n in sizes:
        p50, p99, worst = in_process(n, a.iterations if n <= 1000 else max(a.iterations // 4, 200))
        print(f"nodes={n:>5}  p50={p50:7.3f} ms  p99={p99:7.3f} ms  max={worst:7.3f} ms")

    if a.skip_http and a.skip_memory:
        return
    if shutil.which("wrk") is None:
        print("wrk not found (apt-get install wrk): skipping HTTP and memory figures")
        return
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        lua = tmp / "bench.lua"
        lua.write_text(LUA)
        if not a.skip_http:
            print(f"== HTTP over loopback: wrk -t1 -c32 -d{a.http_seconds}s, alternating filter/prioritize ==")
            for n in sizes:
                body_file = tmp / f"body-{n}.json"
                body_file.write_bytes(body_bytes(n))
                srv = Server(n, tmp)
                try:
                    r = run_wrk(srv.port, body_file, lua, a.http_seconds)
                finally:
                    srv.stop()
                print(
                    f"nodes={n:>5}  {r['rps']:8.0f} req/s  p50={r.get('p50_ms', float('nan')):6.2f} ms  "
                    f"p90={r.get('p90_ms', float('nan')):6.2f} ms  p99={r.get('p99_ms', float('nan')):6.2f} ms  non-2xx={r['non2xx']:.0f}"
                )
        if not a.skip_memory:
            n = 1000
            print(f"== memory: RSS of the server over {a.memory_requests} requests, {n} nodes ==")
            body_file = tmp / f"body-{n}.json"
            body_file.write_bytes(body_bytes(n))
            srv = Server(n, tmp)
            try:
                run_wrk(srv.port, body_file, lua, 5)  # warm-up
                before = _rss_mib(srv.proc.pid)
                done = 0.0
                marks = []
                while done < a.memory_requests:
                    r = run_wrk(srv.port, body_file, lua, 10)
                    done += r["requests"]
                    marks.append((done, _rss_mib(srv.proc.pid)))
                after = _rss_mib(srv.proc.pid)
            finally:
                srv.stop()
            print(
                f"RSS after warm-up {before:.1f} MiB; " + "; ".join(f"after {d:.0f} req: {m:.1f} MiB" for d, m in marks)
            )
            print(f"RSS growth over {done:.0f} requests: {after - before:+.1f} MiB")


if __name__ == "__main__":
    main()
