"""casa-profiler publish / show against a real kube-apiserver (casa_sched.devcluster control plane): the Node
annotation round trip, a merge patch that leaves other annotations alone, one-line errors."""

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


def _model(tmp_path: Path, **extra: Any) -> Path:
    path = tmp_path / "model.json"
    path.write_text(json.dumps({**DEFAULT_NODE_CURVE.to_dict(), **extra}, indent=2))
    return path


def _annotations(k8s_api: Any, node: str) -> dict[str, str]:
    from kubernetes import client

    obj = client.CoreV1Api(k8s_api).read_node(node)
    return dict((obj.metadata.annotations if obj.metadata else None) or {})


def test_publish_writes_the_node_annotation_and_show_reads_it(
    k8s_kubeconfig: Path, k8s_nodes: Any, k8s_api: Any, tmp_path: Path
) -> None:
    from kubernetes import client

    k8s_nodes("profiled-node", cpu="128", memory="64Gi")
    client.CoreV1Api(k8s_api).patch_node("profiled-node", {"metadata": {"annotations": {"example.com/keep": "me"}}})
    model = _model(tmp_path, fit={"r2": 0.99, "loo_rmse_w": 12.5})
    result = runner.invoke(
        app, ["publish", "--model", str(model), "--node", "profiled-node", "--kubeconfig", str(k8s_kubeconfig)]
    )
    assert result.exit_code == 0, result.output
    annotations = _annotations(k8s_api, "profiled-node")
    assert annotations["example.com/keep"] == "me"  # a merge patch: other annotations stay
    published = json.loads(annotations[POWER_MODEL_ANNOTATION])
    assert PowerCurve.from_dict(published) == DEFAULT_NODE_CURVE
    assert published["fit"]["loo_rmse_w"] == 12.5  # the fit summary travels with the model
    shown = runner.invoke(app, ["show", "--node", "profiled-node", "--kubeconfig", str(k8s_kubeconfig)])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["cores"] == 128


def test_publish_takes_the_node_name_from_the_downward_api(
    k8s_kubeconfig: Path, k8s_nodes: Any, k8s_api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    k8s_nodes("downward-node", cpu="4", memory="8Gi")
    monkeypatch.setenv("NODE_NAME", "downward-node")  # the DaemonSet sets it from fieldRef spec.nodeName
    result = runner.invoke(app, ["publish", "--model", str(_model(tmp_path)), "--kubeconfig", str(k8s_kubeconfig)])
    assert result.exit_code == 0, result.output
    assert POWER_MODEL_ANNOTATION in _annotations(k8s_api, "downward-node")


@pytest.mark.parametrize(
    ("model_text", "node", "message", "code"),
    [  # the API's refusal is a runtime error (1); a bad --model file is bad input (2)
        pytest.param(None, "no-such-node", "cannot annotate node no-such-node: HTTP 404", 1, id="missing-node"),
        pytest.param("{", "x", "not valid JSON", 2, id="broken-json"),
        # P(U) = 200 − U falls by 128 W over 0..128 cores: never published
        pytest.param(
            json.dumps({**DEFAULT_NODE_CURVE.to_dict(), "coefficients": {"A": 0, "B": 0, "C": 0, "D": -1, "E": 200}}),
            "x", "the power curve falls by 128.0 W", 2, id="decreasing-curve",
        ),
    ],
)  # fmt: skip
def test_publish_errors_are_one_line(
    k8s_kubeconfig: Path, tmp_path: Path, model_text: str | None, node: str, message: str, code: int
) -> None:
    model = _model(tmp_path)
    if model_text is not None:
        model.write_text(model_text)
    result = runner.invoke(app, ["publish", "--model", str(model), "--node", node, "--kubeconfig", str(k8s_kubeconfig)])
    assert result.exit_code == code, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_show_without_a_model_says_so(k8s_kubeconfig: Path, k8s_nodes: Any) -> None:
    k8s_nodes("unprofiled-node", cpu="4", memory="8Gi")
    result = runner.invoke(app, ["show", "--node", "unprofiled-node", "--kubeconfig", str(k8s_kubeconfig)])
    assert result.exit_code == 1
    assert "has no casa.dev/power-model annotation yet" in result.output
