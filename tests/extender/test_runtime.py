"""One extender process as build_runtime wires it: why a plan is unusable (log, /readyz, metric)
and HTTPS with a certificate and key from the settings."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from casa_sched.devcluster.payloads import args_names, plan_doc, real_pod
from casa_sched.extender.app import HotPathApp
from casa_sched.extender.runtime import Runtime, TLSConfigError, build_runtime
from casa_sched.settings import ExtenderSettings, SettingsError, load_settings


def get(runtime: Runtime, path: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=runtime.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
            return await c.get(path)

    return asyncio.run(go())


def plan_info(runtime: Runtime) -> dict[str, str]:
    """Labels of the one casa_extender_plan_info series (value 1)."""
    [metric] = [m for m in runtime.metrics.registry.collect() if m.name == "casa_extender_plan_info"]
    [sample] = metric.samples
    assert sample.value == 1.0
    return dict(sample.labels)


def test_an_invalid_plan_says_why_in_the_log_readyz_and_metrics(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text('{"version": 1, "epoch": 3')  # cut short
    runtime = build_runtime(ExtenderSettings(plan_file=plan), api_client=None)
    assert plan_info(runtime) == {"status": "missing", "reason": "no plan loaded yet"}
    assert runtime.plan_file is not None
    with caplog.at_level(logging.WARNING, logger="casa_sched.extender.runtime"):
        runtime.plan_file.check()  # one poll of the file, as the polling thread does
    ready = get(runtime, "/readyz").json()
    assert ready["plan"] == "invalid"
    reason = ready["plan_reason"]
    assert str(plan) in reason  # which source, and what is wrong with it:
    assert "JSON" in reason
    assert plan_info(runtime) == {"status": "invalid", "reason": reason[:200]}
    assert any(f"no usable plan (invalid: {reason})" in r.getMessage() for r in caplog.records)

    plan.write_text(plan_doc({"thumbnail": ["n1"]}))
    runtime.plan_file.check()
    assert get(runtime, "/readyz").json()["plan"] == "ok"
    assert plan_info(runtime)["status"] == "ok"  # the invalid series is gone


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and the Service's DNS name, and its key."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "openssl is installed by .ci/system-deps.sh"
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "tls.crt", d / "tls.key"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=casa-extender"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:casa-extender.casa-system.svc"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def https_runtime(tls_files: tuple[Path, Path]) -> Iterator[tuple[Runtime, int]]:
    cert, key = tls_files
    runtime = build_runtime(ExtenderSettings(tls_cert_file=cert, tls_key_file=key), api_client=None)
    port = _free_port()
    options = runtime.uvicorn_options() | {"log_level": "error"}
    config = uvicorn.Config(HotPathApp(runtime.app), host="127.0.0.1", port=port, lifespan="off", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield runtime, port
    server.should_exit = True
    thread.join(5)


def test_https_serves_the_verbs_to_a_client_that_trusts_the_certificate(
    https_runtime: tuple[Runtime, int], tls_files: tuple[Path, Path]
) -> None:
    _, port = https_runtime
    trust = ssl.create_default_context(cafile=str(tls_files[0]))
    with httpx.Client(verify=trust, timeout=10) as c:
        r = c.post(f"https://127.0.0.1:{port}/filter", content=json.dumps(args_names(real_pod(), ["n1", "n2"])))
        assert r.status_code == 200
        assert r.json()["NodeNames"] == ["n1", "n2"]  # no plan: every node (fail open)
        assert c.get(f"https://127.0.0.1:{port}/readyz").status_code == 200
    with pytest.raises(httpx.ConnectError):  # a client that does not trust it is refused
        httpx.get(f"https://127.0.0.1:{port}/healthz", timeout=10)
    with pytest.raises(httpx.RemoteProtocolError):  # plain HTTP is not served on the TLS port
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)


def test_unusable_tls_files_are_refused_before_anything_starts(tls_files: tuple[Path, Path], tmp_path: Path) -> None:
    cert, key = tls_files
    with pytest.raises(SettingsError, match="tls_cert_file and tls_key_file must be set together"):
        load_settings(None, {"extender.tls_cert_file": str(cert)})
    missing = tmp_path / "nope.key"
    with pytest.raises(TLSConfigError, match=f"extender.tls_key_file {missing}: no such file"):
        build_runtime(ExtenderSettings(tls_cert_file=cert, tls_key_file=missing), api_client=None)
    other = tmp_path / "other.key"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(other)],
        check=True,
        capture_output=True,
    )
    with pytest.raises(TLSConfigError, match="not a PEM certificate and its matching private key"):
        build_runtime(ExtenderSettings(tls_cert_file=cert, tls_key_file=other), api_client=None)
    with pytest.raises(TLSConfigError, match="not a PEM certificate"):
        build_runtime(ExtenderSettings(tls_cert_file=key, tls_key_file=key), api_client=None)
