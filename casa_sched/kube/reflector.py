"""List-then-watch with correct resourceVersion handling, in a background thread.

The loop client-go's Reflector runs, reduced to what casa-sched needs:

1. LIST (paginated by the lister) → ``store.replace(items)``; remember the list's resourceVersion.
2. WATCH from that resourceVersion → ``store.apply(type, object)`` per event, advancing the
   resourceVersion with every event and BOOKMARK.
3. When the watch ends normally (server-side timeout) watch again from the last resourceVersion.
4. When the server says the resourceVersion is too old (HTTP 410 Gone, either as the response
   status or as an ``ERROR`` event with code 410) forget it and go back to 1: a fresh LIST
   replaces the whole store, so objects deleted during the gap disappear.
5. Any other error: back off (exponential, capped) and retry; the resourceVersion is kept.

The lister and watcher are plain callables, so tests drive the loop with fakes and
:mod:`casa_sched.kube.client` supplies the real ones.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)


class GoneError(Exception):
    """HTTP 410: the requested resourceVersion is no longer available; re-list."""


@dataclass(frozen=True)
class ListResult:
    """All objects of a LIST (every page) and the list's resourceVersion."""

    items: list[dict[str, Any]]
    resource_version: str


Lister = Callable[[], ListResult]
Watcher = Callable[[str], Iterable[dict[str, Any]]]  # resourceVersion → events {"type", "object"}


class Store(Protocol):
    def replace(self, items: list[dict[str, Any]]) -> None: ...

    def apply(self, event_type: str, obj: dict[str, Any]) -> None: ...


def _rv_of(obj: Any) -> str | None:
    if isinstance(obj, dict):
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            rv = meta.get("resourceVersion")
            if isinstance(rv, str) and rv:
                return rv
    return None


class Reflector:
    """Keeps ``store`` in sync with one resource; ``synced`` is set after the first LIST."""

    def __init__(
        self,
        resource: str,
        lister: Lister,
        watcher: Watcher,
        store: Store,
        *,
        on_restart: Callable[[str, str], None] | None = None,
        min_backoff_s: float = 0.2,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.resource = resource
        self._lister = lister
        self._watcher = watcher
        self._store = store
        self._on_restart = on_restart
        self._min_backoff_s = min_backoff_s
        self._max_backoff_s = max_backoff_s
        self.synced = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.resource_version: str | None = None
        self.last_error: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Reflector:
        self._thread = threading.Thread(target=self.run, name=f"reflector-{self.resource}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # -- the loop ----------------------------------------------------------------------------
    def _restart(self, reason: str) -> None:
        if self._on_restart is not None:
            self._on_restart(self.resource, reason)

    def run(self) -> None:
        backoff_s = self._min_backoff_s
        while not self._stop.is_set():
            try:
                self.step()
                backoff_s = self._min_backoff_s
            except GoneError:
                log.info("%s: resourceVersion %s expired (410 Gone); re-listing", self.resource, self.resource_version)
                self.resource_version = None
                self._restart("gone")
            except Exception as exc:  # network, auth, decoding: log, back off, keep the rv
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("%s: list/watch failed (%s); retrying in %.1f s", self.resource, self.last_error, backoff_s)
                self._restart("error")
                if self._stop.wait(backoff_s):
                    return
                backoff_s = min(backoff_s * 2.0, self._max_backoff_s)

    def step(self) -> None:
        """One LIST (when needed) and one WATCH until it ends; raises GoneError on 410."""
        if self.resource_version is None:
            listed = self._lister()
            self._store.replace(listed.items)
            self.resource_version = listed.resource_version
            self.synced.set()
            self.last_error = None
        for event in self._watcher(self.resource_version):
            if self._stop.is_set():
                return
            etype = event.get("type")
            obj = event.get("object")
            if etype == "ERROR":
                code = obj.get("code") if isinstance(obj, dict) else None
                if code == 410:
                    raise GoneError(str(obj.get("message", "")) if isinstance(obj, dict) else "")
                raise RuntimeError(f"watch error event: {obj!r}"[:300])
            rv = _rv_of(obj)
            if etype in ("ADDED", "MODIFIED", "DELETED") and isinstance(obj, dict):
                self._store.apply(etype, obj)
            if rv is not None:  # BOOKMARK only advances the resourceVersion
                self.resource_version = rv
        self._restart("timeout")
