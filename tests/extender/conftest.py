"""Fixtures for the extender tests: a state with a plan, and a real uvicorn server on loopback."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Test modules import their helpers as tests.extender.support (importlib mode does not
# put the repository root on sys.path).
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import uvicorn  # noqa: E402

from casa_sched.extender.app import HotPathApp, Routes, create_app  # noqa: E402
from casa_sched.extender.state import ExtenderState  # noqa: E402
from casa_sched.metrics import CasaMetrics  # noqa: E402
from tests.extender.support import FakeClock, Harness, LiveServer  # noqa: E402


@pytest.fixture
def harness() -> Harness:
    """A state with a fake clock (plans of payloads.plan_doc() are fresh) and its FastAPI app."""
    clock = FakeClock()
    metrics = CasaMetrics()
    state = ExtenderState(clock=clock)
    app = create_app(state, metrics, readiness=lambda: {"test": True})
    return Harness(state=state, metrics=metrics, app=app, clock=clock)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_server_factory() -> Iterator[Callable[[Harness, Routes | None], LiveServer]]:
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(h: Harness, routes: Routes | None = None) -> LiveServer:
        if routes is not None:
            h.app = create_app(
                h.state, h.metrics, routes=routes, readiness=lambda: {"test": True}, max_body_bytes=1 << 20
            )
        port = _free_port()
        config = uvicorn.Config(
            HotPathApp(h.app),
            host="127.0.0.1",
            port=port,
            log_level="error",
            access_log=False,
            ws="none",
            lifespan="off",
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        servers.append((server, thread))
        return LiveServer(url=f"http://127.0.0.1:{port}", harness=h)

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(5)


@pytest.fixture
def live(harness: Harness, live_server_factory: Callable[[Harness, Routes | None], LiveServer]) -> LiveServer:
    return live_server_factory(harness, None)
