"""``casa demo`` as a user runs it: the whole live loop on the emulated cluster, then its table.

One run of two epochs (two functions, clock factor 30: about two minutes) through the real
command in a subprocess: it must report every epoch, the live accounting must agree with what
the emulator replayed (measured: within 0.02 % per epoch; asserted: 1 %), it must end with the
dashboard's PNGs drawn from the Prometheus that scraped the accountant and the autoscaler (the
carbon and SLO panels with data), and every process it started must be gone afterwards. Bad
inputs fail with one stderr line before anything starts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from casa_sched.accounting.render import output_names
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
    r = demo("--functions", "2", "--epochs", "2", "--workdir", str(tmp_path), "--out", str(tmp_path / "dash"),
             "--json")
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
    dash = out["dashboard"]
    assert dash["dir"] == str(tmp_path / "dash")
    assert [Path(f).name for f in dash["files"]] == output_names()
    for f in dash["files"]:
        assert Path(f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f
    # the accountant's and the autoscaler's series were scraped during the run
    for title in ("Carbon emitted", "Carbon rate and carbon intensity", "SLO violation rate per function",
                  "SLO: SL_ave and the request-weighted rate", "Plan solve time"):  # fmt: skip
        assert title not in dash["no_data"], dash["no_data"]
    state = load_state(tmp_path / "cluster")
    if state is not None:  # the state file may stay; none of its processes may
        assert not any(state.alive().values()), state.alive()


def test_the_table_is_casa_simulates_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from casa_sched.cli.demo_cmd import _report
    from casa_sched.emulator.loop import EpochLive, LoopConfig

    rec = {"epoch": 0, "requests": 100, "served": 90, "dropped": 10, "slo_violation_rate": 0.1, "carbon_g": 5.0,
           "energy_kwh": 0.01, "cost_usd": 0.001, "load": 0.2, "cold_starts": 1, "containers": 2}  # fmt: skip
    lives = [EpochLive(0, rec, None), EpochLive(1, {**rec, "epoch": 1, "slo_violation_rate": 0.0}, None)]
    dashboard = {"dir": "out/demo", "files": ["out/demo/casa-sched.png", "out/demo/casa-sched-01-carbon.png"],
                 "no_data": ["Resize outcomes"]}  # fmt: skip
    _report((lives, [0.5], dashboard), LoopConfig(workdir=tmp_path, epochs=2), json_out=False)
    out = capsys.readouterr().out
    assert " casa " in out
    assert "10.0" in out  # carbon, summed over the epochs
    assert "1/2" in out  # one epoch meeting Cstr
    assert "epoch 1: 5.00 / n/a" in out
    assert "dashboard: out/demo/casa-sched.png and 1 panel PNGs in out/demo" in out
    assert "no data: Resize outcomes" in out
    assert max(len(line) for line in out.splitlines()) <= 80
