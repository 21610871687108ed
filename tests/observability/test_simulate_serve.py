"""``casa simulate --serve-metrics``: the simulated run's totals under the live metric names."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from casa_sched.cli.main import main
from casa_sched.devcluster.controlplane import free_port

CASA = str(Path(sys.executable).with_name("casa"))


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}  # fmt: skip


@pytest.mark.slow
def test_served_totals_equal_the_run_summary(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "out"
    err = (tmp_path / "stderr").open("w")
    proc = subprocess.Popen(
        [CASA, "simulate", "--serve-metrics", str(port), "--speed", "1e6", "--epochs", "3", "--functions", "6",
         "--policies", "binpack", "--json", "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=err,
    )  # fmt: skip
    try:
        samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for _ in range(1200):  # until the run is done (its summary written) and the last epoch served
            if proc.poll() is not None:
                pytest.fail(f"casa simulate exited {proc.returncode}: {(tmp_path / 'stderr').read_text()[-2000:]}")
            try:
                samples = _samples(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text)
            except requests.RequestException:
                samples = {}
            if (out / "summary.json").exists() and samples.get(("casa_plan_epoch", ())) == 2.0:
                break
            time.sleep(0.1)
        summary = json.loads((out / "summary.json").read_text())["policies"]["binpack"]
        last_epoch = list(csv.DictReader((out / "epochs.csv").read_text().splitlines()))[-1]
    finally:
        proc.terminate()
        proc.wait(10)
        err.close()
    assert samples[("casa_carbon_grams_total", ())] == pytest.approx(summary["carbon_g"])
    assert samples[("casa_energy_joules_total", ())] == pytest.approx(summary["energy_kwh"] * 3.6e6)
    assert samples[("casa_energy_cost_dollars_total", ())] == pytest.approx(summary["cost_usd"])
    requests_total = sum(v for (n, _), v in samples.items() if n == "casa_function_requests_total")
    violations = sum(v for (n, _), v in samples.items() if n == "casa_slo_violations_total")
    assert requests_total == summary["requests"]
    assert violations == summary["dropped"]  # a dropped request is a violation (eq. 6)
    assert samples[("casa_plan_solve_seconds_count", ())] == 3.0  # one solve per epoch
    # the last epoch's SL_ave and request-weighted rate, as epochs.csv has them
    assert samples[("casa_slo_sl_ave_ratio", ())] == pytest.approx(float(last_epoch["slo_violation_rate"]), abs=1e-6)
    assert samples[("casa_slo_request_violation_ratio", ())] == pytest.approx(
        float(last_epoch["request_violation_rate"]), abs=1e-6
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--serve-metrics", "0"], "--serve-metrics must be a port 1..65535, got 0", id="port-zero"),
        pytest.param(["--serve-metrics", "9999", "--speed", "0"], "--speed must be > 0, got 0.0", id="speed-zero"),
        pytest.param(
            ["--serve-metrics", "9999", "--policies", "casa,binpack"], "--serve-metrics serves one policy", id="two"
        ),
    ],
)
def test_bad_serve_flags_are_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", *args, "--epochs", "1", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1
