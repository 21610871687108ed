"""publish / show errors that need no cluster: a missing node name, credentials or model file.
(The round trip against a real kube-apiserver is tests/kube/test_profiler_publish.py.)"""

from __future__ import annotations

import pytest
from casa_profiler.cli import app
from typer.testing import CliRunner

from casa_sched.models.power import DEFAULT_NODE_CURVE

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        pytest.param(["publish", "--model", "{model}"], {}, 2, "no node name: pass --node or set NODE_NAME", id="no-node-name"),
        pytest.param(["show"], {}, 2, "no node name", id="show-no-node-name"),
        # outside a pod and without --kubeconfig there are no credentials
        pytest.param(["publish", "--model", "{model}", "--node", "n1"], {}, 1, "no Kubernetes credentials", id="no-credentials"),
        pytest.param(["publish", "--model", "{model}"], {"NODE_NAME": "n1"}, 1, "no Kubernetes credentials", id="node-from-env"),
        pytest.param(["publish", "--model", "{missing}", "--node", "n1"], {}, 2, "--model {missing}: no such file", id="missing-model"),
        pytest.param(["publish", "--model", "{binary}", "--node", "n1"], {}, 2, "--model {binary}: not UTF-8 text", id="binary-model"),
        pytest.param(["publish", "--model", "{model}", "--node", "n1", "--kubeconfig", "{missing}"], {}, 2,
                     "--kubeconfig {missing}: no such file", id="missing-kubeconfig"),
        pytest.param(["publish", "--model", "{model}", "--node", "n1", "--kubeconfig", "{binary}"], {}, 2,
                     "--kubeconfig {binary}: not a valid kubeconfig", id="binary-kubeconfig"),
        # a YAML list where a mapping is expected
        pytest.param(["publish", "--model", "{model}", "--node", "n1", "--kubeconfig", "{listyaml}"], {}, 2,
                     "--kubeconfig {listyaml}: not a valid kubeconfig", id="kubeconfig-of-the-wrong-shape"),
    ],
)  # fmt: skip
def test_one_line_errors(tmp_path, monkeypatch, args, env, code, message):
    monkeypatch.delenv("NODE_NAME", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # never in-cluster here
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    model = tmp_path / "model.json"
    model.write_text(DEFAULT_NODE_CURVE.to_json())
    binary = tmp_path / "binary"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    listyaml = tmp_path / "list.yaml"
    listyaml.write_text("- a\n- b\n")
    names = {"model": model, "missing": tmp_path / "absent", "binary": binary, "listyaml": listyaml}
    argv = [a.format(**names) for a in args]
    message = message.format(**names)
    result = runner.invoke(app, argv)
    assert result.exit_code == code  # 2: a bad flag or input file; 1: no cluster
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
