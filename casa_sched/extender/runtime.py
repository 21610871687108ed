"""Wiring of one extender process: state, plan source, watches, metrics, app.

Transport: plain HTTP, or HTTPS when ``tls_cert_file`` and ``tls_key_file`` are set (the
scheduler's extender config then says ``enableHTTPS: true`` with a ``tlsConfig`` that trusts the
certificate; see manifests/README.md). Both files are loaded once before anything starts, so a
wrong path or a key that does not match the certificate is reported at once, naming the setting.

Plan source: ``plan_file`` when set (polled, reloaded on change), else the plan ConfigMap
(``casa-system/casa-plan``, key ``plan.json``) through a watch. Cluster connection: ``kubeconfig``
when given, else in-cluster credentials, else none (standalone: no pod/node watch; live counts
then come only from the extender's own assumed placements, which expire after their TTL).
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from casa_sched.contract.plan import Plan
from casa_sched.conventions import NAMESPACE, PLAN_CONFIGMAP_KEY, PLAN_CONFIGMAP_NAME
from casa_sched.extender.app import HotPathApp, Routes, create_app
from casa_sched.extender.state import ExtenderState, NodeStore, PlanStatus, PodStore
from casa_sched.kube.plan_source import ConfigMapPlanStore, FilePlanSource
from casa_sched.kube.reflector import Reflector
from casa_sched.metrics import CasaMetrics
from casa_sched.settings import ExtenderSettings

log = logging.getLogger(__name__)


def readiness_checks(reflectors: list[Reflector], plan_file: FilePlanSource | None) -> Callable[[], dict[str, bool]]:
    """/readyz's named checks: every watch has listed once, the plan file has been read once."""

    def checks() -> dict[str, bool]:
        out = {f"{r.resource}_synced": r.synced.is_set() for r in reflectors}
        if plan_file is not None:
            out["plan_file_read"] = plan_file.synced.is_set()
        return out

    return checks


def listen_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (IPv6 when ``host`` has a colon), bound before anything
    starts so an address in use or a host that does not resolve is reported at once; OSError."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class TLSConfigError(ValueError):
    """``tls_cert_file`` / ``tls_key_file`` unusable; the message names the setting."""


@dataclass(frozen=True)
class TLSFiles:
    cert_file: Path
    key_file: Path

    @classmethod
    def from_settings(cls, settings: ExtenderSettings) -> TLSFiles | None:
        """The TLS files to serve HTTPS with, None for plain HTTP; raises :class:`TLSConfigError`."""
        cert, key = settings.tls_cert_file, settings.tls_key_file
        if cert is None or key is None:  # ExtenderSettings allows only both or neither
            return None
        for name, path in (("tls_cert_file", cert), ("tls_key_file", key)):
            if not path.is_file():
                what = "not a regular file" if path.exists() else "no such file"
                raise TLSConfigError(f"extender.{name} {path}: {what}")
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
        except (ssl.SSLError, OSError) as exc:
            raise TLSConfigError(
                f"extender.tls_cert_file {cert} / extender.tls_key_file {key}: "
                f"not a PEM certificate and its matching private key ({exc})"
            ) from None
        return cls(cert_file=cert, key_file=key)


@dataclass
class Runtime:
    state: ExtenderState
    metrics: CasaMetrics
    app: FastAPI
    reflectors: list[Reflector] = field(default_factory=list)
    plan_file: FilePlanSource | None = None
    tls: TLSFiles | None = None

    def uvicorn_options(self) -> dict[str, Any]:
        """Keyword arguments for ``uvicorn.run``/``uvicorn.Config`` beyond app, host and port."""
        options: dict[str, Any] = {"log_level": "warning", "access_log": False}
        if self.tls is not None:
            options.update(ssl_certfile=str(self.tls.cert_file), ssl_keyfile=str(self.tls.key_file))
        return options

    def serve(self, sock: socket.socket) -> None:
        """Serve the verbs (through :class:`HotPathApp`) and the probes on ``sock``
        (:func:`listen_socket`) until interrupted."""
        host, port = sock.getsockname()[:2]
        config = uvicorn.Config(HotPathApp(self.app), host=host, port=port, **self.uvicorn_options())
        uvicorn.Server(config).run(sockets=[sock])

    def start(self) -> None:
        if self.plan_file is not None:
            self.plan_file.start()
        for r in self.reflectors:
            r.start()

    def stop(self) -> None:
        if self.plan_file is not None:
            self.plan_file.stop()
        for r in self.reflectors:
            r.stop(timeout_s=0.5)


PLAN_REASON_CHARS = 200  # of the reason label of casa_extender_plan_info


def _mirror_plan(metrics: CasaMetrics) -> Callable[[Plan | None, PlanStatus, str], None]:
    def on_plan(plan: Plan | None, status: PlanStatus, detail: str) -> None:
        if plan is not None:
            log.info(
                "plan epoch %d loaded: %d functions, %d containers",
                plan.epoch,
                len(plan.functions),
                plan.container_count(),
            )
        else:
            log.warning("no usable plan (%s: %s): function pods fail open", status, detail)
        metrics.plan_reloads_total.labels(outcome=status).inc()
        metrics.extender_plan_info.clear()  # one series: the current status and its reason
        metrics.extender_plan_info.labels(status=status, reason=detail[:PLAN_REASON_CHARS]).set(1)
        metrics.plan_containers.clear()
        if plan is None:
            return
        metrics.plan_epoch.set(plan.epoch)
        for f in plan.functions:
            for node, n in plan.slots_by_node(f).items():
                metrics.plan_containers.labels(function=f, node=node).set(n)

    return on_plan


def build_runtime(
    settings: ExtenderSettings,
    *,
    api_client: Any | None,
    metrics: CasaMetrics | None = None,
) -> Runtime:
    """Everything for one process, configured by ``settings``; call :meth:`Runtime.start` before
    serving. Raises :class:`TLSConfigError` for unusable TLS settings before anything is built."""
    tls = TLSFiles.from_settings(settings)
    metrics = metrics or CasaMetrics()
    state = ExtenderState(
        plan_stale_after_s=settings.plan_stale_after_s,
        assume_ttl_s=settings.assume_ttl_s,
        on_plan=_mirror_plan(metrics),
    )
    metrics.extender_plan_info.labels(status=state.plan_status, reason=state.plan_detail).set(1)

    def restarted(resource: str, reason: str) -> None:
        metrics.watch_restarts_total.labels(resource=resource, reason=reason).inc()

    reflectors: list[Reflector] = []
    plan_file: FilePlanSource | None = None
    if settings.plan_file is not None:
        plan_file = FilePlanSource(Path(settings.plan_file), state.set_plan)
    if api_client is not None:
        from casa_sched.kube.client import configmap_list_watch, nodes_list_watch, pods_list_watch

        pods = pods_list_watch(api_client)
        nodes = nodes_list_watch(api_client)
        reflectors.append(Reflector("pods", pods.list, pods.watch, PodStore(state), on_restart=restarted))
        reflectors.append(Reflector("nodes", nodes.list, nodes.watch, NodeStore(state), on_restart=restarted))
        if plan_file is None:
            cm = configmap_list_watch(api_client, NAMESPACE, PLAN_CONFIGMAP_NAME)
            store = ConfigMapPlanStore(state.set_plan, PLAN_CONFIGMAP_NAME, PLAN_CONFIGMAP_KEY)
            reflectors.append(Reflector("plan_configmap", cm.list, cm.watch, store, on_restart=restarted))
    elif plan_file is None:
        log.warning("no cluster credentials and no --plan-file: every function pod fails open (plan_missing)")
    else:
        log.warning("no cluster credentials: no pod/node watch; live counts come from assumed placements only")

    routes = Routes(
        url_prefix=settings.url_prefix, filter_verb=settings.filter_verb, prioritize_verb=settings.prioritize_verb
    )
    readiness = readiness_checks(reflectors, plan_file)
    app = create_app(
        state,
        metrics,
        routes=routes,
        readiness=readiness,
        max_body_bytes=settings.max_body_bytes,
        max_nodes=settings.max_nodes,
    )
    return Runtime(state=state, metrics=metrics, app=app, reflectors=reflectors, plan_file=plan_file, tls=tls)
