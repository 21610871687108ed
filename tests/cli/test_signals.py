"""SIGTERM and SIGINT end a long command with one line on stderr, exit 128 + signal, and no
partial output set: the previous outputs stay byte for byte (``casa simulate`` and ``casa forecast
backtest`` run under ``_interruptible``; their writers replace a set only once all of it is written).

The signal is sent once the command has installed its handler (seen in ``/proc/PID/status``), so
the test does not depend on how long imports take.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from casa_sched.experiments.forecast_backtest import BACKTEST_FILES
from casa_sched.experiments.report import OUTPUT_FILES

CASA = [str(Path(sys.executable).with_name("casa"))]  # the console script, as a user runs it


def _catches(pid: int, sig: signal.Signals) -> bool:
    """True when process ``pid`` has a handler installed for ``sig`` (Linux: SigCgt in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    return False


def _interrupt(argv: list[str], sig: signal.Signals, settle_s: float = 1.0) -> subprocess.CompletedProcess[str]:
    """Run ``casa argv``, send ``sig`` ``settle_s`` after its SIGTERM handler is in place, wait."""
    proc = subprocess.Popen([*CASA, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not _catches(proc.pid, signal.SIGTERM):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the command never installed its SIGTERM handler"
        time.sleep(0.05)
    time.sleep(settle_s)  # well inside the run: the signal interrupts the simulation itself
    assert proc.poll() is None, "the run ended before the signal: make it longer"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _previous_set(out: Path, names: tuple[str, ...]) -> None:
    out.mkdir()
    for name in names:
        (out / name).write_text(f"previous {name}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_signal_during_casa_simulate_leaves_the_previous_outputs(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "out"
    _previous_set(out, OUTPUT_FILES)
    # 16 epochs of CASA at the default load: tens of seconds, far longer than the settle time
    run = _interrupt(["simulate", "--policies", "casa,binpack", "--out", str(out)], sig)
    assert run.returncode == 128 + sig, run.stderr
    assert run.stderr.strip().splitlines() == [f"casa simulate: stopped by {sig.name}; no outputs written"]
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)  # no temporary file left
    assert all((out / name).read_text() == f"previous {name}" for name in OUTPUT_FILES)


def test_a_signal_during_casa_forecast_backtest_leaves_the_previous_outputs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _previous_set(out, BACKTEST_FILES)
    run = _interrupt(["forecast", "backtest", "--forecasters", "oracle,ewma", "--out", str(out)], signal.SIGTERM)
    assert run.returncode == 128 + signal.SIGTERM, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("casa ")]  # the rest is progress
    assert errors == ["casa forecast backtest: stopped by SIGTERM; no outputs written"]
    assert sorted(p.name for p in out.iterdir()) == sorted(BACKTEST_FILES)
    assert all((out / name).read_text() == f"previous {name}" for name in BACKTEST_FILES)
