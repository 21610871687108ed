"""``casa emulate``'s I/O: the cluster's function pods (watched), the emulated clock, ``/metrics``.

The pods are those of :func:`casa_sched.conventions.function_of` (the labels the autoscaler and
the extender use: ``casa.dev/function``, Knative's ``serving.knative.dev/service``, OpenFaaS's
``faas_function``), kept current by a list+watch (:class:`casa_sched.kube.reflector.Reflector`).
A pod serves once it is Running and not being deleted; its function container is the one with
the largest CPU allocation (``status.containerStatuses[].resources``, what the kubelet applied
after an in-place resize, else the spec's request), which leaves sidecars such as Knative's
queue-proxy out. The nodes are read once, at start: the simulator's cluster is fixed.

Window ``w`` of the trace covers emulated ``[start + w·W, start + (w+1)·W)``; it is replayed as
soon as the emulated clock passes its end, with the pods Running then (so a pod that starts
inside a window serves from the next one: at most one window of scheduling delay).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from casa_sched.autoscaler.snapshot import build_state, planner_snapshot, pod_from_json
from casa_sched.clock import Clock
from casa_sched.contract.cluster import ClusterSpec, SimParams
from casa_sched.conventions import function_of
from casa_sched.emulator.core import Emulation, LivePodView, WindowResult
from casa_sched.emulator.exposition import FORMATS, render
from casa_sched.kube.objects import ObjectError
from casa_sched.kube.reflector import Reflector
from casa_sched.settings import CasaSettings

log = logging.getLogger(__name__)


class PodStore:
    """The function pods by uid (a :class:`~casa_sched.kube.reflector.Store`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pods: dict[str, dict[str, Any]] = {}

    @staticmethod
    def _key(obj: dict[str, Any]) -> str | None:
        meta = obj.get("metadata") or {}
        if not function_of(meta.get("labels")):
            return None
        return str(meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}")

    def replace(self, items: list[dict[str, Any]]) -> None:
        with self._lock:
            self._pods = {k: o for o in items if (k := self._key(o)) is not None}

    def apply(self, event_type: str, obj: dict[str, Any]) -> None:
        key = self._key(obj)
        if key is None:
            return
        with self._lock:
            if event_type == "DELETED":
                self._pods.pop(key, None)
            else:
                self._pods[key] = obj

    def running(self) -> list[LivePodView]:
        with self._lock:
            objs = list(self._pods.values())
        return running_pods(objs)


def running_pods(objs: list[dict[str, Any]]) -> list[LivePodView]:
    """The Running function pods of listed Pod JSON, with their function container's CPU."""
    out: list[LivePodView] = []
    for obj in objs:
        try:
            pod = pod_from_json(obj)
        except ObjectError as exc:
            log.warning("pod skipped: %s", exc)
            continue
        function = function_of(pod.labels)
        if function is None or not pod.running or pod.node is None:
            continue
        sizes = {name: (pod.allocated.get(name) or res)[0] for name, res in pod.containers.items()}
        if not sizes:
            continue
        container = max(sizes, key=lambda n: (sizes[n], n))
        out.append(LivePodView(pod.namespace, pod.name, function, pod.node, container, sizes[container]))
    return sorted(out, key=lambda p: (p.function, p.node, p.namespace, p.name))


def cluster_of(node_items: list[dict[str, Any]], settings: CasaSettings, params: SimParams) -> ClusterSpec:
    """The simulator's cluster: the Ready, schedulable nodes as the planner sees them."""
    state = build_state(node_items, [], [])
    for w in state.warnings:
        log.warning("%s", w)
    if not state.nodes:
        raise ValueError("the cluster has no Ready, schedulable node")
    return planner_snapshot(state, (), settings, params, 0).cluster


@dataclass
class Exporter:
    """``GET /metrics`` of the emulation's counters (the latest replayed window)."""

    emulation: Emulation
    formats: tuple[str, ...] = FORMATS
    namespace: str = "default"
    clock_factor: float = 1.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _text: str = ""
    _keys: list[tuple[str, str, str, str]] = field(default_factory=list)

    def refresh(self) -> None:
        e = self.emulation
        text = render(e.counters, e.pod_cpu_s, formats=self.formats, namespace=self.namespace,
                      clock_factor=self.clock_factor)  # fmt: skip
        keys = list(e.pod_cpu_s)
        with self.lock:
            self._text, self._keys = text, keys

    def text(self) -> str:
        with self.lock:
            text, keys = self._text, self._keys
        self.emulation.cpu_read(keys)
        return text

    def serve(self, host: str, port: int) -> ThreadingHTTPServer:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self.send_error(404)
                    return
                body = exporter.text().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer((host, port), Handler)
        threading.Thread(target=server.serve_forever, name="emulator-metrics", daemon=True).start()
        return server


def run(
    emulation: Emulation,
    pods: Callable[[], list[LivePodView]],
    clock: Clock,
    start_unix_s: float,
    stop: threading.Event,
    on_window: Callable[[WindowResult], None] | None = None,
) -> None:
    """Replay every window once the emulated clock has passed its end, until the trace ends or
    ``stop`` is set. Windows the clock has already passed are replayed at once (catching up)."""
    late_warned = False
    while not emulation.done and not stop.is_set():
        _, t1 = emulation.window_bounds(emulation.next_window)
        ahead_s = start_unix_s + t1 - clock.now()
        if ahead_s > 0:
            if clock.wait(stop, ahead_s):
                return
            continue
        if -ahead_s > emulation.window_s and not late_warned:
            log.warning("the replay is %.0f emulated s behind the clock (this machine is too slow for the clock "
                        "factor): windows are replayed back to back with the pods of now", -ahead_s)  # fmt: skip
            late_warned = True
        result = emulation.step(pods())
        if on_window is not None:
            on_window(result)


def start_pod_watch(api_client: Any) -> tuple[PodStore, Reflector]:
    from casa_sched.kube.client import pods_list_watch

    store = PodStore()
    lw = pods_list_watch(api_client)
    reflector = Reflector("pods", lw.list, lw.watch, store).start()
    return store, reflector
