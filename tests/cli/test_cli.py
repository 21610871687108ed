"""The ``casa`` command line: the main job's JSON summary and table, the paper's experiments, help
derived from the settings, the model and settings views, and bad input as one line on stderr."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from rich.console import Console
from typer.testing import CliRunner

from casa_sched.cli.main import app, main
from casa_sched.cli.simulate_cmd import SCENARIO_SETTINGS
from casa_sched.experiments.report import TABLE_UNITS, comparison_lines, summary_table
from casa_sched.settings import SIMULATE_DEFAULTS, CasaSettings

runner = CliRunner()
SUMMARY_KEYS = {
    "carbon_g", "energy_kwh", "cost_usd", "slo_violation_rate", "request_violation_rate", "epochs_meeting_cstr", "load",
    "plan_seconds_mean",
}  # fmt: skip
# Small and quick: one epoch, light load, a short planning budget.
QUICK = ["--epochs", "1", "--intensity", "2", "--time-budget", "0.5"]


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The console script as a user runs it: exit code, stdout, stderr."""
    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(exit_.value.code or 0), out, err


def test_simulate_json_summary_and_files(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["simulate", "--policies", "casa", *QUICK, "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary) == {"casa"}
    assert set(summary["casa"]) == SUMMARY_KEYS
    assert summary["casa"]["carbon_g"] > 0
    assert 0.0 <= summary["casa"]["slo_violation_rate"] <= 1.0
    full = json.loads((out / "summary.json").read_text())["policies"]["casa"]
    # the request-weighted rate: every violation is a drop, so it is the run's dropped share
    assert summary["casa"]["request_violation_rate"] == pytest.approx(full["dropped"] / full["requests"])
    for name in ("summary.json", "epochs.csv", "carbon_by_epoch.png", "slo_by_epoch.png"):
        assert (out / name).stat().st_size > 0
    meta = json.loads((out / "summary.json").read_text())["meta"]
    assert meta["ci_source"].startswith("embedded Tampa")
    assert meta["epochs"] == 1


def test_simulate_table_fits_80_columns(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = runner.invoke(app, ["simulate", "--policies", "casa,binpack", *QUICK, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "policy" in line)
    assert header.split() == ["policy", "carbon", "energy", "cost", "SL_ave", "SL_req", "≤Cstr", "load", "plan"]
    assert any(line.lstrip().startswith("binpack") for line in lines)
    assert "units: carbon g CO2eq" in result.stdout  # the units below the table
    assert max(len(line) for line in lines) <= 80
    assert re.fullmatch(r"casa met Cstr in \d/1 epochs; binpack \d/1; carbon \d+\.\d\dx (less|more) than binpack",
                        lines[-1]), lines[-1]  # fmt: skip


def test_summary_table_keeps_whole_headers_at_80_columns_with_wide_values():
    # Widest plausible cells: 6-digit carbon, 2-digit kWh, 100 % rates, 32/32 epochs, 10 s plans.
    row = {
        "carbon_g": 123456.7, "energy_kwh": 99.999, "cost_usd": 12.3456, "slo_violation_rate": 1.0,
        "request_violation_rate": 1.0, "epochs_meeting_cstr": 32.0, "dropped": 1.0, "requests": 1.0, "load": 1.0, "plan_seconds_mean": 10.0,
    }  # fmt: skip
    meta = {"workload": "Azure Functions 2019 sample (500 functions)", "nodes": 32, "intensity": 320.0, "cstr": 0.05}
    console = Console(width=80, record=True)
    console.print(summary_table({"hybrid": row, "binpack": row}, meta, 32))
    for line in (*TABLE_UNITS, *comparison_lines({"hybrid": row, "binpack": row}, 32)):
        console.print(line)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    assert "123456.7" in text
    assert "32/32" in text


def _row(carbon_g: float, met: int) -> dict[str, float]:
    return {"carbon_g": carbon_g, "epochs_meeting_cstr": float(met)}


def test_comparison_lines_one_per_baseline_against_casa():
    result = {"score": _row(2000.0, 15), "casa": _row(1418.4, 16), "rl": _row(1000.0, 16), "hybrid": _row(1418.4, 9)}
    assert comparison_lines(result, 16) == [
        "casa met Cstr in 16/16 epochs; score 15/16; carbon 1.41x less than score",
        "casa met Cstr in 16/16 epochs; rl 16/16; carbon 1.42x more than rl",
        "casa met Cstr in 16/16 epochs; hybrid 9/16; carbon equal to hybrid",
    ]
    # without casa the first policy is the reference; a single policy has nothing to compare
    assert comparison_lines({"binpack": _row(10.0, 1), "score": _row(20.0, 0)}, 1) == [
        "binpack met Cstr in 1/1 epochs; score 0/1; carbon 2.00x less than score"
    ]
    assert comparison_lines({"casa": _row(10.0, 1)}, 1) == []
    assert comparison_lines({"casa": _row(0.0, 1), "rl": _row(5.0, 1)}, 1) == [
        "casa met Cstr in 1/1 epochs; rl 1/1; carbon 0.0 g against rl's 5.0 g"
    ]


def test_experiment_writes_the_report_and_the_deprecated_flag_still_works(tmp_path, capsys):
    args = ["paper-fig8", "--policies", "casa,score", *QUICK, "--functions", "20"]
    code, out, err = run_main(capsys, "experiment", *args, "--out", str(tmp_path / "new"))
    assert code == 0, err
    assert "wrote" in out
    report = (tmp_path / "new" / "paper-fig8.md").read_text()
    assert report.startswith("# Baseline configuration")
    assert (tmp_path / "new" / "paper-fig8" / "r-20x-n-4" / "summary.json").exists()
    code, _, err = run_main(capsys, "simulate", "--experiment", *args, "--out", str(tmp_path / "old"))
    assert code == 0, err
    assert err.splitlines()[0] == "casa simulate: --experiment is deprecated; use `casa experiment paper-fig8`"
    assert (tmp_path / "old" / "paper-fig8.md").exists()


def test_simulate_help_is_derived_from_the_settings():
    result = runner.invoke(app, ["simulate", "--help"], terminal_width=400)
    assert result.exit_code == 0
    lines: dict[str, str] = {}  # flag -> its help; a long flag's help starts on the next line
    for line in (" ".join(line.split()) for line in result.stdout.splitlines() if line.strip()):
        if line.startswith("--") or not lines:
            lines[line.split()[0]] = line
        else:
            last = next(reversed(lines))
            lines[last] += " " + line
    defaults = CasaSettings()
    for flag in SCENARIO_SETTINGS:
        section, name = flag.key.split(".")
        field = type(getattr(defaults, section)).model_fields[name]
        builtin = getattr(getattr(defaults, section), name)
        assert " ".join((field.description or "").split()) in lines[flag.option], flag.option
        # the embedded scenario's own defaults, and the built-in one the Azure trace starts from
        own = SIMULATE_DEFAULTS.get(flag.key)
        if own is None:
            shown = "none" if builtin is None else f"{builtin}"  # unset: derived (the planning budget)
        elif flag.key == "workload.synthetic_functions":  # the Azure trace does not read it
            shown = f"{own}"
        else:
            shown = f"{own}; {builtin} with --trace azure2019"
        assert lines[flag.option].endswith(f"[default: {shown}]"), flag.option
    assert set(SIMULATE_DEFAULTS) <= {flag.key for flag in SCENARIO_SETTINGS}  # each one a flag
    assert lines["--json"].startswith("--json Print")  # a flag, not "--json <bool>"
    assert lines["--sleep-empty-nodes"].startswith("--sleep-empty-nodes / --no-sleep-empty-nodes Node")
    assert "(default" not in result.stdout  # no default restated by hand


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--policies", "nope"], "--policies: unknown policy 'nope'", id="unknown-policy"),
        pytest.param(["--cstr", "2"], r"slo\.cstr: .* \(got 2\.0 from --cstr\)", id="cstr-out-of-range"),
        pytest.param(["--nodes", "many"], r"Invalid value for '--nodes'", id="nodes-not-int"),
        pytest.param(["--nodez", "4"], r"No such option: --nodez", id="unknown-flag"),
        pytest.param(["--trace", "azure2019"], "needs --trace-dir", id="no-trace-dir"),
        pytest.param(
            ["--trace", "azure2019", "--synthetic-functions", "600"],
            "--synthetic-functions is only used with --trace synthetic",
            id="synthetic-functions-with-azure",
        ),
        pytest.param(
            ["--synthetic-functions", "0"],
            r"workload\.synthetic_functions: .* \(got 0 from --synthetic-functions\)",
            id="synthetic-functions-zero",
        ),
        pytest.param(["--epochs", "999"], "--epochs must be in 1..32", id="too-many-epochs"),
        pytest.param(["--forecast", "psychic"], r"--forecast must be 'oracle' or one of care, ewma", id="bad-forecast"),
        pytest.param(["--start", "yesterday"], "--start must be an ISO 8601", id="bad-start"),
        pytest.param(["--ci-csv", "/nonexistent.csv"], r"'--ci-csv'.*does not exist", id="missing-ci-csv"),
    ],
)
def test_simulate_refuses_bad_flags_with_one_line(capsys, args, message):
    code, out, err = run_main(capsys, "simulate", *args)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("casa simulate: ")
    assert re.search(message, err), err


def test_bad_environment_value_names_the_variable(capsys, monkeypatch):
    monkeypatch.setenv("CASA_SLO__CSTR", "2")
    code, _, err = run_main(capsys, "simulate", "--epochs", "1")
    assert code == 2
    assert "from CASA_SLO__CSTR" in err


def test_unknown_experiment_is_one_line(capsys):
    code, _, err = run_main(capsys, "experiment", "fig99")
    assert code == 2
    assert err == "casa experiment: unknown experiment 'fig99'; known: paper-fig8, paper-fig9, paper-fig10, paper-fig11, power-states-full\n"


def test_models_power_and_config_views():
    power = runner.invoke(app, ["models", "power"])
    assert power.exit_code == 0
    assert "468.0" in power.output  # SPECpower full-load point of the default node
    shown = runner.invoke(app, ["config", "show"])
    assert shown.exit_code == 0
    assert "slo.cstr" in shown.output
    template = runner.invoke(app, ["config", "template"])
    assert "cooling_factor_by_hour" in template.output


def test_starting_casa_loads_no_heavy_module():
    # Every command is registered at start-up, so each must defer its own heavy imports: the
    # extender and autoscaler processes must not carry the simulator's stack, nor `casa simulate`
    # the web and Kubernetes clients. A fresh interpreter shows what importing the CLI loads.
    probe = (
        "import sys, casa_sched.cli.main\n"
        "heavy = ('pandas', 'numba', 'numpy', 'matplotlib', 'fastapi', 'uvicorn', 'kubernetes',\n"
        "         'casa_sched.simulator', 'casa_sched.planners', 'casa_sched.experiments.runner')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "[]"


def _commands(command, path):
    """Every command under a click group, with its path of names."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(sub, (*path, name))


@pytest.mark.parametrize("module", ["casa_sched.cli.main", "casa_profiler.cli", "casa_stress.cli"])
def test_every_boolean_flag_of_every_command_shows_as_a_flag(module):
    import importlib

    import typer
    from typer._click import Context

    app_ = importlib.import_module(module).app
    flags_seen = 0
    for path, command in _commands(typer.main.get_command(app_), ()):
        result = runner.invoke(app_, [*path, "--help"], terminal_width=300)
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, (path, result.output)
        lines = [" ".join(line.split()) for line in result.output.splitlines()]
        for param in command.get_params(Context(command)):  # --help included
            if getattr(param, "is_flag", False) and not param.hidden:
                shown = " / ".join(", ".join(o) for o in (param.opts, param.secondary_opts) if o)
                assert any(line.startswith(shown + " ") or line == shown for line in lines), (path, shown)
                flags_seen += 1
    assert flags_seen >= 1  # --help at least
