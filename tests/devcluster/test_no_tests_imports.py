"""The benchmarks and the product never import the repository's ``tests``: pyRAPL (the ``pyrapl``
extra) installs a top-level ``tests`` package of its own, which shadows ours (a namespace package)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports_tests(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "tests"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "tests":
            found.append(str(node.module))
    return found


@pytest.mark.parametrize("folder", ["benchmarks", "casa_sched", "profiler", "stress"])
def test_no_module_imports_tests(folder: str) -> None:
    offenders = {str(p.relative_to(ROOT)): m for p in sorted((ROOT / folder).rglob("*.py")) if (m := _imports_tests(p))}
    assert offenders == {}


def test_benchmark_payloads_load_with_a_shadowing_tests_package(tmp_path: Path) -> None:
    """As in an environment with pyRAPL: a regular package ``tests`` ahead of the repository."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "__init__.py").write_text("")
    (tmp_path / "tests" / "utils.py").write_text("")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    code = "import tests; from benchmarks import extender_bench; print(tests.__file__, len(extender_bench.pod_json()))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(str(tmp_path / "tests"))  # the shadow really was in effect
