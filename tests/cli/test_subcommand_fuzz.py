"""Bad input never crashes, the commands the other fuzz files do not drive: every subcommand of
``casa config``, ``casa models`` and ``casa forecast`` (``backtest`` has its own property in
test_bad_input_fuzz.py: its valid runs simulate), driven through each option the command
declares (read from its click definition, so a subcommand or option added later is fuzzed too)
with hostile values and input paths, plus ``CASA_*`` environment overrides; and ``casa-stress``
over all of its options.

Rule asserted (as in test_bad_input_fuzz.py): no traceback; exit 0, or 1/2 with exactly one
stderr line naming the command.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from casa_stress.cli import main as stress_main
from hypothesis import event, given
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from casa_sched.cli.main import app as casa_app
from casa_sched.cli.main import main as casa_main
from casa_sched.settings import CasaSettings
from tests.cli.test_bad_input_fuzz import (
    FILE_BASES,
    NASTY_NUMBERS,
    PATH_KINDS,
    WORDS,
    _materialize,
    _one_line_failure,
    corrupted,
    fuzz,
    invoke,
)

# Subcommands whose valid runs are long (a simulation): fuzzed elsewhere with cheap flags.
LONG_RUNNING = {("forecast", "backtest")}
GROUPS = ("config", "models", "forecast")


def _subcommands() -> list[tuple[str, str, list[str]]]:
    """(group, subcommand, its option names) for every subcommand of GROUPS, from click."""
    root = typer.main.get_command(casa_app)
    out = []
    for group in GROUPS:
        for name, command in root.commands[group].commands.items():  # type: ignore[attr-defined]
            if (group, name) not in LONG_RUNNING:
                opts = [p.opts[0] for p in command.params if p.opts and p.opts[0].startswith("--")]
                out.append((group, name, opts))
    return sorted(out)


SUBCOMMANDS = _subcommands()
VALUES = st.one_of(NASTY_NUMBERS, WORDS, st.just("PATH"))  # PATH: an input file of a drawn kind


def _setting_keys(model: BaseModel, prefix: str = "") -> list[str]:
    keys: list[str] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        keys += _setting_keys(value, f"{prefix}{name}__") if isinstance(value, BaseModel) else [prefix + name]
    return keys


SETTING_ENV = sorted(f"CASA_{k.upper()}" for k in _setting_keys(CasaSettings()))


@contextlib.contextmanager
def _environ(extra: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_every_subcommand_of_the_groups_is_listed() -> None:
    assert ("config", "show", ["--config"]) in SUBCOMMANDS
    assert ("models", "power", []) in SUBCOMMANDS
    assert {"config", "models"} <= {g for g, _, _ in SUBCOMMANDS}


@pytest.mark.timeout(300)
@fuzz(120)
@given(
    data=st.data(),
    target=st.sampled_from(SUBCOMMANDS),
    env=st.dictionaries(
        st.sampled_from([*SETTING_ENV, "CASA_CONFIG", "CASA_NOSUCH__X"]),
        st.one_of(NASTY_NUMBERS, WORDS).filter(lambda v: "\x00" not in v),  # NUL cannot be set in the environment
        max_size=2,
    ),
    stray=st.lists(st.sampled_from(["--nosuch", "extra", "-x"]), max_size=1),
)
def test_config_models_forecast_subcommands_refuse_bad_input_in_one_line(
    data: st.DataObject, target: tuple[str, str, list[str]], env: dict[str, str], stray: list[str]
) -> None:
    group, name, opts = target
    with tempfile.TemporaryDirectory(prefix="casa-fuzz-sub-") as d:
        argv = [group, name]
        for opt in data.draw(st.lists(st.sampled_from(opts), max_size=len(opts), unique=True) if opts else st.just([])):
            value = data.draw(VALUES, label=opt)
            if value == "PATH":
                kind = data.draw(st.sampled_from(PATH_KINDS), label="kind")
                content = data.draw(corrupted(FILE_BASES["settings"]()), label="content")
                value = str(_materialize(Path(d), kind, content))
            argv += [opt, value]
        argv += stray
        with _environ(env):
            result = invoke(casa_main, argv)
    event(f"{group} {name}: exit {result.exit_code}")
    assert "Traceback" not in result.stderr + result.stdout
    if stray:
        assert result.exit_code == 2, (argv, result.stdout)
    _one_line_failure(result, f"casa {group}")


# ---- casa-stress, every option --------------------------------------------------------------

STRESS_OPTIONS = {"--cores": NASTY_NUMBERS, "--util": NASTY_NUMBERS, "--duration": NASTY_NUMBERS,
                  "--period": st.one_of(NASTY_NUMBERS, st.sampled_from(["0.01", "0.05", "10", "10.1", "0.009"])),
                  "--backend": st.one_of(st.sampled_from(["auto", "builtin", "stress-ng"]), WORDS)}  # fmt: skip


def _short(duration: str) -> str:
    """A valid --duration of more than 0.2 s becomes 0.2 s: a valid case loads its cores briefly."""
    with contextlib.suppress(ValidationError):
        if 0.2 < TypeAdapter(float).validate_python(duration) <= 30 * 86_400:
            return "0.2"
    return duration


@fuzz(80)
@given(options=st.dictionaries(st.sampled_from(sorted(STRESS_OPTIONS)), st.just(""), min_size=1), data=st.data())
def test_casa_stress_refuses_every_bad_option_in_one_line(options: dict[str, str], data: st.DataObject) -> None:
    argv: list[str] = []
    for opt in options:
        value = data.draw(STRESS_OPTIONS[opt], label=opt)
        argv += [opt, _short(value) if opt == "--duration" else value]
    if "--duration" not in options:
        argv += ["--duration", "0.2"]
    result = invoke(stress_main, argv)
    event(f"exit {result.exit_code}")
    _one_line_failure(result, "casa-stress")
    if result.exit_code == 0:
        assert result.stdout.startswith("casa-stress: "), result.stdout  # the one report line
