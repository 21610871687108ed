"""``casa simulate`` with no arguments: the embedded scenario README "casa simulate" describes
(``SIMULATE_DEFAULTS`` in the settings, the synthetic trace only), and the property it was chosen
for, checked on its first epochs: Cstr is achievable and the policies differ."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from casa_sched.cli.flags import Overrides
from casa_sched.cli.main import app
from casa_sched.cli.simulate_cmd import DEFAULT_POLICIES, ScenarioInputs, _scenario_factory, simulate_defaults
from casa_sched.experiments.report import summary
from casa_sched.experiments.runner import run_policies
from casa_sched.settings import SIMULATE_DEFAULTS, CasaSettings, load_settings

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(autouse=True)
def _no_casa_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scenario a user gets with nothing set: no CASA_* variable or config file."""
    import os

    for name in [n for n in os.environ if n.startswith("CASA_")]:
        monkeypatch.delenv(name)


def _readme_scenario() -> dict[str, Any]:
    """The figures of README's sentence "With no arguments it replays ..."."""
    text = " ".join(README.read_text(encoding="utf-8").split())
    match = re.search(
        r"With no arguments it replays (\d+) epochs .*? embedded synthetic workload — (\d+) functions .*? "
        r"at R = (\d+)x on (\d+) default nodes .*? whose empty nodes may sleep",
        text,
    )
    assert match, "README no longer describes casa simulate's no-argument scenario"
    epochs, functions, intensity, nodes = (int(g) for g in match.groups())
    return {"epochs": epochs, "functions": functions, "intensity": float(intensity), "nodes": nodes,
            "sleep_empty_nodes": True}  # fmt: skip


def test_no_argument_run_is_the_scenario_readme_describes(tmp_path):
    # the real command, cut to one epoch and one cheap policy; everything else as a user gets it
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["simulate", "--epochs", "1", "--policies", "binpack", "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "summary.json").read_text())["meta"]
    expected = _readme_scenario()
    assert {k: meta[k] for k in expected if k != "epochs"} == {k: v for k, v in expected.items() if k != "epochs"}
    assert meta["workload"].startswith("synthetic")
    assert meta["ci_source"].startswith("embedded Tampa")
    scenario, _ = _scenario_factory(ScenarioInputs(), Overrides({}, {}), simulate_defaults("synthetic"))({})
    assert scenario.epochs == expected["epochs"]  # --epochs unset


def test_the_embedded_defaults_are_simulate_s_own():
    # the live components and --trace azure2019 keep the built-in defaults (the paper's set-up)
    builtin = CasaSettings()
    assert (builtin.workload.synthetic_functions, builtin.workload.intensity) == (500, 20.0)
    assert builtin.cluster.sleep_empty_nodes is False
    assert simulate_defaults("azure2019") == {}
    assert simulate_defaults("synthetic") == SIMULATE_DEFAULTS
    # they sit below the file, the environment and the flags
    env = {"CASA_WORKLOAD__INTENSITY": "5"}
    mine = load_settings(None, {"cluster.sleep_empty_nodes": False}, environ=env, defaults=SIMULATE_DEFAULTS)
    assert (mine.workload.intensity, mine.workload.synthetic_functions, mine.cluster.sleep_empty_nodes) == (
        5.0, 80, False,
    )  # fmt: skip


def test_the_no_argument_scenario_shows_the_trade_off_in_its_first_epochs():
    # The scenario's own definition at reduced length (README shows the full run, measured). CASA's
    # search runs to its own end (the clock never cuts it), so the plans do not depend on this
    # machine's load.
    epochs = 2
    inputs = ScenarioInputs(epochs=epochs)
    unhurried = Overrides({"planner.time_budget_s": 60.0}, {})
    scenario, _ = _scenario_factory(inputs, unhurried, simulate_defaults(inputs.trace))({})
    runs = run_policies(scenario, list(DEFAULT_POLICIES))
    assert runs["casa"].time_bound_epochs == 0
    result = summary(runs)
    casa = result["casa"]
    baselines = [name for name in DEFAULT_POLICIES if name != "casa"]
    # Cstr is achievable: CASA meets it in every epoch
    assert casa["epochs_meeting_cstr"] == epochs, result
    # the policies differ: every baseline emits more carbon, and some miss Cstr where CASA meets it
    for name in baselines:
        assert result[name]["carbon_g"] > 1.02 * casa["carbon_g"], (name, result[name]["carbon_g"], casa["carbon_g"])
    assert any(result[name]["epochs_meeting_cstr"] < epochs for name in baselines), result
