"""Real list/watch callables for :class:`~casa_sched.kube.reflector.Reflector` (kubernetes client).

Objects are kept as raw JSON dicts (``_preload_content=False``): casa-sched reads a handful of
fields with :mod:`casa_sched.kube.objects`, the same parser the extender uses on the scheduler's
requests, and skips the client's slow model deserialisation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from casa_sched.kube.reflector import GoneError, ListResult

PAGE_SIZE = 500  # objects per LIST page
WATCH_TIMEOUT_S = 240  # server-side watch timeout; the watch is then resumed from its rv


def load_configuration(kubeconfig: Path | None) -> Any | None:
    """Client configuration from ``kubeconfig``, else in-cluster credentials, else None (no cluster)."""
    from kubernetes import client, config

    cfg = client.Configuration()
    if kubeconfig is not None:
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)  # type: ignore[no-untyped-call]
    else:
        try:
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        except config.ConfigException:
            return None
    return cfg


def load_api_client(kubeconfig: Path | None) -> Any | None:
    """An ApiClient from ``kubeconfig``, else in-cluster credentials, else None (no cluster)."""
    from kubernetes import client

    cfg = load_configuration(kubeconfig)
    return None if cfg is None else client.ApiClient(cfg)


def _iter_lines(resp: Any) -> Iterator[bytes]:
    """Newline-delimited JSON events from a streaming (chunked) watch response."""
    buf = b""
    for chunk in resp.stream(amt=None, decode_content=False):
        buf += chunk
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line, buf = buf[:nl], buf[nl + 1 :]
            if line.strip():
                yield line
    if buf.strip():
        yield buf


def _slim(obj: Any) -> None:
    """Drop managedFields (often half of an object's JSON) before the object is kept anywhere:
    a full LIST of a large cluster is held in memory until the store has parsed it."""
    if isinstance(obj, dict):
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            meta.pop("managedFields", None)


class RawListWatch:
    """LIST and WATCH of one resource through a ``list_*`` method of the generated client."""

    def __init__(self, list_fn: Callable[..., Any], **selector: Any) -> None:
        self._list_fn = list_fn
        self._selector = selector  # namespace / field_selector / label_selector

    def _call(self, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException

        try:
            return self._list_fn(**self._selector, _preload_content=False, **kwargs)
        except ApiException as exc:
            if exc.status == 410:
                raise GoneError(str(exc.reason)) from exc
            raise

    def list(self) -> ListResult:
        items: list[dict[str, Any]] = []
        cont: str | None = None
        rv = ""
        while True:
            kwargs: dict[str, Any] = {"limit": PAGE_SIZE, "_request_timeout": (10, 60)}
            if cont:
                kwargs["_continue"] = cont
            data = json.loads(self._call(**kwargs).data)
            page = data.get("items") or []
            for item in page:
                _slim(item)
            items.extend(page)
            meta = data.get("metadata") or {}
            rv = meta.get("resourceVersion") or rv
            cont = meta.get("continue")
            if not cont:
                return ListResult(items=items, resource_version=rv)

    def watch(self, resource_version: str) -> Iterator[dict[str, Any]]:
        resp = self._call(
            watch=True,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=WATCH_TIMEOUT_S,
            _request_timeout=(10, WATCH_TIMEOUT_S + 30),
        )
        try:
            for line in _iter_lines(resp):
                event = json.loads(line)
                if isinstance(event, dict):
                    _slim(event.get("object"))
                    yield event
        finally:
            resp.release_conn()


def pods_list_watch(api_client: Any) -> RawListWatch:
    from kubernetes import client

    # Finished pods hold no resources and no slot: leave them out server-side. A pod that
    # finishes stops matching, which the watch reports as DELETED.
    return RawListWatch(
        client.CoreV1Api(api_client).list_pod_for_all_namespaces,
        field_selector="status.phase!=Succeeded,status.phase!=Failed",
    )


def nodes_list_watch(api_client: Any) -> RawListWatch:
    from kubernetes import client

    return RawListWatch(client.CoreV1Api(api_client).list_node)


def configmap_list_watch(api_client: Any, namespace: str, name: str) -> RawListWatch:
    """One ConfigMap by name (list/watch with a metadata.name field selector: RBAC resourceNames works)."""
    from kubernetes import client

    return RawListWatch(
        client.CoreV1Api(api_client).list_namespaced_config_map,
        namespace=namespace,
        field_selector=f"metadata.name={name}",
    )
