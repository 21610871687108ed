"""OpenFaaS functions as workloads, scaled through the gateway's REST API.

What the gateway and faas-netes (the Kubernetes provider) do, read from their source
(``openfaas/faas`` gateway and ``openfaas/faas-netes`` Community Edition, 2026):

- ``GET /system/functions?namespace=NS`` lists ``FunctionStatus`` objects: ``name``,
  ``namespace``, ``replicas`` (the Deployment's ``spec.replicas``; omitted when 0),
  ``availableReplicas``, ``labels`` and ``annotations`` (those of the Deployment's *pod
  template*, where ``com.openfaas.scale.*`` live). ``GET /system/function/{name}`` returns one,
  or 404.
- ``POST /system/scale-function/{name}?namespace=NS`` with ``{"serviceName", "replicas",
  "namespace"}`` answers 202. The gateway raises ``replicas`` < 1 to 1 and lowers > 5 to 5;
  faas-netes CE refuses 0 (400) and caps at 5, and answers 500 (not 404) for a function that
  does not exist, which is why :meth:`OpenFaasAdapter.scale` reads the function first.
- faas-netes CE also resets any function Deployment at 0 replicas to 1 and above 5 to 5, and
  refuses a 16th function: *CE gives at most 15 functions of 1-5 replicas each*.
- OpenFaaS's own scaling in CE is Alertmanager-driven: while ``APIHighInvocationRate`` fires
  (more than 5 requests/s for a function) the gateway adds ``ceil(max × factor / 100)`` replicas
  per alert (every 30 s), capped at ``com.openfaas.scale.max``, and when it resolves it sets
  ``com.openfaas.scale.min``. Both move replicas between casa's epochs.

The rule casa-sched follows (README, "Platforms"): run CE **without Alertmanager**
(``alertmanager.create=false`` in the chart) so that nothing else writes replicas, and let the
autoscaler re-assert the plan's count every epoch. The labels are not a way out: they sit on
the pod template, so pinning ``min = max`` per epoch would roll every function's pods, and
``com.openfaas.scale.factor=0`` makes the gateway refuse to read the function at all ("bad
scaling factor"), so with scale-from-zero on (the default) every invocation that misses its
cache answers 404. :func:`scaling_label_warnings` says so for functions that carry it, and
:meth:`OpenFaasAdapter.scale` warns once per function when its replicas moved since casa set
them (someone else scales it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import requests

from casa_sched.autoscaler.adapters import AdapterContext, register_adapter
from casa_sched.autoscaler.adapters.base import AdapterError, Workload, WorkloadGone
from casa_sched.conventions import OPENFAAS_FUNCTION_LABEL

log = logging.getLogger(__name__)

PLATFORM = "openfaas"
# Community Edition limits (faas-netes pkg/handlers/replica_reader.go: MaxReplicas, MaxFunctions).
CE_MAX_REPLICAS = 5
CE_MAX_FUNCTIONS = 15
CE_MIN_REPLICAS = 1  # faas-netes CE: "replicas cannot be set to 0 in OpenFaaS CE" (400)
MIN_SCALE_LABEL = "com.openfaas.scale.min"
MAX_SCALE_LABEL = "com.openfaas.scale.max"
SCALE_FACTOR_LABEL = "com.openfaas.scale.factor"
RETRYABLE_STATUS = frozenset({408, 409, 429})  # and every 5xx

Edition = Literal["ce", "pro"]


class FunctionListError(ValueError):
    """A gateway answer that is not the documented ``FunctionStatus`` JSON; names the path."""


@dataclass(frozen=True)
class FunctionStatus:
    """The fields of one gateway ``FunctionStatus`` that casa-sched reads."""

    name: str
    namespace: str
    replicas: int
    available_replicas: int
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def _count(obj: Mapping[str, Any], key: str, path: str) -> int:
    value = obj.get(key, 0)  # omitempty: absent means 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FunctionListError(f"{path}.{key}: expected an integer >= 0, got {value!r}")
    return value


def _str_map(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, str]:
    value = obj.get(key)
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise FunctionListError(f"{path}.{key}: expected an object of strings")
    return MappingProxyType(dict(value))


def parse_function(obj: Any, default_namespace: str, path: str = "function") -> FunctionStatus:
    """One ``FunctionStatus`` JSON object (pure; raises :class:`FunctionListError`)."""
    if not isinstance(obj, dict):
        raise FunctionListError(f"{path}: expected an object, got {type(obj).__name__}")
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise FunctionListError(f"{path}.name: expected a non-empty string, got {name!r}")
    namespace = obj.get("namespace") or default_namespace
    if not isinstance(namespace, str):
        raise FunctionListError(f"{path}.namespace: expected a string, got {namespace!r}")
    return FunctionStatus(
        name=name,
        namespace=namespace,
        replicas=_count(obj, "replicas", path),
        available_replicas=_count(obj, "availableReplicas", path),
        labels=_str_map(obj, "labels", path),
        annotations=_str_map(obj, "annotations", path),
    )


def parse_function_list(body: Any, default_namespace: str) -> list[FunctionStatus]:
    """``GET /system/functions``: a JSON array of ``FunctionStatus`` (``null`` when empty)."""
    if body is None:
        return []
    if not isinstance(body, list):
        raise FunctionListError(f"functions: expected an array, got {type(body).__name__}")
    return [parse_function(item, default_namespace, f"functions[{i}]") for i, item in enumerate(body)]


def max_replicas_for(edition: Edition) -> int | None:
    """The replica ceiling the platform enforces whatever it is asked: 5 on CE, none on Pro."""
    return CE_MAX_REPLICAS if edition == "ce" else None


def clamp_replicas(replicas: int, edition: Edition) -> tuple[int, str | None]:
    """The count the gateway will really set for ``replicas``, and why it differs (or None).

    CE: 1..5 (0 is refused, above 5 is capped); Pro: as asked (scale to zero included).
    """
    if edition == "ce":
        if replicas < CE_MIN_REPLICAS:
            return CE_MIN_REPLICAS, "OpenFaaS CE cannot scale a function to zero; keeping 1 replica"
        if replicas > CE_MAX_REPLICAS:
            return CE_MAX_REPLICAS, f"OpenFaaS CE allows at most {CE_MAX_REPLICAS} replicas per function"
    return replicas, None


def scaling_label_warnings(fn: FunctionStatus) -> list[str]:
    """What in a function's ``com.openfaas.scale.*`` labels works against casa's plan (pure)."""
    out: list[str] = []
    factor = fn.labels.get(SCALE_FACTOR_LABEL)
    if factor is not None:
        try:
            ok = 0 < int(factor) <= 100
        except ValueError:
            ok = True  # the gateway ignores a non-integer label and uses its default (10)
        if not ok:
            out.append(
                f"function {fn.name}: {SCALE_FACTOR_LABEL}={factor} is outside 1..100, so the gateway "
                "refuses to read the function ('bad scaling factor') and, with scale-from-zero on, "
                "invocations answer 404; remove the label and run CE without Alertmanager instead"
            )
    lo, hi = fn.labels.get(MIN_SCALE_LABEL), fn.labels.get(MAX_SCALE_LABEL)
    if lo is not None and hi is not None and lo == hi:
        out.append(
            f"function {fn.name}: {MIN_SCALE_LABEL} = {MAX_SCALE_LABEL} = {lo}: OpenFaaS's alert scaling "
            f"will pull replicas back to {lo} whenever an alert for it fires or resolves"
        )
    return out


def workload_of(fn: FunctionStatus, edition: Edition) -> Workload:
    """The :class:`Workload` of a function: faas-netes names the Deployment and its only
    container after the function and labels the pods ``faas_function=<name>``."""
    return Workload(
        function=fn.name,
        platform=PLATFORM,
        namespace=fn.namespace,
        name=fn.name,
        container=fn.name,
        pod_selector=MappingProxyType({OPENFAAS_FUNCTION_LABEL: fn.name}),
        replicas=fn.replicas,
        max_replicas=max_replicas_for(edition),
    )


def status_error(method: str, url: str, status: int, body: str, *, gone_on_404: bool) -> AdapterError:
    """The typed error for a non-2xx gateway answer (pure).

    404 on a function's own URL → :class:`WorkloadGone`; 408, 409, 429 and 5xx → retryable;
    401, 403 and other 4xx → not retryable (credentials, URL or request are wrong).
    """
    detail = " ".join(body.split())[:200]
    message = f"{method} {url}: HTTP {status}" + (f" ({detail})" if detail else "")
    if status == 404 and gone_on_404:
        return WorkloadGone(message)
    if status in (401, 403):
        return AdapterError(f"{message}: check the gateway user and password file", retryable=False)
    return AdapterError(message, retryable=status >= 500 or status in RETRYABLE_STATUS)


def read_password_file(path: Path) -> str:
    """The gateway password from a mounted secret file (trailing newline dropped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AdapterError(f"openfaas.password_file {path}: cannot read: {exc.strerror}", retryable=False) from exc
    password = text.rstrip("\r\n")
    if not password:
        raise AdapterError(f"openfaas.password_file {path}: is empty, expected the gateway password", retryable=False)
    return password


class OpenFaasAdapter:
    """Functions of one OpenFaaS namespace, replicas through the gateway's scale API."""

    platform: ClassVar[str] = PLATFORM

    def __init__(
        self,
        gateway_url: str,
        *,
        namespace: str = "openfaas-fn",
        auth: tuple[str, str] | None = None,
        edition: Edition = "ce",
        timeout_s: float = 5.0,
        session: requests.Session | None = None,
        warn: Callable[[str], None] = log.warning,
    ) -> None:
        if not gateway_url.startswith(("http://", "https://")):
            raise AdapterError(f"openfaas.gateway_url: expected an http(s) URL, got {gateway_url!r}", retryable=False)
        if timeout_s <= 0:
            raise AdapterError(f"openfaas.timeout_s: expected > 0 s, got {timeout_s}", retryable=False)
        self.gateway_url = gateway_url.rstrip("/")
        self.namespace = namespace
        self.edition: Edition = edition
        self._auth = auth
        self._timeout_s = timeout_s
        self._session = session or requests.Session()
        self._warn = warn
        self._warned: set[str] = set()
        self._written: dict[str, int] = {}  # function -> replicas casa last set

    def close(self) -> None:
        self._session.close()

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self._warn(message)

    def _request(self, method: str, path: str, *, gone_on_404: bool, json_body: Any = None) -> requests.Response:
        url = f"{self.gateway_url}{path}"
        try:
            resp = self._session.request(
                method, url, params={"namespace": self.namespace}, json=json_body, auth=self._auth,
                timeout=self._timeout_s,
            )  # fmt: skip
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise AdapterError(f"{method} {url}: {type(exc).__name__}: {exc}"[:300], retryable=True) from exc
        except requests.RequestException as exc:
            raise AdapterError(f"{method} {url}: {type(exc).__name__}: {exc}"[:300], retryable=False) from exc
        if not 200 <= resp.status_code < 300:
            raise status_error(method, url, resp.status_code, resp.text, gone_on_404=gone_on_404)
        return resp

    def _json(self, resp: requests.Response) -> Any:
        try:
            return resp.json()
        except ValueError as exc:
            raise AdapterError(f"GET {resp.url}: the answer is not JSON", retryable=False) from exc

    def discover(self) -> Sequence[Workload]:
        resp = self._request("GET", "/system/functions", gone_on_404=False)
        try:
            functions = parse_function_list(self._json(resp), self.namespace)
        except FunctionListError as exc:
            raise AdapterError(f"GET {resp.url}: {exc}", retryable=False) from exc
        if self.edition == "ce" and len(functions) > CE_MAX_FUNCTIONS:
            self._warn_once("ce-functions", f"OpenFaaS CE permits {CE_MAX_FUNCTIONS} functions; the gateway lists "
                            f"{len(functions)}")  # fmt: skip
        for fn in functions:
            for message in scaling_label_warnings(fn):
                self._warn_once(f"labels:{fn.name}:{message}", message)
        return [workload_of(fn, self.edition) for fn in functions]

    def read(self, name: str) -> FunctionStatus:
        """One function as the gateway reports it; :class:`WorkloadGone` on 404."""
        resp = self._request("GET", f"/system/function/{quote(name, safe='')}", gone_on_404=True)
        try:
            return parse_function(self._json(resp), self.namespace, f"function {name}")
        except FunctionListError as exc:
            raise AdapterError(f"GET {resp.url}: {exc}", retryable=False) from exc

    def scale(self, workload: Workload, replicas: int, *, dry_run: bool = False) -> bool:
        if replicas < 0:
            raise AdapterError(f"openfaas {workload.name}: replicas must be >= 0, got {replicas}", retryable=False)
        target, why = clamp_replicas(replicas, self.edition)
        if why is not None:
            self._warn_once(f"clamp:{workload.name}:{target}", f"openfaas {workload.name}: plan asks {replicas}, "
                            f"setting {target}: {why}")  # fmt: skip
        current = self.read(workload.name).replicas
        last = self._written.get(workload.name)
        if last is not None and current != last:
            self._warn_once(f"moved:{workload.name}", f"openfaas {workload.name}: replicas moved from {last} to "
                            f"{current} since casa set them; is OpenFaaS's alert scaling on (Alertmanager)?")  # fmt: skip
        if current == target:
            self._written[workload.name] = target
            return False
        if dry_run:
            return True
        body = {"serviceName": workload.name, "replicas": target, "namespace": self.namespace}
        self._request("POST", f"/system/scale-function/{quote(workload.name, safe='')}", gone_on_404=True,
                      json_body=body)  # fmt: skip
        self._written[workload.name] = target
        return True


@register_adapter(PLATFORM)
def openfaas_adapter(context: AdapterContext) -> OpenFaasAdapter:
    """The adapter the ``openfaas`` settings section describes (password read now: bad file → error)."""
    cfg = context.settings.openfaas
    auth = (cfg.username, read_password_file(cfg.password_file)) if cfg.password_file is not None else None
    return OpenFaasAdapter(cfg.gateway_url, namespace=cfg.namespace, auth=auth, edition=cfg.edition,
                           timeout_s=cfg.timeout_s)  # fmt: skip
