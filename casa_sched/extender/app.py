"""The HTTP service kube-scheduler calls: ``POST <prefix>/filter``, ``POST <prefix>/prioritize``.

Also ``GET /healthz`` (process alive), ``GET /readyz`` (watches synced and plan source read once;
503 otherwise), ``GET /metrics`` (Prometheus) and ``GET /openapi.json``.

The two hot verbs are plain Starlette routes: no FastAPI dependency resolution, no pydantic
validation of the (large) Pod and NodeList; the body is read with a size cap, parsed with
:mod:`json` and only the fields we use are checked (:mod:`casa_sched.extender.wire`). Their
OpenAPI operations are written by hand from the same schemas the parser enforces.

Error contract: a malformed request is answered ``400 {"error": "..."}`` — including node names
that are not Kubernetes node names and more than ``max_nodes`` nodes (:mod:`casa_sched.extender.wire`)
— ``413`` when the body exceeds ``max_body_bytes`` and ``429`` when the bodies of all requests in
progress would pass twice that (:class:`InFlightBodies`), ``408`` when a body is not whole within
``BODY_TIMEOUT_S``; anything that goes wrong *inside* a
decision fails open: ``200`` with every node and neutral scores, counted in
``casa_extender_fail_open_total{reason}``. Every answer of a verb, whatever its status, is counted
in ``casa_extender_requests_total{verb,code}``; ``casa_extender_request_seconds`` times those
whose body was read whole. A client that disconnects before sending its body gets no answer and
is not counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive

from casa_sched.extender.decide import FilterOutcome, PrioritizeOutcome, decide_filter, decide_prioritize
from casa_sched.extender.state import ExtenderState
from casa_sched.extender.wire import (
    DEFAULT_MAX_NODES,
    BadRequestError,
    ExtenderArgs,
    encode_error,
    encode_filter,
    encode_prioritize,
    openapi_components,
    parse_args,
)
from casa_sched.kube.objects import NodeInfo, PodInfo
from casa_sched.metrics import CONTENT_TYPE_LATEST, CasaMetrics, FailOpenReason
from casa_sched.settings import ExtenderSettings

log = logging.getLogger(__name__)

# The setting extender.max_body_bytes says why it is what it is.
DEFAULT_MAX_BODY_BYTES = ExtenderSettings().max_body_bytes
JSON = "application/json"
VERBS = ("filter", "prioritize")


class InFlightBodies:
    """Bytes of request bodies held by all requests in progress, bounded by ``limit_bytes``.

    One body is capped at ``max_body_bytes``, but many clients streaming large bodies at once
    would each hold their own; past this budget a body is refused with 429 (kube-scheduler sends
    one extender call at a time, so its calls never meet the budget). Requests are read on the
    event loop's one thread, so the count needs no lock."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self.held_bytes = 0

    def take(self, n: int) -> None:
        if self.held_bytes + n > self.limit_bytes:
            raise BadRequestError(
                f"request bodies in flight would pass {self.limit_bytes} bytes; retry later", status=429
            )
        self.held_bytes += n

    def give_back(self, n: int) -> None:
        self.held_bytes -= n


IN_FLIGHT_BODIES_PER_LIMIT = 2  # the in-flight budget, in bodies of the largest size allowed
# A body still arriving after this long is dropped (408), so a client that sends slowly or stops
# cannot hold its share of the in-flight budget: kube-scheduler's httpTimeout ends its own calls
# far sooner (manifests: 1 s).
BODY_TIMEOUT_S = 30.0


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    plan: str  # ok | missing | invalid
    plan_reason: str  # the plan source's words, e.g. why the plan is invalid
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


class _Outcome(Protocol):
    """What a decision returns (:class:`FilterOutcome`, :class:`PrioritizeOutcome`)."""

    @property
    def fail_open(self) -> FailOpenReason | None: ...

    @property
    def assume(self) -> tuple[PodInfo, str] | None: ...


Out = TypeVar("Out", bound=_Outcome)
Handler = Callable[[bytes], tuple[int, bytes]]  # request body -> (HTTP status, reply body)
Decide = Callable[[ExtenderState, PodInfo, list[str], list[NodeInfo] | None, float], Out]


def _encode_filter(args: ExtenderArgs, out: FilterOutcome) -> bytes:
    return encode_filter(args, out.kept, out.failed, out.unresolvable)


def _neutral_filter(args: ExtenderArgs) -> bytes:
    return encode_filter(args, list(range(len(args.names))), {}, {})  # every node kept


def _encode_prioritize(_: ExtenderArgs, out: PrioritizeOutcome) -> bytes:
    return encode_prioritize(out.scores)


def _neutral_prioritize(_: ExtenderArgs) -> bytes:
    return encode_prioritize({})  # every node: the neutral score 0


class Extender:
    """Turns request bodies into replies; owns timing, counting and failing open."""

    def __init__(
        self,
        state: ExtenderState,
        metrics: CasaMetrics,
        *,
        max_nodes: int = DEFAULT_MAX_NODES,
        in_flight_bytes: int = IN_FLIGHT_BODIES_PER_LIMIT * DEFAULT_MAX_BODY_BYTES,
        body_timeout_s: float = BODY_TIMEOUT_S,
    ) -> None:
        self.state = state
        self.metrics = metrics
        self.max_nodes = max_nodes
        self.in_flight = InFlightBodies(in_flight_bytes)
        self.body_timeout_s = body_timeout_s
        self._latency = {v: metrics.extender_request_seconds.labels(verb=v) for v in VERBS}
        self._codes: dict[tuple[str, int], Any] = {}
        self._fail_open = {r: metrics.extender_fail_open_total.labels(reason=r) for r in FailOpenReason}

    def count(self, verb: str, code: int) -> None:
        """One more answer of ``code`` to ``verb`` in ``casa_extender_requests_total``."""
        child = self._codes.get((verb, code))
        if child is None:
            child = self._codes[(verb, code)] = self.metrics.extender_requests_total.labels(verb=verb, code=str(code))
        child.inc()

    def refuse(self, verb: str, exc: BadRequestError) -> tuple[int, bytes]:
        """The reply to a request refused before its body was read whole (400, 408, 413, 429); counted."""
        self.count(verb, exc.status)
        return exc.status, encode_error(str(exc))

    def filter(self, body: bytes) -> tuple[int, bytes]:
        return self._handle("filter", decide_filter, _encode_filter, _neutral_filter, body)

    def prioritize(self, body: bytes) -> tuple[int, bytes]:
        return self._handle("prioritize", decide_prioritize, _encode_prioritize, _neutral_prioritize, body)

    def _handle(
        self,
        verb: str,
        decide: Decide[Out],
        encode: Callable[[ExtenderArgs, Out], bytes],
        neutral_payload: Callable[[ExtenderArgs], bytes],
        body: bytes,
    ) -> tuple[int, bytes]:
        """Parse, decide under the lock, apply the decision's assumption, encode; fail open on
        any error inside (200, ``neutral_payload``), never a 500."""
        started = time.perf_counter()
        try:
            args = parse_args(body, self.max_nodes)
        except BadRequestError as exc:
            status, payload = exc.status, encode_error(str(exc))
        except Exception as exc:  # a parser bug must still not become a 500
            log.exception("could not parse a %s request", verb)
            status, payload = 400, encode_error(f"request could not be parsed: {type(exc).__name__}")
        else:
            status = 200
            reason: FailOpenReason | None
            try:
                state = self.state
                pod = args.pod
                with state.lock:
                    now = state.clock()
                    state.expire_assumed_locked(now)
                    state.forget_locked(pod.key)  # a new scheduling attempt voids the previous guess
                    out = decide(state, pod, args.names, args.node_infos, now)
                    if out.assume is not None:
                        state.assume_locked(*out.assume, now)
                payload = encode(args, out)
                reason = out.fail_open
            except Exception:
                log.exception("%s failed; failing open", verb)
                payload, reason = neutral_payload(args), FailOpenReason.INTERNAL_ERROR
            if reason is not None:
                self._fail_open[reason].inc()
                if reason is FailOpenReason.PLAN_STALE:
                    self.metrics.plan_stale_total.inc()
        self._latency[verb].observe(time.perf_counter() - started)
        self.count(verb, status)
        return status, payload


async def read_capped_body(
    receive: Receive,
    headers: Iterable[tuple[bytes, bytes]],
    limit: int,
    in_flight: InFlightBodies | None = None,
    timeout_s: float | None = None,
) -> bytes:
    """The request body from ASGI ``receive``, refused with :class:`BadRequestError` (413) as soon
    as ``Content-Length`` or the bytes received exceed ``limit`` (400 for an unreadable
    Content-Length), (429) when ``in_flight`` has no room for its bytes, or (408) when it is not
    whole within ``timeout_s`` (counted from its first chunk: a body in one message, the usual
    case, costs no timer); :class:`ClientDisconnect`
    when the client goes away first. On success the body's bytes stay taken from ``in_flight``:
    the caller gives them back once the body is answered; on failure they are given back here."""
    for name, value in headers:
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                raise BadRequestError(f"invalid Content-Length header: {value[:40]!r}") from None
            if declared > limit:
                raise BadRequestError(
                    f"request body of {declared} bytes exceeds the limit of {limit} bytes", status=413
                )
            break
    chunks: list[bytes] = []
    total = 0
    more = True
    deadline: float | None = None
    try:
        while more:
            if deadline is None:  # the first chunk: nothing of the budget is held yet
                message = await receive()
            else:
                try:
                    message = await asyncio.wait_for(receive(), deadline - asyncio.get_running_loop().time())
                except TimeoutError:
                    raise BadRequestError(f"request body not received within {timeout_s:g} s", status=408) from None
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            chunk = message.get("body", b"")
            if total + len(chunk) > limit:
                raise BadRequestError(f"request body exceeds the limit of {limit} bytes", status=413)
            if in_flight is not None:
                in_flight.take(len(chunk))
            total += len(chunk)
            chunks.append(chunk)
            more = message.get("more_body", False)
            if more and deadline is None and timeout_s is not None:
                deadline = asyncio.get_running_loop().time() + timeout_s
    except BaseException:
        if in_flight is not None:
            in_flight.give_back(total)
        raise
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def answer(
    extender: Extender,
    verb: str,
    handler: Handler,
    receive: Receive,
    headers: Iterable[tuple[bytes, bytes]],
    limit: int,
) -> tuple[int, bytes] | None:
    """Read the body (capped, within the extender's in-flight budget) and answer it; None when
    the client disconnected first."""
    try:
        body = await read_capped_body(receive, headers, limit, extender.in_flight, extender.body_timeout_s)
    except BadRequestError as exc:
        return extender.refuse(verb, exc)
    except ClientDisconnect:
        return None
    try:
        return handler(body)
    finally:
        extender.in_flight.give_back(len(body))


@dataclass(frozen=True)
class _Verb:
    name: str  # "filter" | "prioritize": the metrics' verb label
    handler: Handler


def _verb_endpoint(extender: Extender, verb: _Verb, limit: int) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        reply = await answer(extender, verb.name, verb.handler, request.receive, request.scope["headers"], limit)
        if reply is None:
            return Response(status_code=400)  # nobody is listening any more
        return Response(reply[1], status_code=reply[0], media_type=JSON)

    return endpoint


class HotPathApp:
    """ASGI front door: the two verbs are answered here without Starlette's request machinery
    (middleware stack, routing, Request objects); everything else goes to the FastAPI app,
    whose own routes for the verbs (same reader, same handlers) serve tests and the OpenAPI
    document."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.extender: Extender = app.state.extender
        self.hot: dict[str, _Verb] = app.state.hot_verbs
        self.limit: int = app.state.max_body_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            verb = self.hot.get(scope["path"])
            if verb is not None:
                reply = await answer(self.extender, verb.name, verb.handler, receive, scope["headers"], self.limit)
                if reply is None:
                    return
                status, payload = reply
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))],
                    }
                )
                await send({"type": "http.response.body", "body": payload})
                return
        await self.app(scope, receive, send)


def _verb_operation(op_id: str, summary: str, reply: str, limit: int, max_nodes: int) -> dict[str, Any]:
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
                "400": err(
                    "Malformed ExtenderArgs: not JSON, a field we read has the wrong type, a node name is not "
                    f"a Kubernetes node name, or more than {max_nodes} nodes."
                ),
                "413": err(f"Request body larger than {limit} bytes."),
                "408": err(f"Request body not received within {BODY_TIMEOUT_S:g} s."),
                "429": err(
                    f"Request bodies in flight (all clients) would pass {IN_FLIGHT_BODIES_PER_LIMIT * limit} bytes."
                ),
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
    max_nodes: int = DEFAULT_MAX_NODES,
    body_timeout_s: float = BODY_TIMEOUT_S,
) -> FastAPI:
    """The ASGI app. ``readiness`` returns named checks; /readyz is 200 when all are true.
    Requests with a body over ``max_body_bytes`` get 413, with more than ``max_nodes`` nodes 400."""
    routes = routes or Routes()
    extender = Extender(
        state,
        metrics,
        max_nodes=max_nodes,
        in_flight_bytes=IN_FLIGHT_BODIES_PER_LIMIT * max_body_bytes,
        body_timeout_s=body_timeout_s,
    )
    app = FastAPI(
        title="casa-sched scheduler extender",
        version="0.1.0",
        description="Carbon- and SLO-aware kube-scheduler extender (k8s.io/kube-scheduler/extender/v1 wire format).",
        # the schema stays at /openapi.json; the Swagger and ReDoc pages load scripts from a CDN
        # and are nothing kube-scheduler needs
        docs_url=None,
        redoc_url=None,
    )
    verbs = {
        routes.filter_path: _Verb("filter", extender.filter),
        routes.prioritize_path: _Verb("prioritize", extender.prioritize),
    }
    app.state.extender = extender
    app.state.hot_verbs = verbs
    app.state.max_body_bytes = max_body_bytes
    for path, verb in verbs.items():
        app.router.routes.append(
            Route(path, _verb_endpoint(extender, verb, max_body_bytes), methods=["POST"], include_in_schema=False)
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
        body = (
            Readiness(ready=ok, plan=state.plan_status, plan_reason=state.plan_detail, detail=checks)
            .model_dump_json()
            .encode()
        )
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
            schema.setdefault("components", {}).setdefault("schemas", {}).update(openapi_components(max_nodes))
            paths = schema.setdefault("paths", {})
            paths[routes.filter_path] = _verb_operation(
                "filter", "Keep the nodes the pod may go to.", "ExtenderFilterResult", max_body_bytes, max_nodes
            )
            paths[routes.prioritize_path] = _verb_operation(
                "prioritize", "Score each node 0..10.", "HostPriorityList", max_body_bytes, max_nodes
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
