"""Where the extender (and later the autoscaler) gets the current Plan: ConfigMap or file.

Both sources push every change to a *sink* ``(plan | None, outcome, detail)`` where outcome is
``ok``, ``missing`` (no ConfigMap / no key / no file) or ``invalid`` (unreadable or not a valid
plan). The sink decides what to do; the extender fails open on anything but ``ok``.
"""

from __future__ import annotations

import logging
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from casa_sched.contract.plan import Plan, PlanError
from casa_sched.conventions import PLAN_CONFIGMAP_KEY, PLAN_CONFIGMAP_NAME

log = logging.getLogger(__name__)

PlanOutcome = Literal["ok", "missing", "invalid"]
PlanSink = Callable[[Plan | None, PlanOutcome, str], None]


def parse_plan_text(text: str | bytes | None, where: str) -> tuple[Plan | None, PlanOutcome, str]:
    if text is None:
        return None, "missing", f"{where}: no plan"
    try:
        return Plan.from_json(text), "ok", f"{where}: loaded"
    except PlanError as exc:
        return None, "invalid", f"{where}: {exc}"


class ConfigMapPlanStore:
    """Reflector store for the plan ConfigMap (one object, selected by name)."""

    def __init__(self, sink: PlanSink, name: str = PLAN_CONFIGMAP_NAME, key: str = PLAN_CONFIGMAP_KEY) -> None:
        self._sink = sink
        self._name = name
        self._key = key
        self._last_rv: str | None = None

    def _where(self, obj: dict[str, Any]) -> str:
        meta = obj.get("metadata") or {}
        return f"configmap {meta.get('namespace', '?')}/{self._name} key {self._key}"

    def _load(self, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        rv = meta.get("resourceVersion")
        if rv is not None and rv == self._last_rv:
            return  # same object again (re-list): nothing changed
        self._last_rv = rv
        data = obj.get("data")
        text = data.get(self._key) if isinstance(data, dict) else None
        self._sink(*parse_plan_text(text if isinstance(text, str) else None, self._where(obj)))

    def _missing(self) -> None:
        self._last_rv = None
        self._sink(None, "missing", f"configmap {self._name} not found")

    def _is_ours(self, obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata")
        return isinstance(meta, dict) and meta.get("name") == self._name

    def replace(self, items: list[dict[str, Any]]) -> None:
        ours = [o for o in items if isinstance(o, dict) and self._is_ours(o)]
        if ours:
            self._load(ours[0])
        else:
            self._missing()

    def apply(self, event_type: str, obj: dict[str, Any]) -> None:
        if not self._is_ours(obj):
            return
        if event_type == "DELETED":
            self._missing()
        else:
            self._load(obj)


class FilePlanSource:
    """Polls a plan file and reloads it when its mtime, size or inode changes."""

    def __init__(self, path: Path, sink: PlanSink, poll_s: float = 1.0) -> None:
        self.path = path
        self._sink = sink
        self._poll_s = poll_s
        self._signature: tuple[int, int, int] | Literal["unset"] | None = "unset"
        self.synced = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        """Reload when the file changed since the last check; True when the sink was called."""
        try:
            st = self.path.stat()
            sig: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            sig = None
        if sig == self._signature:
            return False
        self._signature = sig
        where = f"plan file {self.path}"
        if sig is None:
            self._sink(None, "missing", f"{where}: not found")
        elif not stat.S_ISREG(st.st_mode):  # a FIFO or device would block the read
            self._sink(None, "invalid", f"{where}: not a regular file")
        else:
            try:
                text: str | None = self.path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                self._sink(None, "invalid", f"{where}: unreadable: {exc}")
                self.synced.set()
                return True
            self._sink(*parse_plan_text(text, where))
        self.synced.set()
        return True

    def _run(self) -> None:
        while not self._stop.wait(self._poll_s):
            try:
                self.check()
            except Exception:  # never let the poller die
                log.exception("plan file poll failed")

    def start(self) -> FilePlanSource:
        self.check()
        self._thread = threading.Thread(target=self._run, name="plan-file", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
