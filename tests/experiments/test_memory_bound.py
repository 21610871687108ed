"""A run whose busiest epoch cannot be held in memory is refused before it starts, with the
estimate and the flag to change (``check_memory``), and ``casa simulate`` says so in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from casa_sched.experiments.inputs import (
    ARRIVAL_BYTES_PER_REQUEST,
    DRAW_BYTES_PER_BLOCK_REQUEST,
    ScenarioError,
    check_memory,
)
from casa_sched.traces import Workload
from casa_sched.traces.workload import BLOCK_REQUESTS


def _workload(per_minute: list[list[int]]) -> Workload:
    counts = np.asarray(per_minute, dtype=np.int64)
    n = counts.shape[0]
    return Workload(function_ids=tuple(f"f{i}" for i in range(n)), counts=counts, start_minute=480,
                    t_ave_s=np.full(n, 0.5), memory_mb=np.full(n, 128.0), triggers=("http",) * n)  # fmt: skip


# 2 functions × 3 epochs of 2 minutes: epochs hold 3+7 = 10, 0+0 = 0 and 50+30 = 80 requests
WL = _workload([[1, 2, 0, 0, 20, 30], [3, 4, 0, 0, 10, 20]])


def _need_b(peak: int) -> int:
    return peak * ARRIVAL_BYTES_PER_REQUEST + min(peak, BLOCK_REQUESTS) * DRAW_BYTES_PER_BLOCK_REQUEST


@pytest.mark.parametrize(("epochs", "peak"), [(1, 10), (2, 10), (3, 80)], ids=["epoch0", "epochs0-1", "epochs0-2"])
def test_the_busiest_simulated_epoch_must_fit(epochs: int, peak: int) -> None:
    check_memory(WL, 2, epochs, 20.0, _need_b(peak))  # exactly enough: runs
    with pytest.raises(ScenarioError) as err:
        check_memory(WL, 2, epochs, 20.0, _need_b(peak) - 1)
    message = str(err.value)
    assert message.startswith("--intensity 20: the busiest epoch has ")
    assert f" {peak:.3g} requests" in message
    assert message.endswith("lower --intensity, --functions or --synthetic-functions")


def test_casa_simulate_refuses_a_workload_larger_than_memory_before_running(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from casa_sched.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(["simulate", "--policies", "binpack", "--intensity", "1e9", "--epochs", "1", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("casa simulate: --intensity 1e+09: the busiest epoch has ")
    assert "GiB are available: lower --intensity, --functions or --synthetic-functions" in lines[0]
    assert list(tmp_path.iterdir()) == []  # refused before anything was written
