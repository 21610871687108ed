"""The autoscaler's Kubernetes ApiClient: every write counted, dry runs that cannot write, timeouts.

:class:`CountingApiClient` is the one place every request of the autoscaler (adapters, plan
store, resize, events, lease) passes through, so it is where

- writes (POST, PUT, PATCH, DELETE) are counted, per verb, into
  ``casa_autoscaler_api_writes_total{verb}``: re-applying an applied plan must make none;
- a dry run is enforced: with ``read_only`` set a write raises :class:`DryRunWriteError` before
  anything leaves the process, whatever the caller forgot;
- every request gets a timeout (the generated client has none by default, and a hung API server
  must not hang an epoch).

:func:`api_error` turns the client's exceptions into the adapters' typed errors: 404 → gone,
409 / 429 / 5xx / connection errors / timeouts → retryable, anything else → not retryable.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from casa_sched.autoscaler.adapters.base import AdapterError, WorkloadGone
from casa_sched.kube.client import load_configuration

WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_TIMEOUT_S: tuple[float, float] = (5.0, 30.0)  # (connect, read)
RETRYABLE_STATUS = frozenset({409, 429, 500, 502, 503, 504})


class DryRunWriteError(RuntimeError):
    """A write attempted through a read-only (dry-run) client."""


class CountingApiClient(k8s.ApiClient):
    """A kubernetes ``ApiClient`` that counts writes, refuses them when read-only, and times out."""

    def __init__(
        self,
        configuration: Any = None,
        *,
        read_only: bool = False,
        on_write: Callable[[str, str], None] | None = None,
        timeout_s: tuple[float, float] = DEFAULT_TIMEOUT_S,
    ) -> None:
        super().__init__(configuration)
        self.read_only = read_only
        self.writes: Counter[str] = Counter()
        self._on_write = on_write
        self._timeout_s = timeout_s

    def call_api(
        self,
        method: str,
        url: str,
        header_params: Any = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: Any = None,
    ) -> Any:
        verb = method.upper()
        if verb in WRITE_VERBS:
            if self.read_only:
                raise DryRunWriteError(f"dry run: refused {verb} {url}")
            self.writes[verb] += 1
            if self._on_write is not None:
                self._on_write(verb, url)
        return super().call_api(
            method,
            url,
            header_params=header_params,
            body=body,
            post_params=post_params,
            _request_timeout=_request_timeout if _request_timeout is not None else self._timeout_s,
        )

    @property
    def write_count(self) -> int:
        return sum(self.writes.values())


def counting_api_client(
    kubeconfig: Path | None, *, read_only: bool = False, on_write: Callable[[str, str], None] | None = None
) -> CountingApiClient | None:
    """A :class:`CountingApiClient` from ``kubeconfig``, else in-cluster credentials, else None."""
    cfg = load_configuration(kubeconfig)
    return None if cfg is None else CountingApiClient(cfg, read_only=read_only, on_write=on_write)


def read_json(response: Any) -> Any:
    """The JSON body of a ``_preload_content=False`` response."""
    return json.loads(response.data)


MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


def request_json(
    api_client: Any,
    method: str,
    path: str,
    body: Any = None,
    *,
    content_type: str = "application/json",
    query: Mapping[str, str] | None = None,
) -> Any:
    """One API call with a JSON body and answer, as plain dicts (no model (de)serialisation).

    ``path`` is the API path (``/api/v1/namespaces/ns/configmaps/name``). Non-2xx answers raise
    the client's ``ApiException`` (its ``status`` is what :func:`api_error` classifies).
    """
    method, url, headers, data, post = api_client.param_serialize(
        method=method,
        resource_path=path,
        query_params=list((query or {}).items()),
        header_params={"Accept": "application/json", **({"Content-Type": content_type} if body is not None else {})},
        body=body,
        auth_settings=["BearerToken"],
    )
    resp = api_client.call_api(method, url, header_params=headers, body=data, post_params=post)
    raw = resp.read()
    if not 200 <= resp.status <= 299:
        raise ApiException(status=resp.status, reason=f"{resp.reason}: {raw[:300].decode('utf-8', 'replace')}")
    return json.loads(raw) if raw else None


def is_retryable(exc: BaseException) -> bool:
    """Timeouts, connection errors, 409 conflicts, 429 throttling and 5xx answers."""
    if isinstance(exc, ApiException):
        return exc.status in RETRYABLE_STATUS or exc.status == 0  # 0: no HTTP answer at all
    if isinstance(exc, AdapterError):
        return exc.retryable
    import urllib3.exceptions

    return isinstance(exc, urllib3.exceptions.HTTPError | OSError | TimeoutError)


def api_error(exc: BaseException, what: str) -> AdapterError:
    """``exc`` (raised by the kubernetes client while doing ``what``) as a typed adapter error."""
    if isinstance(exc, AdapterError):
        return exc
    if isinstance(exc, ApiException):
        if exc.status == 404:
            return WorkloadGone(f"{what}: not found")
        reason = (exc.reason or "").strip() or "error"
        return AdapterError(f"{what}: HTTP {exc.status} {reason}", retryable=is_retryable(exc))
    return AdapterError(f"{what}: {type(exc).__name__}: {exc}"[:300], retryable=is_retryable(exc))
