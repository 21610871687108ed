"""Publishing the fitted model on the Node annotation ``casa.dev/power-model`` (Kubernetes API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from casa_sched.conventions import POWER_MODEL_ANNOTATION
from casa_sched.models.power import PowerCurve


class PublishError(RuntimeError):
    """The model could not be published or read; the message says why."""


def _api(kubeconfig: Path | None) -> Any:
    from kubernetes import client, config

    from casa_sched.kube.client import load_api_client

    try:
        api_client = load_api_client(kubeconfig)
    except (config.ConfigException, OSError) as exc:
        raise PublishError(f"cannot load kubeconfig {kubeconfig}: {exc}") from None
    if api_client is None:
        raise PublishError("no Kubernetes credentials: pass --kubeconfig or run in a pod (in-cluster service account)")
    return client.CoreV1Api(api_client)


def publish(model: PowerCurve, node: str, kubeconfig: Path | None = None) -> None:
    from kubernetes.client.exceptions import ApiException

    body = {"metadata": {"annotations": {POWER_MODEL_ANNOTATION: model.to_json()}}}
    try:
        _api(kubeconfig).patch_node(node, body)
    except ApiException as exc:
        raise PublishError(f"cannot annotate node {node}: HTTP {exc.status} {exc.reason}") from None


def show(node: str, kubeconfig: Path | None = None) -> PowerCurve | None:
    from kubernetes.client.exceptions import ApiException

    try:
        obj = _api(kubeconfig).read_node(node)
    except ApiException as exc:
        raise PublishError(f"cannot read node {node}: HTTP {exc.status} {exc.reason}") from None
    text = (obj.metadata.annotations or {}).get(POWER_MODEL_ANNOTATION)
    return PowerCurve.from_json(text) if text else None
