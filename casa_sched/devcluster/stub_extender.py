"""A scriptable scheduler extender on 127.0.0.1, for protocol and failure-mode tests and the
scheduler-throughput benchmark (``benchmarks/scheduler_throughput.py``).

It speaks the scheduler-extender HTTP protocol of kube-scheduler (``ExtenderArgs`` in,
``ExtenderFilterResult`` / ``HostPriorityList`` out; see docs/ and ``manifests/scheduler``) without
any casa logic, so a test can make the scheduler's extender slow, failing or restrictive.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import threading
import time
from typing import Any


class StubExtender:
    """A scriptable scheduler extender on 127.0.0.1 (for protocol and failure-mode tests).

    ``allow`` (node names) restricts filter results when set; ``delay_s`` delays every answer
    (to exceed the scheduler's httpTimeout); ``status`` other than 200 makes every call fail.
    Every request body is recorded in ``calls`` as ``(verb, decoded JSON)``.
    """

    def __init__(self, port: int):
        self.port = port
        self.allow: set[str] | None = None
        self.delay_s = 0.0
        self.status = 200
        self.calls: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real extender server would
            # headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm
            # and the client's delayed ACK hold each reply ~40 ms (90 ms per pod, measured)
            disable_nagle_algorithm = True

            def setup(self) -> None:
                super().setup()
                with stub._lock:
                    stub._conns.add(self.connection)

            def finish(self) -> None:
                with stub._lock:
                    stub._conns.discard(self.connection)
                super().finish()

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"null")
                verb = self.path.rstrip("/").rsplit("/", 1)[-1]
                with stub._lock:
                    stub.calls.append((verb, body))
                if stub.delay_s:
                    time.sleep(stub.delay_s)
                if stub.status != 200:
                    self.send_response(stub.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                names = list((body or {}).get("NodeNames") or [])
                if verb == "filter":
                    keep = [n for n in names if stub.allow is None or n in stub.allow]
                    reply: Any = {"NodeNames": keep, "FailedNodes": {n: "stub: not allowed" for n in names
                                                                     if n not in keep}, "Error": ""}
                else:
                    reply = [{"Host": n, "Score": 0} for n in names]
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # e.g. the scheduler hung up on a deliberately slow answer

        self._server = Server(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"stub-extender-{port}",
                                        daemon=True)

    def __enter__(self) -> StubExtender:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        # Also end kept-alive connections, or the scheduler would keep talking to this stub.
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)

    def verbs(self) -> list[str]:
        with self._lock:
            return [v for v, _ in self.calls]
