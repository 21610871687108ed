"""``casa-profiler run``: levels, load warnings, an end-to-end profile of a fake RAPL node that
really draws power with the stress, and the one-line errors of a machine without usable RAPL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from casa_profiler.cli import app
from casa_profiler.profile import default_levels, load_warning, parse_levels
from casa_stress import available_cores
from typer.testing import CliRunner

from tests.profiler.fake_rapl import FakeRapl, constant, linear_in_cpu

runner = CliRunner()
CORES = available_cores()
CASA_PROFILER = str(Path(sys.executable).with_name("casa-profiler"))


@pytest.mark.parametrize(
    ("n_cores", "steps", "levels"),
    [
        # 128 cores in 10 steps: 0, 12.8, 25.6, ... 128 (SPECpower's 0..100 % in 10 % steps)
        pytest.param(128, 10, [round(12.8 * i, 3) for i in range(11)], id="128-cores"),
        # 2 cores in 4 steps: half a core at a time
        pytest.param(2, 4, [0.0, 0.5, 1.0, 1.5, 2.0], id="2-cores"),
    ],
)
def test_default_levels(n_cores, steps, levels):
    assert default_levels(n_cores, steps) == pytest.approx(levels)


@pytest.mark.parametrize(
    ("text", "n_cores", "levels", "error"),
    [
        pytest.param("0,1,2", 2, [0.0, 1.0, 2.0], None, id="whole"),
        pytest.param("2,0.5,0,0.5", 2, [0.0, 0.5, 2.0], None, id="sorted-deduplicated"),
        pytest.param("0,3", 2, None, "must lie in 0..2", id="above-all-cores"),
        pytest.param("0,-1", 2, None, "must lie in 0..2", id="negative"),
        pytest.param("0,two", 2, None, "comma-separated numbers", id="not-a-number"),
    ],
)
def test_parse_levels(text, n_cores, levels, error):
    if error:
        with pytest.raises(ValueError, match=error):
            parse_levels(text, n_cores)
    else:
        assert parse_levels(text, n_cores) == levels


@pytest.mark.parametrize(
    ("level", "n_cores", "achieved_pct", "warning"),
    [
        pytest.param(0, 64, 2.0, None, id="quiet-idle"),  # 2 % ≤ 5 %
        pytest.param(0, 64, 30.0, "background load: 30 %", id="busy-idle"),  # 30 % > 5 %
        pytest.param(32, 64, 55.0, None, id="on-target"),  # target 32/64 = 50 %, +5 points
        pytest.param(16, 64, 60.0, "60 % CPU busy against 25 % targeted", id="overshoot"),  # 60 > 25 + 10
        pytest.param(64, 64, 70.0, "only 70 % CPU busy against 100 % targeted", id="held-back"),  # 70 < 100 − 15
    ],
)
def test_load_warnings(level, n_cores, achieved_pct, warning):
    message = load_warning(level, n_cores, achieved_pct)
    if warning is None:
        assert message is None
    else:
        assert message is not None
        assert warning in message


def _run(root: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--meter", "powercap", "--powercap-root", str(root), "--output", str(out), *extra]


@pytest.fixture
def loaded_node(tmp_path: Path) -> Iterator[FakeRapl]:
    # package P = 40 W + 25 W per busy core of this test's stress workers; DRAM a flat 5 W.
    # Range 60 J: at up to 95 W the package counter wraps every ~0.6 s, several times per level.
    with FakeRapl(tmp_path / "powercap", linear_in_cpu(40.0, 25.0), constant(5.0), 60.0) as fake:
        yield fake


@pytest.mark.skipif(len(CORES) < 2, reason="needs 2 cores")
def test_run_profiles_a_node_end_to_end(tmp_path, loaded_node):
    out = tmp_path / "model.json"
    # --max-power-w 150: 60 J / 150 W = 0.4 s before two wraps could hide; 0.2 s reads are well inside.
    # Levels up to one core of two: a shared CI box may run a core's worth of other work, and a
    # saturated node would (rightly) make the profiler refuse its flattened curve.
    result = runner.invoke(app, _run(loaded_node.root, out, "--levels", "0,0.25,0.5,0.75,1", "--settle", "0.5",
                                     "--interval", "0.2", "--samples", "5", "--max-power-w", "150",
                                     "--backend", "builtin", "--max-error-pct", "15", "--plot", str(tmp_path / "fit.png")))  # fmt: skip
    assert result.exit_code == 0, result.output
    # ≥ 5 levels × 1.5 s at ≥ 40 W = 300 J over a 60 J range: the counter wrapped at least 5 times
    assert loaded_node.wraps["intel-rapl:0"] >= 5
    model = json.loads(out.read_text())
    coeffs = model["coefficients"]
    assert model["cores"] == len(CORES)
    # P(U) = 45 + 25·U (package 40 + 25/core, DRAM 5): the fit recovers idle and slope
    assert coeffs["E"] == pytest.approx(45.0, abs=5.0)
    samples = (tmp_path / "model.samples.csv").read_text().splitlines()
    assert samples[0] == "cores,power_w,power_std_w,samples,target_util_pct,achieved_util_pct,stress_util_pct"
    rows = [dict(zip(samples[0].split(","), line.split(","), strict=True)) for line in samples[1:]]
    assert [float(r["cores"]) for r in rows] == [0, 0.25, 0.5, 0.75, 1]
    for r in rows:
        expected_w = 45.0 + 25.0 * float(r["cores"])  # 45, 51.25, 57.5, 63.75, 70 W
        # the fake draws power for the CPU the stress really got, which other work can squeeze a little
        assert float(r["power_w"]) == pytest.approx(expected_w, rel=0.15), r
        assert float(r["stress_util_pct"]) == pytest.approx(float(r["target_util_pct"]), abs=25), r
    assert (tmp_path / "fit.png").stat().st_size > 0
    # the samples CSV fits again on its own
    again = runner.invoke(app, ["fit", "--input", str(tmp_path / "model.samples.csv"), "--output", str(tmp_path / "m2.json"),
                                "--cores", str(len(CORES)), "--max-error-pct", "15"])  # fmt: skip
    assert again.exit_code == 0, again.output


@pytest.mark.skipif(Path("/sys/class/powercap").exists(), reason="this machine has a powercap tree")
def test_run_without_rapl_explains_in_one_line(tmp_path):
    result = subprocess.run([CASA_PROFILER, "run", "--meter", "powercap", "--output", str(tmp_path / "m.json")],
                            capture_output=True, text=True, check=False, timeout=120)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("casa-profiler: no powercap tree at /sys/class/powercap")
    assert "use --meter ipmi or --meter prometheus" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_a_counter_that_does_not_move_fails_in_one_line(tmp_path):
    zone = tmp_path / "pc" / "intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "name").write_text("package-0\n")
    (zone / "energy_uj").write_text("123456\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")
    result = runner.invoke(app, _run(tmp_path / "pc", tmp_path / "m.json", "--levels", "0,1", "--settle", "0",
                                     "--interval", "0.05", "--samples", "2"))  # fmt: skip
    assert result.exit_code == 1
    assert "energy counter did not move in 0.1 s" in result.output
    assert len(result.output.strip().splitlines()) == 2  # the "profiling ..." banner, then the error


@pytest.mark.parametrize(
    ("interval_s", "max_power_w", "message"),
    [
        # 60 J at 150 W wraps in 0.4 s; half of it is the longest interval allowed
        pytest.param("0.3", "150", "--interval 0.3 s is too long for the powercap counters", id="interval-too-long"),
        # at 2000 W the same 60 J range passes in 0.03 s
        pytest.param("0.2", "2000", "sample every ≤ 0.0 s", id="range-too-small-for-default-power"),
    ],
)
def test_intervals_that_could_hide_a_double_wrap_are_refused(tmp_path, loaded_node, interval_s, max_power_w, message):
    result = runner.invoke(app, _run(loaded_node.root, tmp_path / "m.json", "--levels", "0,1", "--settle", "0",
                                     "--interval", interval_s, "--samples", "2", "--max-power-w", max_power_w))  # fmt: skip
    assert result.exit_code == 1
    assert message in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--levels", "0,99"], "--levels must lie in 0..", id="levels-above-cores"),
        pytest.param(["--interval", "0"], "need --settle ≥ 0 s, --interval > 0 s", id="zero-interval"),
        pytest.param(["--backend", "burn"], "--backend must be one of", id="bad-backend"),
        pytest.param(["--meter", "wattmeter"], "unknown meter 'wattmeter'", id="unknown-meter"),
    ],
)
def test_bad_flags_fail_in_one_line(tmp_path, args, message):
    result = runner.invoke(app, ["run", "--output", str(tmp_path / "m.json"), *args])
    assert result.exit_code == 2  # usage: a flag out of range, checked before the sweep
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv to drop to nobody"
)
def test_permission_denied_as_a_normal_user(loaded_node):
    """Real permission check: energy_uj mode 0400 root, the profiler run as nobody (uid 65534)."""
    # a world-traversable copy (pytest's tmp dirs are 0700)
    public = Path(tempfile.mkdtemp(prefix="casa-rapl-"))
    try:
        public.chmod(0o777)  # nobody may write the model there: the energy read is what must fail
        tree = public / "powercap"
        shutil.copytree(loaded_node.root, tree, symlinks=True)
        for path in tree.rglob("*"):
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
            elif path.name == "energy_uj":
                path.chmod(0o400)  # as the kernel has it since CVE-2020-8694
            elif not path.is_symlink():
                path.chmod(0o444)
        result = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", CASA_PROFILER, "run", "--meter", "powercap",
             "--powercap-root", str(tree), "--output", str(public / "m.json")],
            capture_output=True, text=True, check=False, timeout=120, env={**os.environ, "HOME": str(public)},
        )  # fmt: skip
    finally:
        shutil.rmtree(public)
    assert result.returncode == 1, result.stderr
    assert "permission denied reading" in result.stderr
    assert "root-only since 2020" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_signal_mid_profile_stops_every_worker(tmp_path, loaded_node, sig):
    """Pod deletion sends SIGTERM to the profiler: it stops the stress, writes nothing, exits 130."""
    out = tmp_path / "m.json"
    proc = subprocess.Popen([CASA_PROFILER, *_run(loaded_node.root, out, "--levels", str(len(CORES)), "--settle", "30",
                                                  "--interval", "0.2", "--samples", "3", "--max-power-w", "150",
                                                  "--backend", "builtin")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        workers: list[psutil.Process] = []
        while time.monotonic() < deadline:  # signal while the full load settles
            workers = [
                c
                for c in psutil.Process(proc.pid).children(recursive=True)
                if "resource_tracker" not in " ".join(c.cmdline())
            ]
            if len(workers) >= len(CORES):
                break
            time.sleep(0.2)
        os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "casa-profiler: interrupted: the stress is stopped and nothing was written"
    _, alive = psutil.wait_procs(workers, timeout=5)
    assert [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    assert not out.exists()
