"""An HTTP proxy in front of the real kube-apiserver that answers some requests itself with a
failure (503, 429, 409 as the API server words them) or drops the connection, in the order a
test scripts them; every other request goes through unchanged. Test support only."""

from __future__ import annotations

import http.client
import http.server
import json
import ssl
import threading
from collections import deque
from typing import Any


class FaultProxy:
    """``script`` entries: an HTTP status (answered with a Status body), or ``"drop"`` (close the
    connection without answering). Each request consumes the next entry; none left: forwarded."""

    def __init__(self, upstream_host: str, upstream_port: int, ca_file: str) -> None:
        self.script: deque[int | str] = deque()
        self.forwarded: list[tuple[str, str]] = []
        self.faulted: list[tuple[str, str, int | str]] = []
        self._lock = threading.Lock()
        ctx = ssl.create_default_context(cafile=ca_file)
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with proxy._lock:
                    fault = proxy.script.popleft() if proxy.script else None
                if fault == "drop":
                    proxy.faulted.append((self.command, self.path, "drop"))
                    self.close_connection = True
                    self.connection.close()
                    return
                if isinstance(fault, int):
                    proxy.faulted.append((self.command, self.path, fault))
                    data = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                       "code": fault, "message": f"injected {fault}"}).encode()
                    self.send_response(fault)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    if fault == 429:
                        self.send_header("Retry-After", "1")
                    self.end_headers()
                    self.wfile.write(data)
                    return
                conn = http.client.HTTPSConnection(upstream_host, upstream_port, context=ctx, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                proxy.forwarded.append((self.command, self.path))
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _handle  # noqa: N815

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
