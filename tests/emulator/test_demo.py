"""``casa demo`` as a user runs it: the whole live loop on the emulated cluster, then its table.

One run of two epochs (two functions, clock factor 30: about two minutes) through the real
command in a subprocess: it must report every epoch, the live accounting must agree with what
the emulator replayed (measured: within 0.02 % per epoch; asserted: 1 %), and every process it
started must be gone afterwards. Bad inputs fail with one stderr line before anything starts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from casa_sched.devcluster.cluster import load_state
from casa_sched.devcluster.prometheus import tools_missing

CASA = str(Path(sys.executable).with_name("casa"))


def demo(*args: str, timeout_s: float = 600.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CASA, "demo", *args], capture_output=True, text=True, timeout=timeout_s, check=False)


@pytest.mark.parametrize(("args", "names"), [
    (["--functions", "0"], "--functions"),
    (["--epochs", "17"], "--epochs"),
    (["--nodes", "0"], "--nodes"),
    (["--clock-factor", "nan"], "--clock-factor"),
    (["--policy", "nope"], "--policy"),
])  # fmt: skip
def test_bad_input_is_one_line_and_exit_2_before_anything_starts(args: list[str], names: str, tmp_path: Path) -> None:
    r = demo(*args, "--workdir", str(tmp_path / "w"), timeout_s=60)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert names in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "w").exists()


def test_unwritable_workdir_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = demo("--workdir", str(blocker / "w"), timeout_s=60)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "--workdir" in r.stderr


@pytest.mark.k8s
@pytest.mark.prometheus
@pytest.mark.slow
@pytest.mark.skipif(tools_missing() is not None, reason=str(tools_missing()))
def test_demo_runs_the_loop_and_stops_everything(tmp_path: Path) -> None:
    r = demo("--functions", "2", "--epochs", "2", "--workdir", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["policy"] == "casa"
    assert [e["epoch"] for e in out["epochs"]] == [0, 1]
    for e in out["epochs"]:
        assert e["emulated_carbon_g"] > 0
        assert e["accounted_carbon_g"] == pytest.approx(e["emulated_carbon_g"], rel=0.01)
    s = out["summary"]
    assert s["requests"] > 0
    assert 0.0 <= s["slo_violation_rate"] <= 1.0
    assert s["carbon_g"] == pytest.approx(sum(e["emulated_carbon_g"] for e in out["epochs"]))
    state = load_state(tmp_path / "cluster")
    if state is not None:  # the state file may stay; none of its processes may
        assert not any(state.alive().values()), state.alive()
