"""Publishing the fitted model on the Node annotation ``casa.dev/power-model`` (Kubernetes API).

The annotation holds the model JSON (``PowerCurve.to_dict`` plus the ``fit`` summary), written
with a merge patch on ``metadata.annotations`` so no other field of the Node is touched.
Credentials: an explicit kubeconfig, else the in-cluster service account, else the default
kubeconfig.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from casa_profiler.fit import MAX_DIP_W, max_dip_w
from casa_sched.conventions import POWER_MODEL_ANNOTATION
from casa_sched.models.power import PowerCurve, PowerModelError


class PublishError(RuntimeError):
    """The model could not be published or read; the message says why."""


class KubeconfigError(PublishError):
    """The kubeconfig given cannot be loaded (a bad input file, not a cluster that fails)."""


def _api(kubeconfig: Path | None) -> Any:
    from kubernetes import client, config

    from casa_sched.kube.client import load_api_client

    try:
        api_client = load_api_client(kubeconfig)
    except (config.ConfigException, OSError) as exc:
        raise KubeconfigError(f"--kubeconfig {kubeconfig}: cannot load it ({' '.join(str(exc).split())})") from None
    except Exception as exc:  # a malformed file: YAML errors, or a document of the wrong shape
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise KubeconfigError(
            f"--kubeconfig {kubeconfig}: not a valid kubeconfig ({type(exc).__name__}: {first})"
        ) from None
    if api_client is None:
        raise PublishError("no Kubernetes credentials: pass --kubeconfig or run in a pod (in-cluster service account)")
    return client.CoreV1Api(api_client)


def validated(text: str) -> dict[str, Any]:
    """The model JSON as a dict, after checking it parses as a :class:`PowerCurve` and rises."""
    curve = PowerCurve.from_json(text)  # raises PowerModelError naming the problem
    dip_w = max_dip_w(curve, 0.0, float(curve.cores))
    if dip_w > MAX_DIP_W:
        raise PowerModelError(
            f"the power curve falls by {dip_w:.1f} W somewhere in 0..{curve.cores} cores: refusing it"
        )
    data: dict[str, Any] = json.loads(text)
    return data


def publish(model_json: str, node: str, kubeconfig: Path | None = None) -> None:
    from kubernetes.client.exceptions import ApiException

    compact = json.dumps(validated(model_json), sort_keys=True, separators=(",", ":"))
    body = {"metadata": {"annotations": {POWER_MODEL_ANNOTATION: compact}}}
    api = _api(kubeconfig)
    try:
        api.patch_node(node, body, _content_type="application/merge-patch+json")
    except ApiException as exc:
        raise PublishError(f"cannot annotate node {node}: HTTP {exc.status} {exc.reason}") from None
    except Exception as exc:  # urllib3 connection errors carry long reprs; one line is enough
        raise PublishError(f"cannot reach the Kubernetes API to annotate node {node}: {type(exc).__name__}") from None


def show(node: str, kubeconfig: Path | None = None) -> dict[str, Any] | None:
    """The node's published model JSON (validated), or None when it has none."""
    from kubernetes.client.exceptions import ApiException

    api = _api(kubeconfig)
    try:
        obj = api.read_node(node)
    except ApiException as exc:
        raise PublishError(f"cannot read node {node}: HTTP {exc.status} {exc.reason}") from None
    except Exception as exc:
        raise PublishError(f"cannot reach the Kubernetes API to read node {node}: {type(exc).__name__}") from None
    text = ((obj.metadata.annotations if obj.metadata else None) or {}).get(POWER_MODEL_ANNOTATION)
    return validated(text) if text else None
