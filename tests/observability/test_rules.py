"""The shipped recording rules and alerts: valid for promtool, and behaving as their unit tests say."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from casa_sched.devcluster.prometheus import find_tool, tools_missing

pytestmark = [pytest.mark.prometheus,
              pytest.mark.skipif(tools_missing() is not None, reason=str(tools_missing()))]

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "manifests" / "prometheus" / "rules.yml"
RULE_TESTS = Path(__file__).with_name("prometheus") / "rules_test.yml"


def _promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(find_tool("promtool")), *args], capture_output=True, text=True, check=False, cwd=cwd)


def test_rules_pass_promtool_check() -> None:
    out = _promtool("check", "rules", str(RULES))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 14 rules found" in out.stdout


def test_rules_pass_their_unit_tests() -> None:
    out = _promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert out.returncode == 0, out.stdout + out.stderr


def test_unit_tests_fail_when_the_cstr_threshold_drifts(tmp_path: Path) -> None:
    """The unit tests bite: with Cstr raised to 10 % the 8 % function no longer alerts."""
    (tmp_path / "manifests" / "prometheus").mkdir(parents=True)
    (tmp_path / "manifests" / "prometheus" / "rules.yml").write_text(
        RULES.read_text().replace("casa:slo_violation_ratio:rate15m > 0.05", "casa:slo_violation_ratio:rate15m > 0.10")
    )
    tests_dir = tmp_path / "tests" / "observability" / "prometheus"
    tests_dir.mkdir(parents=True)
    (tests_dir / "rules_test.yml").write_text(RULE_TESTS.read_text())
    out = _promtool("test", "rules", "rules_test.yml", cwd=tests_dir)
    assert out.returncode != 0
    assert "CasaSLOViolationAboveCstr" in out.stdout + out.stderr
