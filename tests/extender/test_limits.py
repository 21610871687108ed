"""Hostile requests: node names are Kubernetes names before anything is cached, every cache is
bounded in bytes, the node-count and body limits hold, and every answer is counted."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from casa_sched.contract.plan import Plan
from casa_sched.devcluster.payloads import args_names, args_nodes, plain_pod, plan_doc, real_node, real_pod
from casa_sched.extender import wire
from casa_sched.extender.app import Extender, Routes, create_app
from casa_sched.extender.memo import ByteBoundedMemo
from casa_sched.extender.state import MAX_ASSUMED, NODE_MEMO_BYTES, ExtenderState
from casa_sched.kube.objects import parse_pod
from casa_sched.metrics import CasaMetrics
from tests.extender.support import FakeClock, Harness, LiveServer

F = "thumbnail"


def ext(h: Harness) -> Extender:
    e = h.app.state.extender
    assert isinstance(e, Extender)
    return e


def status_of(h: Harness, verb: str, args: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    status, body = getattr(ext(h), verb)(json.dumps(args).encode())
    return status, json.loads(body)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        pytest.param("node-1", True, id="plain"),
        pytest.param("ip-10-0-1-17.eu-west-1.compute.internal", True, id="dotted"),
        pytest.param("a" * 253, True, id="253-chars-the-limit"),
        pytest.param("a" * 254, False, id="254-chars"),
        pytest.param("x" * 2**20, False, id="one-mebibyte"),
        pytest.param("Node-1", False, id="uppercase"),
        pytest.param("node_1", False, id="underscore"),
        pytest.param("-node", False, id="leading-dash"),
        pytest.param("node-", False, id="trailing-dash"),
        pytest.param("a..b", False, id="empty-label"),
        pytest.param("", False, id="empty"),
        pytest.param("nöde", False, id="non-ascii"),
        pytest.param("n1\n", False, id="trailing-newline"),
    ],
)
@pytest.mark.parametrize("verb", ["filter", "prioritize"])
def test_node_names_must_be_kubernetes_names(harness: Harness, verb: str, name: str, ok: bool) -> None:
    harness.load_plan(plan_doc({F: ["n1"]}))
    for args, path in (
        (args_names(real_pod(), ["n1", name]), "ExtenderArgs.NodeNames[1]"),
        (args_nodes(real_pod(), [real_node("n1"), real_node(name)]), "ExtenderArgs.Nodes.items[1]"),
    ):
        before = len(wire._HOST_PREFIXES), len(harness.state.slopes)
        status, reply = status_of(harness, verb, args)
        if ok:
            assert status == 200, reply
        elif name == "" and "Nodes" in path:  # a Node must have a name at all
            assert (status, reply["error"]) == (400, f"{path}.metadata.name: required: a non-empty string")
        else:
            assert status == 400
            assert reply["error"].startswith(f"{path}: ")
            assert "is not a Kubernetes node name" in reply["error"]
            assert len(reply["error"]) < 400  # a 1 MiB name is not echoed back
            assert (len(wire._HOST_PREFIXES), len(harness.state.slopes)) == before  # nothing cached


@pytest.mark.parametrize(
    ("valid", "forged"),
    [
        # the remembered key of a valid list is its count, NUL, its names joined by newlines:
        pytest.param(["a", "b"], ["a\nb"], id="fewer-names-same-join"),
        pytest.param(["a", "b"], ["a\nb", ""], id="same-count-shifted-newline"),
        pytest.param(["1", "b"], ["1\x00b"], id="nul-in-a-name"),
    ],
)
def test_a_remembered_valid_list_does_not_vouch_for_another(valid: list[str], forged: list[str]) -> None:
    wire.check_node_names(valid, "NodeNames")  # remembered
    wire.check_node_names(valid, "NodeNames")  # and found again
    with pytest.raises(wire.BadRequestError, match="is not a Kubernetes node name"):
        wire.check_node_names(forged, "NodeNames")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        # Kubernetes limits: names 253 (DNS-1123 subdomain), namespaces and label values 63
        pytest.param(("metadata", "name"), "p" * 254, "Pod.metadata.name: 254 characters, at most 253", id="name"),
        pytest.param(
            ("metadata", "namespace"), "n" * 64, "Pod.metadata.namespace: 64 characters, at most 63", id="namespace"
        ),
        # the uid is the pod's key; namespace/name (63 + 1 + 253 = 317) is the longest key otherwise
        pytest.param(("metadata", "uid"), "u" * 318, "Pod.metadata.uid: 318 characters, at most 317", id="uid"),
        pytest.param(("spec", "nodeName"), "n" * 254, "Pod.spec.nodeName: 254 characters", id="node-name"),
        pytest.param(
            ("metadata", "labels", "serving.knative.dev/service"), "f" * 64, "(function): 64 characters", id="function"
        ),
    ],
)
def test_pod_strings_kept_by_an_assumption_have_kubernetes_lengths(
    harness: Harness, field: tuple[str, ...], value: str, message: str
) -> None:
    pod = real_pod()
    node: dict[str, Any] = pod
    for key in field[:-1]:
        node = node[key]
    node[field[-1]] = value
    status, reply = status_of(harness, "prioritize", args_names(pod, ["n1"]))
    assert status == 400
    assert message in reply["error"]


@pytest.mark.parametrize(
    ("count", "status"),
    [
        pytest.param(3, 200, id="at-the-limit"),
        pytest.param(4, 400, id="one-over"),
    ],
)
@pytest.mark.parametrize("mode", ["names", "nodes"])
def test_node_count_limit(count: int, status: int, mode: str) -> None:
    state = ExtenderState(clock=FakeClock())
    app = create_app(state, CasaMetrics(), max_nodes=3)
    e = app.state.extender
    names = [f"n{i}" for i in range(count)]
    args = args_names(real_pod(), names) if mode == "names" else args_nodes(real_pod(), [real_node(n) for n in names])
    got, body = e.filter(json.dumps(args).encode())
    assert got == status
    if status == 400:
        assert f"{count} nodes, at most 3 allowed" in json.loads(body)["error"]
    spec = app.openapi()["components"]["schemas"]
    assert spec["ExtenderArgs"]["properties"]["NodeNames"]["anyOf"][0]["maxItems"] == 3


def requests_total(text: str, verb: str, code: int) -> float:
    prefix = f'casa_extender_requests_total{{code="{code}",verb="{verb}"}} '
    return sum(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


def test_every_answer_is_counted_by_status_code(
    harness: Harness, live_server_factory: Callable[[Harness, Routes | None], LiveServer]
) -> None:
    live = live_server_factory(harness, Routes())  # 1 MiB body limit
    big = b'{"Pod": {}, "NodeNames": ["' + b"n" * (2 * 2**20) + b'"]}'

    def streamed() -> Any:  # no Content-Length: refused while streaming
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536]

    for verb in ("filter", "prioritize"):
        url = f"{live.url}/{verb}"
        assert httpx.post(url, content=json.dumps(args_names(real_pod(), ["n1"])), timeout=10).status_code == 200
        assert httpx.post(url, content=big, timeout=10).status_code == 413  # Content-Length too big
        assert httpx.post(url, content=streamed(), timeout=10).status_code == 413
        assert httpx.post(url, content=b"{", timeout=10).status_code == 400  # not JSON
        bad_name = json.dumps(args_names(real_pod(), ["N1"]))
        assert httpx.post(url, content=bad_name, timeout=10).status_code == 400
    text = httpx.get(f"{live.url}/metrics", timeout=10).text
    for verb in ("filter", "prioritize"):
        assert requests_total(text, verb, 200) == 1.0
        assert requests_total(text, verb, 413) == 2.0
        assert requests_total(text, verb, 400) == 2.0


def test_the_starlette_routes_refuse_and_count_the_same_way(harness: Harness) -> None:
    """Without the HotPathApp front door the FastAPI routes share the reader and the counting."""
    import asyncio

    app = create_app(harness.state, harness.metrics, max_body_bytes=1024)
    transport = httpx.ASGITransport(app=app)

    async def go() -> list[int]:
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
            big = await c.post("/filter", content=b"x" * 2048)
            bad = await c.post("/filter", content=b"[]")
            return [big.status_code, bad.status_code]

    assert asyncio.run(go()) == [413, 400]
    sample = harness.metrics.registry.get_sample_value
    assert sample("casa_extender_requests_total", {"verb": "filter", "code": "413"}) == 1.0
    assert sample("casa_extender_requests_total", {"verb": "filter", "code": "400"}) == 1.0


@pytest.mark.parametrize(
    ("max_bytes", "keys", "kept"),
    [
        # each entry costs len(key) + 1 here: 10 keys of 9 + 1 bytes fill 100 bytes exactly
        pytest.param(100, [f"k{i:08d}" for i in range(10)], 10, id="fits-exactly"),
        # the 11th insertion would pass 100 bytes: the memo empties and keeps only the newest
        pytest.param(100, [f"k{i:08d}" for i in range(11)], 1, id="clears-when-full"),
        # an entry larger than the whole budget is computed and returned but never kept
        pytest.param(100, ["x" * 200], 0, id="oversized-never-kept"),
    ],
)
def test_memo_is_bounded_in_bytes(max_bytes: int, keys: list[str], kept: int) -> None:
    memo: ByteBoundedMemo[str] = ByteBoundedMemo(str.upper, max_bytes, cost=lambda k, _: len(k) + 1)
    for k in keys:
        assert memo[k] == k.upper()
        assert memo.bytes <= max_bytes
    assert len(memo) == kept
    assert memo.bytes == sum(len(k) + 1 for k in memo)
    if memo:
        memo.discard(next(iter(memo)))
        assert memo.bytes == sum(len(k) + 1 for k in memo)


def test_unique_node_names_leave_bounded_caches_and_no_usage_entries(harness: Harness) -> None:
    # 400 prioritize calls, each naming 200 new 250-character nodes (80,000 names, 20 MB of names):
    # every cache stays inside its byte budget, and once the calls' assumptions expire no
    # per-node usage entry is left behind.
    harness.load_plan(plan_doc({F: ["n1"]}))
    e = ext(harness)
    for i in range(400):
        names = [f"{i:04d}-{j:04d}-" + "a" * 240 for j in range(200)]
        status, _ = e.prioritize(json.dumps(args_names(real_pod(uid=f"u{i}"), names)).encode())
        assert status == 200
    state = harness.state
    for memo, budget in (
        (wire._HOST_PREFIXES, wire.HOST_PREFIX_MEMO_BYTES),
        (wire._VALID_NODE_NAMES, wire.NODE_NAMES_MEMO_BYTES),
        (wire._VALID_NODE_LISTS, wire.NODE_LISTS_MEMO_BYTES),
        (state.slopes, NODE_MEMO_BYTES),
    ):
        assert 0 < memo.bytes <= budget
    assert len(state.assumed) == 400  # one per pod, inside their TTL
    harness.clock.now += state.assume_ttl_s + 1
    status, _ = e.filter(json.dumps(args_names(plain_pod(), ["n2"])).encode())  # any call ends expired ones
    assert status == 200
    assert state.assumed == {}
    assert state.usage == {}


def test_assumptions_are_capped(harness: Harness) -> None:
    harness.load_plan(plan_doc({F: ["n1"]}))
    state = harness.state
    with state.lock:
        for i in range(MAX_ASSUMED + 5):
            state.assume_locked(parse_pod(real_pod(uid=f"u{i}")), "n2", harness.clock())
    assert len(state.assumed) == MAX_ASSUMED
    assert next(iter(state.assumed)) == "u5"  # the oldest five ended early
    assert state.usage["n2"].pods == MAX_ASSUMED


def test_memo_budgets_fit_a_large_real_cluster() -> None:
    # 5,000 nodes (Kubernetes' supported maximum) with 63-character names must never clear a memo.
    state = ExtenderState(clock=FakeClock())
    state.set_plan(Plan.from_json(plan_doc({F: ["n1"]})), "ok", "test")
    wire._VALID_NODE_NAMES.clear()  # process-wide memos: start from empty, as a new process does
    wire._HOST_PREFIXES.clear()
    names = [f"{i:05d}-" + "n" * 57 for i in range(5000)]
    wire.check_node_names(names, "NodeNames")
    wire.encode_prioritize(dict.fromkeys(names, 1))
    for n in names:
        state.slopes[n]
        state.free[n]
    for memo in (wire._VALID_NODE_NAMES, wire._HOST_PREFIXES, state.slopes, state.free):
        assert set(names) <= memo.keys()


def _chunked_start(url: str, verb: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(f"POST /{verb} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
    return sock


def _chunk(sock: socket.socket, data: bytes) -> None:
    sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))


def _finish(sock: socket.socket) -> int:
    sock.sendall(b"0\r\n\r\n")
    head = sock.recv(64)
    sock.close()
    return int(head.split()[1])


def test_bodies_in_flight_across_requests_are_bounded(
    harness: Harness, live_server_factory: Callable[[Harness, Routes | None], LiveServer]
) -> None:
    """Each body is under the 1 MiB limit, but bodies streamed at once share a budget of two
    limits: the third concurrent one is refused (429, counted) and the budget is whole again after."""
    live = live_server_factory(harness, Routes())
    tail = json.dumps(args_names(real_pod(), ["n1"])).encode()
    pad = b" " * (800 * 1024)  # JSON allows leading white space
    streams = [_chunked_start(live.url, "filter") for _ in range(2)]
    for s in streams:
        _chunk(s, pad)  # 2 × 800 KiB held by requests in progress
    deadline = time.monotonic() + 30
    extender = ext(harness)
    while extender.in_flight.held_bytes < 2 * len(pad) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert extender.in_flight.held_bytes == 2 * len(pad)
    third = _chunked_start(live.url, "filter")
    _chunk(third, b" " * (600 * 1024))  # 1.6 MiB + 600 KiB > 2 MiB
    assert _finish(third) == 429
    for s in streams:
        _chunk(s, tail)
        assert _finish(s) == 200
    assert extender.in_flight.held_bytes == 0
    assert httpx.post(f"{live.url}/filter", content=pad + tail, timeout=10).status_code == 200
    text = httpx.get(f"{live.url}/metrics", timeout=10).text
    assert requests_total(text, "filter", 429) == 1.0
    assert requests_total(text, "filter", 200) == 3.0


def test_a_body_that_stops_arriving_gives_its_budget_back(
    harness: Harness, live_server_factory: Callable[[Harness, Routes | None], LiveServer]
) -> None:
    """A client that sends part of a body and stalls is answered 408 after the body timeout
    (1 s here; 30 s by default), counted, and holds nothing of the in-flight budget after."""
    live = live_server_factory(harness, Routes())
    extender = ext(harness)
    extender.body_timeout_s = 1.0
    stalled = _chunked_start(live.url, "prioritize")
    _chunk(stalled, b" " * (100 * 1024))
    _chunk(stalled, b" " * 1024)  # a second chunk: the body is known to come in pieces
    started = time.monotonic()
    head = stalled.recv(64)  # no end of body sent: the server answers on its own
    waited_s = time.monotonic() - started
    stalled.close()
    assert int(head.split()[1]) == 408
    assert waited_s < 10
    assert extender.in_flight.held_bytes == 0
    text = httpx.get(f"{live.url}/metrics", timeout=10).text
    assert requests_total(text, "prioritize", 408) == 1.0
