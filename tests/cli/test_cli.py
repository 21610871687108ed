"""The ``casa`` command line: the main job's JSON summary, the model and settings views, bad flags."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from casa_sched.cli.main import full_app

runner = CliRunner()
app = full_app()
SUMMARY_KEYS = {"carbon_g", "energy_kwh", "cost_usd", "slo_violation_rate", "load", "plan_seconds_mean"}


def test_simulate_json_summary_and_files(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "simulate",
            "--policies",
            "casa",
            "--epochs",
            "1",
            "--intensity",
            "2",
            "--time-budget",
            "0.5",
            "--json",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary) == {"casa"}
    assert set(summary["casa"]) == SUMMARY_KEYS
    assert summary["casa"]["carbon_g"] > 0
    assert 0.0 <= summary["casa"]["slo_violation_rate"] <= 1.0
    for name in ("summary.json", "epochs.csv", "carbon_by_epoch.png", "slo_by_epoch.png"):
        assert (out / name).stat().st_size > 0
    meta = json.loads((out / "summary.json").read_text())["meta"]
    assert meta["ci_source"].startswith("embedded Tampa")
    assert meta["epochs"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--policies", "nope"], "unknown policy 'nope'", id="unknown-policy"),
        pytest.param(["--cstr", "2"], "slo.cstr", id="cstr-out-of-range"),
        pytest.param(["--trace", "azure2019"], "needs --trace-dir", id="no-trace-dir"),
        pytest.param(["--epochs", "999"], "--epochs must be in 1..32", id="too-many-epochs"),
        pytest.param(["--forecast", "psychic"], "--forecast must be", id="bad-forecast"),
        pytest.param(["--ci-csv", "/nonexistent.csv"], "no such file", id="missing-ci-csv"),
        pytest.param(["--experiment", "fig99"], "unknown --experiment", id="bad-experiment"),
    ],
)
def test_simulate_refuses_bad_flags_with_one_line(args, message):
    result = runner.invoke(app, ["simulate", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_models_power_and_config_views():
    power = runner.invoke(app, ["models", "power"])
    assert power.exit_code == 0
    assert "468.0" in power.output  # SPECpower full-load point of the default node
    shown = runner.invoke(app, ["config", "show"])
    assert shown.exit_code == 0
    assert "slo.cstr" in shown.output
    template = runner.invoke(app, ["config", "template"])
    assert "cooling_factor_by_hour" in template.output
