"""Fuzzing the real ``casa extender`` process with hostile requests: never a 5xx, and memory stays
bounded.

The server runs as the manifests run it (the ``casa extender`` command, plan from a file, no
cluster) with a 1 MiB body limit. Hypothesis draws 10,000 requests from a mix of hostile kinds:
huge and unique node names (the input that once grew RSS from 89 MB to 677 MB in 300 requests
and kept it there), unique valid names that fill every memo, power-model annotations that fill
the curve memo, huge pod strings, deep JSON, bodies over the limit (by Content-Length and
streamed), too many nodes and wrongly typed fields. After a warm-up of 500 such requests the
server's RSS may grow by at most ``MARGIN_MIB`` over the 10,000: the memos' byte budgets (each
cache is emptied when it would pass its budget) plus allocator slack. Assumed placements expire
after 1 s here; their own bound (``MAX_ASSUMED``) is tested in test_limits.py.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from casa_sched.devcluster.payloads import POWER_MODEL, plan_doc, real_node, real_pod
from casa_sched.extender import wire
from casa_sched.extender.state import CURVE_MEMO_BYTES, NODE_MEMO_BYTES

LIMIT_BYTES = 2**20
WARM_UP = 500
CASES = 10_000
TAIL = 500
# Budgets of the memos hostile requests can fill in a process without a cluster (valid names,
# valid node lists, host prefixes, slopes, power curves: 5 × 4 MiB; the free-capacity memo needs
# known nodes), plus 16 MiB for the allocator keeping freed arenas and the heap's own growth.
BUDGETS = (wire.NODE_NAMES_MEMO_BYTES, wire.NODE_LISTS_MEMO_BYTES, wire.HOST_PREFIX_MEMO_BYTES)
MARGIN_MIB = (sum(BUDGETS) + NODE_MEMO_BYTES + CURVE_MEMO_BYTES) / 2**20 + 16
PLANNED = [f"n{i}" for i in range(4)]
_unique = itertools.count()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise AssertionError(f"no VmRSS for pid {pid}")


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("hostile")
    plan = tmp / "plan.json"
    plan.write_text(plan_doc({"thumbnail": PLANNED}, epoch_start="2100-01-01T00:00:00+00:00"))
    port = _free_port()
    casa = Path(sys.executable).with_name("casa")
    argv = [str(casa), "extender", "--host", "127.0.0.1", "--port", str(port), "--plan-file", str(plan)]
    argv += ["--max-body-bytes", str(LIMIT_BYTES), "--assume-ttl-s", "1", "--log-level", "CRITICAL"]
    log = (tmp / "extender.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, (tmp / "extender.log").read_text()
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "casa extender did not become ready"
        time.sleep(0.1)
    yield Server(url=url, proc=proc)
    proc.terminate()
    proc.wait(10)
    log.close()


def _pod(**meta: str) -> dict[str, Any]:
    pod = real_pod(uid=f"u{next(_unique)}")
    pod["metadata"].update(meta)
    return pod


def _body(pod: dict[str, Any], names: list[str] | None = None, nodes: list[dict[str, Any]] | None = None) -> bytes:
    args = {"Pod": pod, "Nodes": None if nodes is None else {"metadata": {}, "items": nodes}, "NodeNames": names}
    return json.dumps(args).encode()


KINDS = (
    *("huge-name", "unique-names", "power-models", "huge-pod-string", "deep-json", "too-big", "too-big-streamed"),
    *("too-many-nodes", "wrong-types", "wrong-pod"),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@st.composite
def hostile(draw: st.DrawFn) -> tuple[str, bytes | Iterator[bytes], set[int]]:
    """(kind, body, the statuses allowed for it)."""
    kind = draw(st.sampled_from(KINDS))
    # A drawn salt makes every case distinct to Hypothesis, which otherwise stops drawing kinds
    # with few distinct cases (it avoids repeating itself); the counter makes names unique.
    n = draw(st.integers(0, 2**32)) * 100_000 + next(_unique) % 100_000
    if kind == "huge-name":  # valid characters, far too long, unique: once kept by the host-name memo
        size = draw(st.integers(254, 2**18))
        return kind, _body(_pod(), [*PLANNED, f"{n}-" + "a" * size]), {400}
    if kind == "unique-names":  # valid and unique: fills the name, slope and host-prefix memos
        count, length = draw(st.integers(1, 64)), draw(st.integers(1, 230))
        names = [f"{n}-{j}-" + "b" * (length - j % length) for j in range(count)]
        return kind, _body(_pod(), [*PLANNED, *names]), {200}
    if kind == "power-models":  # NodeList mode, unique annotations: fills the curve memo
        model = {**POWER_MODEL, "source": f"fuzz-{n}-" + "c" * draw(st.integers(0, 4096))}
        nodes = [real_node(name, power_model=model) for name in PLANNED[:2]]
        return kind, _body(_pod(), nodes=nodes), {200}
    if kind == "huge-pod-string":
        field = draw(st.sampled_from(["name", "uid", "namespace"]))
        return kind, _body(_pod(**{field: "p" * draw(st.integers(318, 2**18))}), PLANNED), {400}
    if kind == "deep-json":
        depth = draw(st.integers(1_000, 100_000))
        return kind, b"[" * depth + b"]" * depth, {400, 413}
    if kind == "too-big":
        return kind, b"{" + b" " * (LIMIT_BYTES + draw(st.integers(1, 2**16))) + b"}", {413}
    if kind == "too-big-streamed":  # no Content-Length: refused while streaming
        pieces = LIMIT_BYTES // 65536 + draw(st.integers(1, 4))
        return kind, (b" " * 65536 for _ in range(pieces)), {413}
    if kind == "too-many-nodes":
        return kind, _body(_pod(), ["n"] * (wire.DEFAULT_MAX_NODES + 1)), {400}
    if kind == "wrong-types":
        return kind, json.dumps(draw(JSON_VALUES)).encode(), {200, 400}
    value = draw(JSON_VALUES)  # wrong-pod: any JSON where the Pod or the node list goes
    args = draw(st.sampled_from([{"Pod": value, "NodeNames": PLANNED}, {"Pod": real_pod(), "NodeNames": value}]))
    return kind, json.dumps(args).encode(), {200, 400}


def fuzz(server: Server, client: httpx.Client, examples: int, seen: Counter[tuple[str, int]]) -> None:
    @given(case=hostile(), verb=st.sampled_from(["filter", "prioritize"]))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: tuple[str, bytes | Iterator[bytes], set[int]], verb: str) -> None:
        kind, body, allowed = case
        r = client.post(f"{server.url}/{verb}", content=body, headers={"Content-Type": "application/json"})
        seen[(kind, r.status_code)] += 1
        assert r.status_code in allowed, (kind, r.status_code, r.text[:200])
        assert r.headers["content-type"] == "application/json"

    run()


def test_hostile_requests_get_no_5xx_and_leave_memory_bounded(server: Server) -> None:
    seen: Counter[tuple[str, int]] = Counter()
    with httpx.Client(timeout=30) as client:
        fuzz(server, client, WARM_UP, seen)
        before = rss_mib(server.proc.pid)
        fuzz(server, client, CASES, seen)
        middle = rss_mib(server.proc.pid)
        fuzz(server, client, TAIL, seen)
        after = rss_mib(server.proc.pid)
        metrics = client.get(f"{server.url}/metrics").text
    ran = sum(seen.values())
    ticks = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    server_cpu_s = (int(ticks[11]) + int(ticks[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    print(
        f"\n{ran} hostile requests ({server_cpu_s:.1f} s of server CPU); RSS {before:.1f} MiB after {WARM_UP} warm-up, {middle:.1f} MiB after "
        f"{CASES} more, {after:.1f} MiB after {TAIL} more (margin {MARGIN_MIB:.0f} MiB)\n"
        + ", ".join(f"{k} {c}: {v}" for (k, c), v in sorted(seen.items()))
    )
    assert ran == WARM_UP + CASES + TAIL
    assert {kind for kind, _ in seen} == set(KINDS)
    assert max(middle, after) - before <= MARGIN_MIB
    # every answer is counted by its status code, 400 and 413 included
    for code in {c for _, c in seen}:
        counted = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("casa_extender_requests_total{") and f'code="{code}"' in line
        )
        assert counted == sum(v for (_, c), v in seen.items() if c == code)
