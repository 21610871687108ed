"""The extender over real HTTP (uvicorn on loopback): routing, error contract, probes, metrics."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from casa_sched.devcluster.payloads import args_names, plan_doc, real_pod
from casa_sched.extender.app import Routes
from tests.extender.support import Harness, LiveServer

NODES = ["n1", "n2"]


def post(url: str, body: bytes | str, **kw: Any) -> httpx.Response:
    return httpx.post(url, content=body, headers={"Content-Type": "application/json"}, timeout=10, **kw)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"", "not valid JSON", id="empty"),
        pytest.param(b"{", "not valid JSON", id="truncated"),
        pytest.param(b"\xff\xfe{}", "not valid JSON", id="not-utf8"),
        pytest.param(b'{"Pod": {}, "NodeNames": [], "x": NaN}', "NaN is not a JSON value", id="nan-token"),
        pytest.param(b"[]", "must be a JSON object", id="array"),
        pytest.param(b"null", "must be a JSON object", id="null"),
        pytest.param(b"{}", "ExtenderArgs.Pod: required", id="no-pod"),
        pytest.param(b'{"Pod": "x"}', "ExtenderArgs.Pod: expected an object", id="pod-string"),
        pytest.param(b'{"Pod": {}, "NodeNames": "n1"}', "NodeNames: expected an array", id="names-string"),
        pytest.param(b'{"Pod": {}, "NodeNames": [1]}', "NodeNames[0]: expected a string", id="names-int"),
        pytest.param(b'{"Pod": {}, "Nodes": []}', "Nodes: expected a NodeList", id="nodes-array"),
        pytest.param(b'{"Pod": {}, "Nodes": {"items": [{}]}}', "items[0].metadata: required", id="node-no-meta"),
        pytest.param(
            b'{"Pod": {"metadata": {"labels": {"a": 1}}}}', "Pod.metadata.labels.a: expected a string", id="label-int"
        ),
        pytest.param(
            b'{"Pod": {"spec": {"containers": [{"resources": {"requests": {"cpu": "lots"}}}]}}}',
            "not a Kubernetes quantity",
            id="bad-quantity",
        ),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, "nested too deeply", id="deep-nesting"),
        pytest.param(b'{"Pod": {}, "NodeNames": [' + b"1" * 5000 + b"]}", "", id="huge-int-literal"),
    ],
)
@pytest.mark.parametrize("verb", ["filter", "prioritize"])
def test_malformed_requests_get_400_with_a_json_message(live: LiveServer, verb: str, body: bytes, message: str) -> None:
    r = post(f"{live.url}/{verb}", body)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/json"
    assert message in r.json()["error"]


def test_huge_body_is_refused_with_413(
    harness: Harness, live_server_factory: Callable[[Harness, Routes | None], LiveServer]
) -> None:
    live = live_server_factory(harness, Routes())  # 1 MiB limit
    big = json.dumps(args_names(real_pod(), [f"node-{i:07d}" for i in range(100_000)]))  # ~1.6 MB
    r = post(f"{live.url}/filter", big)
    assert r.status_code == 413
    assert "exceeds the limit" in r.json()["error"]

    def chunks() -> Any:  # no Content-Length: the limit applies while streaming
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536].encode()

    r = httpx.post(f"{live.url}/filter", content=chunks(), timeout=10)
    assert r.status_code == 413


def test_url_prefix_and_verbs_are_configurable(
    harness: Harness, live_server_factory: Callable[[Harness, Routes | None], LiveServer]
) -> None:
    live = live_server_factory(harness, Routes(url_prefix="/casa/", filter_verb="f", prioritize_verb="p"))
    body = json.dumps(args_names(real_pod(), NODES))
    assert post(f"{live.url}/casa/f", body).json()["NodeNames"] == NODES
    assert post(f"{live.url}/casa/p", body).json() == []
    assert post(f"{live.url}/filter", body).status_code == 404
    paths = httpx.get(f"{live.url}/openapi.json").json()["paths"]
    assert {"/casa/f", "/casa/p"} <= set(paths)


def test_probes_metrics_and_openapi(live: LiveServer) -> None:
    assert httpx.get(f"{live.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{live.url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["plan"] == "missing"
    live.harness.load_plan(plan_doc({"thumbnail": ["n1"]}))
    post(f"{live.url}/filter", json.dumps(args_names(real_pod(), NODES)))
    text = httpx.get(f"{live.url}/metrics").text
    assert 'casa_extender_request_seconds_bucket{le="0.005",verb="filter"}' in text
    assert 'casa_extender_requests_total{code="200",verb="filter"} 1.0' in text
    assert [httpx.get(f"{live.url}{page}").status_code for page in ("/docs", "/redoc")] == [404, 404]
    spec = httpx.get(f"{live.url}/openapi.json").json()
    assert {"/filter", "/prioritize", "/healthz", "/readyz", "/metrics"} <= set(spec["paths"])
    assert spec["paths"]["/filter"]["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ExtenderArgs"
    }


def test_readyz_is_503_until_the_watches_have_synced(
    harness: Harness, live_server_factory: Callable[[Harness, Routes | None], LiveServer]
) -> None:
    synced = {"pods_synced": False}
    harness.app = __import__("casa_sched.extender.app", fromlist=["create_app"]).create_app(
        harness.state, harness.metrics, readiness=lambda: dict(synced)
    )
    live = live_server_factory(harness, None)
    assert httpx.get(f"{live.url}/readyz").status_code == 503
    synced["pods_synced"] = True
    assert httpx.get(f"{live.url}/readyz").status_code == 200


def test_the_fastapi_routes_serve_the_verbs_too(live: LiveServer) -> None:
    """Without the HotPathApp front door (e.g. mounted elsewhere) the Starlette routes answer."""
    import asyncio

    transport = httpx.ASGITransport(app=live.harness.app)

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
            return await c.post("/filter", content=json.dumps(args_names(real_pod(), NODES)))

    r = asyncio.run(go())
    assert r.status_code == 200
    assert r.json()["NodeNames"] == NODES
