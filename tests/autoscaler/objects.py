"""Kubernetes JSON objects as the API server serialises them, for the autoscaler's pure tests."""

from __future__ import annotations

from typing import Any

from casa_sched.conventions import FUNCTION_LABEL


def node(name: str, cpu: str = "16", memory: str = "32Gi", *, ready: str = "True", unschedulable: bool = False,
         power_model: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if power_model is not None:
        meta["annotations"] = {"casa.dev/power-model": power_model}
    spec: dict[str, Any] = {"unschedulable": True} if unschedulable else {}
    return {"metadata": meta, "spec": spec,
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
                       "conditions": [{"type": "Ready", "status": ready}]}}


def pod(name: str, function: str | None, node_name: str | None, *, cpu: str = "2", memory: str = "150Mi",
        phase: str = "Running", namespace: str = "fn", container: str = "app", sidecar_cpu: str | None = None,
        deletion_cost: str | None = None, deleting: bool = False,
        conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    labels = {"app": function} if function else {}
    if function:
        labels[FUNCTION_LABEL] = function
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": f"uid-{name}", "labels": labels}
    if deletion_cost is not None:
        meta["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": deletion_cost}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    containers = [{"name": container, "resources": {"requests": {"cpu": cpu, "memory": memory}}}]
    if sidecar_cpu is not None:
        containers.append({"name": "queue-proxy", "resources": {"requests": {"cpu": sidecar_cpu}}})
    spec: dict[str, Any] = {"containers": containers}
    if node_name:
        spec["nodeName"] = node_name
    return {"metadata": meta, "spec": spec, "status": {"phase": phase, "conditions": conditions or []}}


def deployment(name: str, function: str | None, *, namespace: str = "fn", replicas: int = 1,
               containers: tuple[str, ...] = ("app",), container_annotation: str | None = None) -> dict[str, Any]:
    labels = {FUNCTION_LABEL: function} if function else {}
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if container_annotation is not None:
        meta["annotations"] = {"casa.dev/container": container_annotation}
    return {"metadata": meta, "spec": {
        "replicas": replicas, "selector": {"matchLabels": {"app": function or name}},
        "template": {"metadata": {"labels": {"app": function or name}},
                     "spec": {"containers": [{"name": c, "image": "x"} for c in containers]}}}}
