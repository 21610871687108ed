"""The power hook (casa_sched.autoscaler.power_hook): argv templates substituted per argument
(no shell, no injection), a real command run with a timeout, its failures; the hook settings."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from casa_sched.autoscaler.power_hook import HookError, placeholders, render_argv, run_hook
from casa_sched.settings import AutoscalerSettings, SettingsError, load_settings

NAMES = {"bmc": "casa.dev/bmc-address"}


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "hook.py"
    path.write_text(f"#!{sys.executable}\nimport json, sys, time\n{body}\n")
    path.chmod(0o755)
    return path


@pytest.mark.parametrize(("template", "annotations", "argv"), [
    pytest.param(("ipmitool", "-H", "{bmc}", "chassis", "power", "off"), {"casa.dev/bmc-address": "10.0.0.7"},
                 ["ipmitool", "-H", "10.0.0.7", "chassis", "power", "off"], id="ipmitool-bmc"),
    pytest.param(("hook", "--node={node}", "{node}.{bmc}"), {"casa.dev/bmc-address": "b"},
                 ["hook", "--node=n1", "n1.b"], id="node-and-bmc-inside-arguments"),
    # a value with spaces and shell syntax stays one argument and is never interpreted
    pytest.param(("hook", "{bmc}"), {"casa.dev/bmc-address": "x; rm -rf / $(id)"}, ["hook", "x; rm -rf / $(id)"],
                 id="shell-syntax-is-one-literal-argument"),
])
def test_placeholders_are_substituted_per_argument(template: tuple[str, ...], annotations: dict[str, str],
                                                   argv: list[str]) -> None:
    assert render_argv(template, "n1", annotations, NAMES) == argv


@pytest.mark.parametrize(("annotations", "message"), [
    pytest.param({}, "has no annotation casa.dev/bmc-address", id="missing-annotation"),
    pytest.param({"casa.dev/bmc-address": "--help"}, "starts with '-'", id="option-injection"),
    pytest.param({"casa.dev/bmc-address": "a\nb"}, "control character", id="newline"),
])
def test_unsafe_or_missing_values_refuse_the_hook(annotations: dict[str, str], message: str) -> None:
    with pytest.raises(HookError, match=message):
        render_argv(("hook", "{bmc}"), "n1", annotations, NAMES)


def test_a_real_hook_gets_exactly_its_argv(tmp_path: Path) -> None:
    out = tmp_path / "argv.json"
    hook = _script(tmp_path, f"open({str(out)!r}, 'w').write(json.dumps(sys.argv[1:]))")
    argv = render_argv((str(hook), "power", "off", "{node}", "{bmc}"), "n1",
                       {"casa.dev/bmc-address": "10.0.0.7 ; reboot"}, NAMES)
    run_hook(argv, timeout_s=30)
    assert json.loads(out.read_text()) == ["power", "off", "n1", "10.0.0.7 ; reboot"]


def test_a_failing_hook_reports_its_exit_code_and_last_stderr_line(tmp_path: Path) -> None:
    hook = _script(tmp_path, "print('connecting', file=sys.stderr); print('BMC refused', file=sys.stderr); sys.exit(3)")
    with pytest.raises(HookError, match=r"exited 3: BMC refused"):
        run_hook([str(hook)], timeout_s=30)


def test_a_hung_hook_is_killed_at_its_timeout(tmp_path: Path) -> None:
    marker = tmp_path / "finished"
    hook = _script(tmp_path, f"time.sleep(30); open({str(marker)!r}, 'w').write('x')")
    with pytest.raises(HookError, match=r"killed after the 0\.5 s timeout"):
        run_hook([str(hook)], timeout_s=0.5)
    assert not marker.exists()


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, killed but not yet reaped, is not alive)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_hung_wrapper_script_is_killed_with_its_children(tmp_path: Path) -> None:
    # a shell wrapper whose child (think ipmitool) hangs: the whole process group is killed, so
    # no child outlives the hook
    pidfile = tmp_path / "child.pid"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\nsleep 300 >/dev/null 2>&1 &\necho $! > {pidfile}\nwait\n")
    hook.chmod(0o755)
    with pytest.raises(HookError, match=r"killed after the 0\.5 s timeout"):
        run_hook([str(hook)], timeout_s=0.5)
    pid = int(pidfile.read_text())
    for _ in range(100):  # SIGKILL is delivered asynchronously: up to 10 s for the child to die
        if not _alive(pid):
            break
        time.sleep(0.1)
    assert not _alive(pid)


def test_a_missing_executable_is_a_hook_error(tmp_path: Path) -> None:
    with pytest.raises(HookError, match="cannot run"):
        run_hook([str(tmp_path / "nope")], timeout_s=5)


@pytest.mark.parametrize(("env", "message"), [
    pytest.param({"CASA_AUTOSCALER__POWER_MODE": "hook"}, "power_off_command must be set", id="hook-without-commands"),
    pytest.param({"CASA_AUTOSCALER__POWER_MODE": "hook", "CASA_AUTOSCALER__POWER_OFF_COMMAND": '["off", "{rack}"]',
                  "CASA_AUTOSCALER__POWER_ON_COMMAND": '["on"]'}, r"uses \{rack\}", id="unknown-placeholder"),
    pytest.param({"CASA_AUTOSCALER__POWER_HOOK_PLACEHOLDERS": '["bmc"]'}, "NAME=ANNOTATION", id="bad-pair"),
    pytest.param({"CASA_AUTOSCALER__POWER_MODE": "sometimes"}, "power_mode", id="unknown-mode"),
])
def test_bad_hook_settings_name_the_field(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environ=env)


def test_hook_settings_load_from_the_environment() -> None:
    s = load_settings(environ={"CASA_AUTOSCALER__POWER_MODE": "hook",
                               "CASA_AUTOSCALER__POWER_OFF_COMMAND": '["ipmitool", "-H", "{bmc}", "off"]',
                               "CASA_AUTOSCALER__POWER_ON_COMMAND": '["ipmitool", "-H", "{bmc}", "on"]'})
    assert s.autoscaler.power_off_command == ("ipmitool", "-H", "{bmc}", "off")
    assert placeholders(s.autoscaler) == NAMES
    assert AutoscalerSettings().power_mode == "none"  # powering machines down is opt-in
