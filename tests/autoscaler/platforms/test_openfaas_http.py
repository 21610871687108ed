"""OpenFaaS adapter over HTTP, against a loopback stand-in for the CE gateway + faas-netes.

Not the real gateway: neither ``github.com/openfaas/faas/gateway`` nor ``faas-netes`` is served
by the Go module proxy here (403), so they cannot be built. The stand-in answers as their
source does (``gateway/main.go`` routes, ``MakeHorizontalScalingHandler``, faas-netes CE
``MakeReplicaUpdater``/``MakeReplicaReader``): basic auth on ``/system/*``, ``FunctionStatus``
JSON with ``omitempty`` counts, 404 for an unknown function on ``GET /system/function/{name}``,
500 (not 404) for one on scale, 400 for 0 replicas, a cap at 5, 202 on success, 400 for a
namespace other than its own. Error paths (5xx, 429, a gateway that never answers) are
injected into it.
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from casa_sched.autoscaler.adapters import AdapterContext, create_adapter
from casa_sched.autoscaler.adapters.base import AdapterError, WorkloadGone
from casa_sched.autoscaler.adapters.openfaas import OpenFaasAdapter
from casa_sched.settings import CasaSettings

USER, PASSWORD = "admin", "s3cret"


@dataclass
class FakeGateway:
    """State and knobs of the stand-in (see the module docstring)."""

    functions: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)  # (method, path?query, body)
    fail_next: list[int] = field(default_factory=list)  # statuses to answer before behaving
    hang: threading.Event | None = None  # when set-able: block until it is set
    namespace: str = "openfaas-fn"

    def writes(self) -> list[tuple[str, str, Any]]:
        return [r for r in self.requests if r[0] == "POST"]


def _handler(gw: FakeGateway) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any = None) -> None:
            data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            gw.requests.append((method, self.path, body))
            if gw.hang is not None:
                gw.hang.wait(10)
                return
            if gw.fail_next:
                self._send(gw.fail_next.pop(0), b"upstream trouble")
                return
            want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            if self.headers.get("Authorization") != want:
                self._send(401, b"Unauthorized")
                return
            url = urlsplit(self.path)
            ns = parse_qs(url.query).get("namespace", [gw.namespace])[0]
            if ns != gw.namespace:
                self._send(400, f"namespace must be: {gw.namespace}".encode())
                return
            parts = url.path.strip("/").split("/")
            if method == "GET" and parts == ["system", "functions"]:
                self._send(200, [_status(name, fn, ns) for name, fn in gw.functions.items()])
            elif method == "GET" and parts[:2] == ["system", "function"] and len(parts) == 3:
                fn = gw.functions.get(parts[2])
                self._send(200, _status(parts[2], fn, ns)) if fn is not None else self._send(404)
            elif method == "POST" and parts[:2] == ["system", "scale-function"] and len(parts) == 3:
                replicas = int((body or {}).get("replicas", 0))
                replicas = min(max(replicas, 1), 5)  # gateway: < 1 -> 1, > 5 -> 5
                fn = gw.functions.get(parts[2])
                if fn is None:
                    self._send(500, f"Unable to lookup function deployment {parts[2]}".encode())
                    return
                fn["replicas"] = replicas
                self._send(202)
            else:
                self._send(404)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

    return Handler


def _status(name: str, fn: dict[str, Any], ns: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "namespace": ns, "image": f"ghcr.io/example/{name}:1",
                           "labels": fn.get("labels", {"faas_function": name})}
    if fn.get("replicas"):  # omitempty
        out["replicas"] = fn["replicas"]
        out["availableReplicas"] = fn["replicas"]
    return out


@pytest.fixture
def gateway() -> Iterator[tuple[FakeGateway, str]]:
    gw = FakeGateway()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(gw))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield gw, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        if gw.hang is not None:
            gw.hang.set()
        server.shutdown()
        server.server_close()
        thread.join()


def _adapter(url: str, warnings: list[str] | None = None, **kwargs: Any) -> OpenFaasAdapter:
    sink = warnings if warnings is not None else []
    return OpenFaasAdapter(url, auth=(USER, PASSWORD), warn=sink.append, **kwargs)


def test_discover_lists_functions_with_the_ce_ceiling(gateway: tuple[FakeGateway, str]) -> None:
    gw, url = gateway
    gw.functions = {"resize": {"replicas": 2}, "idle": {"replicas": 0}}
    got = {w.function: w for w in _adapter(url).discover()}
    assert {name: (w.replicas, w.max_replicas) for name, w in got.items()} == {"resize": (2, 5), "idle": (0, 5)}
    assert gw.requests[0][:2] == ("GET", "/system/functions?namespace=openfaas-fn")


def test_scale_reads_first_posts_the_gateway_body_and_is_idempotent(gateway: tuple[FakeGateway, str]) -> None:
    gw, url = gateway
    gw.functions = {"resize": {"replicas": 1}}
    adapter = _adapter(url)
    (w,) = adapter.discover()
    assert adapter.scale(w, 3, dry_run=True) is True
    assert gw.writes() == []
    assert adapter.scale(w, 3) is True
    assert gw.writes() == [("POST", "/system/scale-function/resize?namespace=openfaas-fn",
                            {"serviceName": "resize", "replicas": 3, "namespace": "openfaas-fn"})]
    assert gw.functions["resize"]["replicas"] == 3
    assert adapter.scale(w, 3) is False  # read 3, nothing to write
    assert len(gw.writes()) == 1


@pytest.mark.parametrize(("asked", "written", "fragment"), [
    pytest.param(0, 1, "cannot scale a function to zero", id="zero-kept-at-one"),
    pytest.param(8, 5, "at most 5 replicas", id="eight-capped-at-five"),
])
def test_ce_clamps_with_one_warning(gateway: tuple[FakeGateway, str], asked: int, written: int, fragment: str) -> None:
    gw, url = gateway
    gw.functions = {"resize": {"replicas": 2}}
    warnings: list[str] = []
    adapter = _adapter(url, warnings)
    (w,) = adapter.discover()
    assert adapter.scale(w, asked) is True
    assert gw.writes()[-1][2]["replicas"] == written
    assert adapter.scale(w, asked) is False  # already at the clamped count
    assert len(warnings) == 1
    assert fragment in warnings[0]


def test_replicas_moved_by_someone_else_are_reasserted_with_one_warning(gateway: tuple[FakeGateway, str]) -> None:
    gw, url = gateway
    gw.functions = {"resize": {"replicas": 1}}
    warnings: list[str] = []
    adapter = _adapter(url, warnings)
    (w,) = adapter.discover()
    assert adapter.scale(w, 2) is True
    gw.functions["resize"]["replicas"] = 5  # e.g. CE's alert handler on APIHighInvocationRate
    assert adapter.scale(w, 2) is True
    assert gw.functions["resize"]["replicas"] == 2
    assert len(warnings) == 1
    assert "moved from 2 to 5" in warnings[0]


def test_factor_zero_label_is_warned_about_at_discovery(gateway: tuple[FakeGateway, str]) -> None:
    gw, url = gateway
    gw.functions = {"resize": {"replicas": 1, "labels": {"com.openfaas.scale.factor": "0"}}}
    warnings: list[str] = []
    adapter = _adapter(url, warnings)
    adapter.discover()
    adapter.discover()
    assert len(warnings) == 1
    assert "bad scaling factor" in warnings[0]


def test_deleted_function_is_workload_gone_not_a_500(gateway: tuple[FakeGateway, str]) -> None:
    gw, url = gateway
    gw.functions = {"resize": {"replicas": 1}}
    adapter = _adapter(url)
    (w,) = adapter.discover()
    del gw.functions["resize"]
    with pytest.raises(WorkloadGone, match=r"/system/function/resize.*HTTP 404"):
        adapter.scale(w, 2)
    assert gw.writes() == []


@pytest.mark.parametrize(("status", "retryable"), [
    pytest.param(500, True, id="500"),
    pytest.param(502, True, id="502"),
    pytest.param(503, True, id="503"),
    pytest.param(429, True, id="429"),
    pytest.param(400, False, id="400"),
])
def test_gateway_failures_are_typed(gateway: tuple[FakeGateway, str], status: int, retryable: bool) -> None:
    gw, url = gateway
    gw.functions = {"resize": {"replicas": 1}}
    gw.fail_next = [status]
    with pytest.raises(AdapterError) as info:
        _adapter(url).discover()
    assert info.value.retryable is retryable
    assert f"{url}/system/functions" in str(info.value)
    assert f"HTTP {status}" in str(info.value)


def test_wrong_password_is_not_retryable_and_names_the_url(gateway: tuple[FakeGateway, str]) -> None:
    _, url = gateway
    adapter = OpenFaasAdapter(url, auth=(USER, "wrong"))
    with pytest.raises(AdapterError, match=r"GET http://127\.0\.0\.1:\d+/system/functions: HTTP 401") as info:
        adapter.discover()
    assert info.value.retryable is False


def test_gateway_that_does_not_answer_is_retryable(gateway: tuple[FakeGateway, str]) -> None:
    gw, url = gateway
    gw.hang = threading.Event()
    with pytest.raises(AdapterError, match="Timeout") as info:
        _adapter(url, timeout_s=0.2).discover()
    assert info.value.retryable is True


def test_nothing_listening_is_retryable() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    with pytest.raises(AdapterError, match="ConnectionError") as info:
        _adapter(f"http://127.0.0.1:{port}").discover()
    assert info.value.retryable is True


def test_settings_build_the_adapter_and_read_the_password_file(gateway: tuple[FakeGateway, str],
                                                               tmp_path: Path) -> None:
    gw, url = gateway
    gw.functions = {"resize": {"replicas": 1}}
    secret = tmp_path / "basic-auth-password"
    secret.write_text(PASSWORD + "\n")
    settings = CasaSettings.model_validate({"openfaas": {"gateway_url": url, "password_file": str(secret)}})
    adapter = create_adapter("openfaas", AdapterContext(api_client=None, settings=settings))
    assert [w.function for w in adapter.discover()] == ["resize"]


@pytest.mark.parametrize(("content", "fragment"), [
    pytest.param(None, "cannot read", id="missing"),
    pytest.param("\n", "is empty", id="empty"),
])
def test_bad_password_file_is_one_clear_error(tmp_path: Path, content: str | None, fragment: str) -> None:
    secret = tmp_path / "pw"
    if content is not None:
        secret.write_text(content)
    settings = CasaSettings.model_validate({"openfaas": {"password_file": str(secret)}})
    with pytest.raises(AdapterError, match=f"openfaas.password_file {secret}: {fragment}") as info:
        create_adapter("openfaas", AdapterContext(api_client=None, settings=settings))
    assert info.value.retryable is False
