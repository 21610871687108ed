"""Flags derived from declarations (``casa_sched.cli.flags``): a settings flag is unset (None)
unless given, so it never hides the file or environment; its help is the field's description and
default; boolean settings are on/off flags; input flags come from a dataclass with their defaults."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from casa_sched.cli.flags import Overrides, SettingFlag, flag, with_flags
from casa_sched.settings import ClusterSettings


@dataclass(frozen=True)
class Inputs:
    trace_dir: Path | None = flag(None, "A directory.", exists=True)
    label: str = flag("plain", "A label.")


seen: list[tuple[Inputs, Overrides, int]] = []
app = typer.Typer(rich_markup_mode=None)


@app.command()
@with_flags(Inputs, (SettingFlag("cluster.nodes"), SettingFlag("cluster.sleep_empty_nodes")))
def probe(repeat: int = 1, *, inputs: Inputs, overrides: Overrides) -> None:
    seen.append((inputs, overrides, repeat))


def run(*args: str) -> tuple[Inputs, Overrides, int]:
    seen.clear()
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return seen[0]


@pytest.mark.parametrize(
    ("args", "values"),
    [
        pytest.param([], {"cluster.nodes": None, "cluster.sleep_empty_nodes": None}, id="unset-is-none"),
        pytest.param(["--nodes", "8"], {"cluster.nodes": 8, "cluster.sleep_empty_nodes": None}, id="int"),
        pytest.param(["--sleep-empty-nodes"], {"cluster.nodes": None, "cluster.sleep_empty_nodes": True}, id="on"),
        pytest.param(["--no-sleep-empty-nodes"], {"cluster.nodes": None, "cluster.sleep_empty_nodes": False}, id="off"),
    ],
)
def test_setting_flags_are_none_unless_given(args, values):
    inputs, overrides, repeat = run(*args)
    assert dict(overrides.values) == values
    assert dict(overrides.flag_names) == {"cluster.nodes": "--nodes", "cluster.sleep_empty_nodes": "--sleep-empty-nodes"}
    assert (inputs, repeat) == (Inputs(), 1)


def test_input_flags_fill_the_dataclass_and_own_parameters_stay(tmp_path):
    inputs, _, repeat = run("--trace-dir", str(tmp_path), "--label", "x", "--repeat", "3")
    assert (inputs, repeat) == (Inputs(trace_dir=tmp_path, label="x"), 3)


def test_help_is_the_fields_description_and_default():
    text = " ".join(CliRunner().invoke(app, ["--help"], terminal_width=300).output.split())
    nodes = ClusterSettings.model_fields["nodes"]
    assert f"--nodes <int> {nodes.description} [default: 4]" in text
    assert "--sleep-empty-nodes / --no-sleep-empty-nodes Node power management" in text  # no "<bool>"
    assert "[default: False]" in text
    assert "--label <str> A label. [default: plain]" in text


def test_a_missing_path_is_refused_before_the_command_runs(tmp_path):
    seen.clear()
    result = CliRunner().invoke(app, ["--trace-dir", str(tmp_path / "absent")])
    assert result.exit_code == 2
    assert "'--trace-dir'" in result.output
    assert seen == []


def test_a_flag_declared_twice_is_refused_at_import():
    def command(nodes: int = 1, *, inputs: Inputs, overrides: Overrides) -> None: ...

    with pytest.raises(TypeError, match="flags declared twice"):
        with_flags(Inputs, (SettingFlag("cluster.nodes"),))(command)
