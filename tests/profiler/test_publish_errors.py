"""publish / show errors that need no cluster: a missing node name, credentials or model file.
(The round trip against a real kube-apiserver is tests/kube/test_profiler_publish.py.)"""

from __future__ import annotations

import pytest
from casa_profiler.cli import app
from typer.testing import CliRunner

from casa_sched.models.power import DEFAULT_NODE_CURVE

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        pytest.param(["publish", "--model", "{model}"], {}, "no node name: pass --node or set NODE_NAME", id="no-node-name"),
        pytest.param(["show"], {}, "no node name", id="show-no-node-name"),
        # outside a pod and without --kubeconfig there are no credentials
        pytest.param(["publish", "--model", "{model}", "--node", "n1"], {}, "no Kubernetes credentials", id="no-credentials"),
        pytest.param(["publish", "--model", "{model}"], {"NODE_NAME": "n1"}, "no Kubernetes credentials", id="node-from-env"),
        pytest.param(["publish", "--model", "{missing}", "--node", "n1"], {}, "cannot read", id="missing-model"),
        pytest.param(["publish", "--model", "{model}", "--node", "n1", "--kubeconfig", "{missing}"], {},
                     "cannot load kubeconfig", id="missing-kubeconfig"),
    ],
)  # fmt: skip
def test_one_line_errors(tmp_path, monkeypatch, args, env, message):
    monkeypatch.delenv("NODE_NAME", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # never in-cluster here
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    model = tmp_path / "model.json"
    model.write_text(DEFAULT_NODE_CURVE.to_json())
    argv = [a.format(model=model, missing=tmp_path / "absent") for a in args]
    result = runner.invoke(app, argv)
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
