"""``casa extender`` flags: the contract with the manifests and the end-to-end tests, the
``extender.*`` settings they override, one readable line (exit 2) for bad input, and a process
free of the simulator's stack. The serving path itself is covered by test_http.py."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from casa_sched.cli.main import app
from casa_sched.extender.runtime import build_runtime
from casa_sched.settings import load_settings

CONTRACT_FLAGS = ("--host", "--port", "--kubeconfig", "--plan-file", "--url-prefix", "--config")


def test_help_lists_the_contract_flags() -> None:
    result = CliRunner().invoke(app, ["extender", "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.output)
    for flag in CONTRACT_FLAGS:
        assert flag in text


def test_unreadable_kubeconfig_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["extender", "--kubeconfig", str(tmp_path / "missing"), "--port", "1"])
    assert result.exit_code == 2
    assert result.output == f"casa extender: --kubeconfig {tmp_path / 'missing'}: no such file\n"


def test_invalid_settings_are_one_line_and_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "casa.yaml"
    cfg.write_text("extender:\n  port: 99999\n")
    result = CliRunner().invoke(app, ["extender", "--config", str(cfg)])
    assert result.exit_code == 2
    assert "extender.port" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # Each knob is a setting: the flag's value goes through the settings' validation.
        pytest.param(
            ["--max-body-bytes", "10"], r"extender.max_body_bytes: .* 1024 .*from --max-body-bytes", id="body"
        ),
        pytest.param(["--assume-ttl-s", "-1"], r"extender.assume_ttl_s: .*from --assume-ttl-s", id="ttl"),
        pytest.param(["--port", "0"], r"extender.port: .*from --port", id="port"),
        pytest.param(["--max-nodes", "0"], r"extender.max_nodes: .*from --max-nodes", id="max-nodes"),
        pytest.param(
            ["--tls-cert-file", "/etc/hostname"], r"tls_cert_file and tls_key_file must be set together", id="tls-half"
        ),
    ],
)
def test_knob_flags_override_settings_and_name_themselves(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["extender", *args])
    assert result.exit_code == 2
    assert re.search(message, result.output), result.output
    assert len(result.output.strip().splitlines()) == 1


def test_unusable_tls_files_are_one_line_and_exit_2(tmp_path: Path) -> None:
    not_pem = tmp_path / "tls.crt"
    not_pem.write_text("not a certificate\n")
    result = CliRunner().invoke(app, ["extender", "--tls-cert-file", str(not_pem), "--tls-key-file", str(not_pem)])
    assert result.exit_code == 2
    assert "not a PEM certificate and its matching private key" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_runtime_takes_the_knobs_from_settings() -> None:
    env = {
        "CASA_EXTENDER__FILTER_VERB": "f",
        "CASA_EXTENDER__PRIORITIZE_VERB": "p",
        "CASA_EXTENDER__URL_PREFIX": "/casa",
        "CASA_EXTENDER__ASSUME_TTL_S": "5",
    }
    runtime = build_runtime(load_settings(environ=env).extender, api_client=None)
    paths = {getattr(r, "path", None) for r in runtime.app.router.routes}
    assert {"/casa/f", "/casa/p"} <= paths
    assert runtime.state.assume_ttl_s == 5.0


# Runs the command's body as far as loading the kubeconfig (after its own heavy imports), in a
# fresh interpreter, then lists which of the simulator's modules that process has loaded.
_PROBE = """
import sys
from casa_sched.cli.main import main
try:
    main(["extender", "--kubeconfig", sys.argv[1]])
except SystemExit as exc:
    assert exc.code == 2, exc.code
assert "uvicorn" in sys.modules and "casa_sched.extender.runtime" in sys.modules  # the body did run
heavy = ("pandas", "numba", "matplotlib", "casa_sched.simulator", "casa_sched.planners", "casa_sched.experiments.runner")
print(sorted(m for m in sys.modules if m.startswith(heavy)))
"""


def test_the_extender_process_loads_neither_pandas_nor_numba(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("")  # a kubeconfig the client loads and refuses
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path / "empty")],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    assert "cannot load kubeconfig" in probe.stderr
    assert probe.stdout.strip() == "[]"
