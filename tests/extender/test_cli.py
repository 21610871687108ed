"""``casa extender`` flags: the contract with the manifests and the end-to-end tests, and one
readable line (exit 2) for bad input. The serving path itself is covered by test_http.py."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from casa_sched.cli.main import app

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
    assert "cannot load kubeconfig" in result.output
    assert "Traceback" not in result.output


def test_invalid_settings_are_one_line_and_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "casa.yaml"
    cfg.write_text("extender:\n  port: 99999\n")
    result = CliRunner().invoke(app, ["extender", "--config", str(cfg)])
    assert result.exit_code == 2
    assert "extender.port" in result.output
