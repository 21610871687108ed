"""casa-profiler publish / show against a real kube-apiserver: the Node annotation round trip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from casa_profiler.cli import app
from typer.testing import CliRunner

from casa_sched.conventions import POWER_MODEL_ANNOTATION
from casa_sched.models.power import DEFAULT_NODE_CURVE, PowerCurve

pytestmark = pytest.mark.k8s
runner = CliRunner()


def test_publish_writes_the_node_annotation_and_show_reads_it(
    k8s_kubeconfig: Path, k8s_nodes: Any, k8s_api: Any, tmp_path: Path
) -> None:
    k8s_nodes("profiled-node", cpu="128", memory="64Gi")
    model = tmp_path / "model.json"
    model.write_text(DEFAULT_NODE_CURVE.to_json())
    result = runner.invoke(
        app, ["publish", "--model", str(model), "--node", "profiled-node", "--kubeconfig", str(k8s_kubeconfig)]
    )
    assert result.exit_code == 0, result.output
    from kubernetes import client

    node = client.CoreV1Api(k8s_api).read_node("profiled-node")
    annotations: dict[str, str] = (node.metadata.annotations if node.metadata else None) or {}
    published = PowerCurve.from_json(annotations[POWER_MODEL_ANNOTATION])
    assert published == DEFAULT_NODE_CURVE
    shown = runner.invoke(app, ["show", "--node", "profiled-node", "--kubeconfig", str(k8s_kubeconfig)])
    assert shown.exit_code == 0
    assert json.loads(shown.output)["cores"] == 128


def test_publish_errors_are_one_line(k8s_kubeconfig: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.json"
    model.write_text(DEFAULT_NODE_CURVE.to_json())
    missing = runner.invoke(
        app, ["publish", "--model", str(model), "--node", "no-such-node", "--kubeconfig", str(k8s_kubeconfig)]
    )
    assert missing.exit_code == 1
    assert "HTTP 404" in missing.output
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    broken = runner.invoke(app, ["publish", "--model", str(bad), "--node", "x", "--kubeconfig", str(k8s_kubeconfig)])
    assert broken.exit_code == 1
    assert "not valid JSON" in broken.output
