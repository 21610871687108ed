"""Wiring of one extender process: state, plan source, watches, metrics, app.

Plan source: ``plan_file`` when set (polled, reloaded on change), else the plan ConfigMap
(``casa-system/casa-plan``, key ``plan.json``) through a watch. Cluster connection: ``kubeconfig``
when given, else in-cluster credentials, else none (standalone: no pod/node watch; live counts
then come only from the extender's own assumed placements, which expire after their TTL).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from casa_sched.contract.plan import Plan
from casa_sched.conventions import NAMESPACE, PLAN_CONFIGMAP_KEY, PLAN_CONFIGMAP_NAME
from casa_sched.extender.app import Routes, create_app
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


@dataclass
class Runtime:
    state: ExtenderState
    metrics: CasaMetrics
    app: FastAPI
    reflectors: list[Reflector] = field(default_factory=list)
    plan_file: FilePlanSource | None = None

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


def _mirror_plan(metrics: CasaMetrics) -> Any:
    def on_plan(plan: Plan | None, status: PlanStatus) -> None:
        if plan is not None:
            log.info(
                "plan epoch %d loaded: %d functions, %d containers",
                plan.epoch,
                len(plan.functions),
                plan.container_count(),
            )
        else:
            log.warning("no usable plan (%s): function pods fail open", status)
        metrics.plan_reloads_total.labels(outcome=status).inc()
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
    """Everything for one process, configured by ``settings``; call :meth:`Runtime.start` before serving."""
    metrics = metrics or CasaMetrics()
    state = ExtenderState(
        plan_stale_after_s=settings.plan_stale_after_s,
        assume_ttl_s=settings.assume_ttl_s,
        on_plan=_mirror_plan(metrics),
    )

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
    app = create_app(state, metrics, routes=routes, readiness=readiness, max_body_bytes=settings.max_body_bytes)
    return Runtime(state=state, metrics=metrics, app=app, reflectors=reflectors, plan_file=plan_file)
