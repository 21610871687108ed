"""The HTTP service kube-scheduler calls: ``POST <prefix>/filter``, ``POST <prefix>/prioritize``.

Also ``GET /healthz`` (process alive), ``GET /readyz`` (watches synced and plan source read once;
503 otherwise), ``GET /metrics`` (Prometheus) and ``GET /openapi.json``.

The two hot verbs are plain Starlette routes: no FastAPI dependency resolution, no pydantic
validation of the (large) Pod and NodeList; the body is read with a size cap, parsed with
:mod:`json` and only the fields we use are checked (:mod:`casa_sched.extender.wire`). Their
OpenAPI operations are written by hand from the same schemas the parser enforces.

Error contract: a malformed request is answered ``400 {"error": "..."}`` (``413`` when the body
exceeds ``max_body_bytes``); anything that goes wrong *inside* a decision fails open: ``200``
with every node and neutral scores, counted in ``casa_extender_fail_open_total{reason}``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from casa_sched.extender.decide import FailOpenReason, decide_filter, decide_prioritize
from casa_sched.extender.state import ExtenderState
from casa_sched.extender.wire import (
    BadRequestError,
    ExtenderArgs,
    encode_error,
    encode_filter,
    encode_prioritize,
    openapi_components,
    parse_args,
)
from casa_sched.metrics import CONTENT_TYPE_LATEST, CasaMetrics

log = logging.getLogger(__name__)

# A NodeList of 5,000 real nodes (with managedFields and images) is ~40 MB of JSON.
DEFAULT_MAX_BODY_BYTES = 64 * 2**20
JSON = "application/json"


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    plan: str
    detail: dict[str, bool]


@dataclass(frozen=True)
class Routes:
    """Paths of the two verbs: ``url_prefix`` + ``/`` + verb (kube-scheduler's URL rule)."""

    url_prefix: str = ""
    filter_verb: str = "filter"
    prioritize_verb: str = "prioritize"

    @staticmethod
    def _join(prefix: str, verb: str) -> str:
        p = prefix.strip().rstrip("/")
        if p and not p.startswith("/"):
            p = "/" + p
        return f"{p}/{verb.strip('/')}"

    @property
    def filter_path(self) -> str:
        return self._join(self.url_prefix, self.filter_verb)

    @property
    def prioritize_path(self) -> str:
        return self._join(self.url_prefix, self.prioritize_verb)


class Extender:
    """Turns request bodies into replies; owns timing, counting and failing open."""

    def __init__(self, state: ExtenderState, metrics: CasaMetrics) -> None:
        self.state = state
        self.metrics = metrics
        self._latency = {v: metrics.extender_request_seconds.labels(verb=v) for v in ("filter", "prioritize")}
        self._codes: dict[tuple[str, int], Any] = {}
        self._fail_open = {
            r: metrics.extender_fail_open_total.labels(reason=r)
            for r in ("plan_missing", "plan_stale", "plan_invalid", "internal_error")
        }

    def _count(self, verb: str, code: int, started: float) -> None:
        self._latency[verb].observe(time.perf_counter() - started)
        child = self._codes.get((verb, code))
        if child is None:
            child = self._codes[(verb, code)] = self.metrics.extender_requests_total.labels(verb=verb, code=str(code))
        child.inc()

    def _failed_open(self, reason: FailOpenReason | None) -> None:
        if reason is None:
            return
        self._fail_open[reason].inc()
        if reason == "plan_stale":
            self.metrics.plan_stale_total.inc()

    def filter(self, body: bytes) -> tuple[int, bytes]:
        started = time.perf_counter()
        try:
            args = parse_args(body)
        except BadRequestError as exc:
            self._count("filter", exc.status, started)
            return exc.status, encode_error(str(exc))
        except Exception as exc:  # a parser bug must still not become a 500
            log.exception("could not parse a filter request")
            self._count("filter", 400, started)
            return 400, encode_error(f"request could not be parsed: {type(exc).__name__}")
        try:
            state = self.state
            with state.lock:
                out = decide_filter(state, args.pod, args.names, args.node_infos, state.clock())
            payload = encode_filter(args, out.kept, out.failed, out.unresolvable)
            reason = out.fail_open
        except Exception:
            log.exception("filter failed; failing open")
            payload, reason = encode_filter(args, list(range(len(args.names))), {}, {}), "internal_error"
        self._failed_open(reason)
        self._count("filter", 200, started)
        return 200, payload

    def prioritize(self, body: bytes) -> tuple[int, bytes]:
        started = time.perf_counter()
        try:
            args: ExtenderArgs = parse_args(body)
        except BadRequestError as exc:
            self._count("prioritize", exc.status, started)
            return exc.status, encode_error(str(exc))
        except Exception as exc:  # a parser bug must still not become a 500
            log.exception("could not parse a prioritize request")
            self._count("prioritize", 400, started)
            return 400, encode_error(f"request could not be parsed: {type(exc).__name__}")
        try:
            state = self.state
            with state.lock:
                out = decide_prioritize(state, args.pod, args.names, args.node_infos, state.clock())
            payload = encode_prioritize(out.scores)
            reason = out.fail_open
        except Exception:
            log.exception("prioritize failed; failing open")
            payload, reason = encode_prioritize({}), "internal_error"  # every node: neutral 0
        self._failed_open(reason)
        self._count("prioritize", 200, started)
        return 200, payload


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise BadRequestError(f"invalid Content-Length header: {declared[:40]!r}") from None
        if size > limit:
            raise BadRequestError(f"request body of {size} bytes exceeds the limit of {limit} bytes", status=413)
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise BadRequestError(f"request body exceeds the limit of {limit} bytes", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def _verb_endpoint(
    handler: Callable[[bytes], tuple[int, bytes]], limit: int
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            body = await _read_body(request, limit)
        except BadRequestError as exc:
            return Response(encode_error(str(exc)), status_code=exc.status, media_type=JSON)
        except ClientDisconnect:
            return Response(status_code=400)
        status, payload = handler(body)
        return Response(payload, status_code=status, media_type=JSON)

    return endpoint


class HotPathApp:
    """ASGI front door: the two verbs are answered here without Starlette's request machinery
    (middleware stack, routing, Request objects); everything else goes to the FastAPI app,
    whose own routes for the verbs (same handlers) serve tests and the OpenAPI document."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.hot: dict[str, Callable[[bytes], tuple[int, bytes]]] = app.state.hot_handlers
        self.limit: int = app.state.max_body_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            handler = self.hot.get(scope["path"])
            if handler is not None:
                await self._serve(handler, scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _serve(self, handler: Callable[[bytes], tuple[int, bytes]], scope: Any, receive: Any, send: Any) -> None:
        limit = self.limit
        status, payload = 0, b""
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    status, payload = 400, encode_error("invalid Content-Length header")
                    break
                if declared > limit:
                    status = 413
                    payload = encode_error(f"request body of {declared} bytes exceeds the limit of {limit} bytes")
                break
        if not status:
            chunks: list[bytes] = []
            total = 0
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                total += len(chunk)
                if total > limit:
                    status, payload = 413, encode_error(f"request body exceeds the limit of {limit} bytes")
                    break
                chunks.append(chunk)
                more = message.get("more_body", False)
            if not status:
                status, payload = handler(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _verb_operation(op_id: str, summary: str, reply: str, limit: int) -> dict[str, Any]:
    def err(desc: str) -> dict[str, Any]:
        return {"description": desc, "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}

    return {
        "post": {
            "operationId": op_id,
            "summary": summary,
            "tags": ["kube-scheduler extender"],
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": {"$ref": "#/components/schemas/ExtenderArgs"}}},
            },
            "responses": {
                "200": {
                    "description": "Decision (also when failing open: all nodes, neutral scores).",
                    "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{reply}"}}},
                },
                "400": err("Malformed ExtenderArgs: not JSON, or a field we read has the wrong type."),
                "413": err(f"Request body larger than {limit} bytes."),
            },
        }
    }


def create_app(
    state: ExtenderState,
    metrics: CasaMetrics,
    *,
    routes: Routes | None = None,
    readiness: Callable[[], dict[str, bool]] | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """The ASGI app. ``readiness`` returns named checks; /readyz is 200 when all are true."""
    routes = routes or Routes()
    extender = Extender(state, metrics)
    app = FastAPI(
        title="casa-sched scheduler extender",
        version="0.1.0",
        description="Carbon- and SLO-aware kube-scheduler extender (k8s.io/kube-scheduler/extender/v1 wire format).",
    )
    app.state.extender = extender
    app.state.hot_handlers = {routes.filter_path: extender.filter, routes.prioritize_path: extender.prioritize}
    app.state.max_body_bytes = max_body_bytes
    app.router.routes.append(
        Route(
            routes.filter_path,
            _verb_endpoint(extender.filter, max_body_bytes),
            methods=["POST"],
            include_in_schema=False,
        )
    )
    app.router.routes.append(
        Route(
            routes.prioritize_path,
            _verb_endpoint(extender.prioritize, max_body_bytes),
            methods=["POST"],
            include_in_schema=False,
        )
    )

    @app.get("/healthz", response_model=Health, summary="Liveness: the process serves HTTP.")
    async def healthz() -> Health:
        return Health(status="ok")

    @app.get(
        "/readyz",
        response_model=Readiness,
        summary="Readiness: watches synced and the plan source read once (the plan itself may be missing).",
        responses={503: {"model": Readiness, "description": "Not ready yet."}},
    )
    async def readyz() -> Response:
        checks = readiness() if readiness is not None else {}
        ok = all(checks.values())
        body = Readiness(ready=ok, plan=state.plan_status, detail=checks).model_dump_json().encode()
        return Response(body, status_code=200 if ok else 503, media_type=JSON)

    @app.get(
        "/metrics",
        summary="Prometheus metrics (text exposition format).",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Metrics."}},
    )
    async def prometheus_metrics() -> Response:
        extender.metrics.extender_assumed_pods.set(len(state.assumed))
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schema.setdefault("components", {}).setdefault("schemas", {}).update(openapi_components())
            paths = schema.setdefault("paths", {})
            paths[routes.filter_path] = _verb_operation(
                "filter", "Keep the nodes the pod may go to.", "ExtenderFilterResult", max_body_bytes
            )
            paths[routes.prioritize_path] = _verb_operation(
                "prioritize", "Score each node 0..10.", "HostPriorityList", max_body_bytes
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
