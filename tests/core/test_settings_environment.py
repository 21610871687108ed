"""Where settings come from: the process environment is read once, by ``load_settings``, and
nowhere else; ``CasaSettings()`` and ``casa config template`` are the built-in defaults whatever
the environment holds; an error names the field and the flag, variable or file that set it."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from casa_sched.cli.main import app
from casa_sched.settings import CasaSettings, SettingsError, load_settings


@pytest.fixture
def casa_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process environment that sets two settings (and one build-script variable)."""
    monkeypatch.setenv("CASA_SLO__CSTR", "0.2")
    monkeypatch.setenv("CASA_CLUSTER__NODES", "7")
    monkeypatch.setenv("CASA_K8S_CACHE", "/tmp/k8s")  # hack/build-k8s.sh's, not a setting


def test_the_process_environment_is_the_default_source(casa_env: None) -> None:
    s = load_settings()
    assert (s.slo.cstr, s.cluster.nodes) == (0.2, 7)


def test_an_explicit_environ_replaces_the_process_environment(casa_env: None) -> None:
    s = load_settings(environ={})
    assert (s.slo.cstr, s.cluster.nodes) == (0.05, 4)  # the defaults, not the process's 0.2 and 7
    s = load_settings(environ={"CASA_SLO__LAXITY": "12"})
    assert (s.slo.cstr, s.slo.laxity) == (0.05, 12.0)


def test_constructing_settings_reads_no_environment(casa_env: None) -> None:
    assert CasaSettings().slo.cstr == 0.05
    assert CasaSettings().cluster.nodes == 4


def test_config_template_prints_true_defaults_and_show_the_effective_values(casa_env: None) -> None:
    template = CliRunner().invoke(app, ["config", "template"])
    assert template.exit_code == 0, template.output
    data = yaml.safe_load(template.stdout)
    assert (data["slo"]["cstr"], data["cluster"]["nodes"]) == (0.05, 4)
    assert data == CasaSettings().model_dump(mode="json")
    shown = CliRunner().invoke(app, ["config", "show"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    row = next(line for line in shown.stdout.splitlines() if "slo.cstr" in line)
    assert "0.2" in row


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({"CASA_CLUSTER__SWITCH_HOPS": "[2, 4]"}, (2, 4), id="tuple-as-json"),
        pytest.param({"CASA_K8S_VERSION": "v1.35.4"}, (2, 4, 6), id="non-setting-variable-ignored"),
        pytest.param({"CASA_CONFIG": ""}, (2, 4, 6), id="empty-config-variable"),
    ],
)
def test_environment_values_are_parsed_by_field_type(environ: dict[str, str], expected: tuple[int, ...]) -> None:
    assert load_settings(environ=environ).cluster.switch_hops == expected


@pytest.mark.parametrize(
    ("yaml_text", "environ", "overrides", "message"),
    [
        # The value comes from the highest layer that holds it, and that layer is named.
        pytest.param("", {"CASA_SLO__CSTR": "2"}, {}, "slo.cstr: .* from CASA_SLO__CSTR", id="from-env"),
        pytest.param("slo: {cstr: 2}", {}, {}, r"slo.cstr: .* from .*c\.yaml", id="from-file"),
        pytest.param("slo: {cstr: 2}", {}, {"slo.cstr": 3}, "got 3 from --cstr", id="flag-beats-file"),
        pytest.param("", {"CASA_SLO__CSTRR": "1"}, {}, "slo.cstrr: Extra inputs .* from CASA_SLO__CSTRR", id="typo"),
        pytest.param("", {"CASA_CLUSTER__SWITCH_HOPS": "2,4"}, {}, "must be a JSON list", id="tuple-not-json"),
    ],
)
def test_errors_name_the_source_of_the_bad_value(tmp_path, yaml_text, environ, overrides, message) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(SettingsError, match=message):
        load_settings(cfg, overrides=overrides, environ=environ, flag_names={"slo.cstr": "--cstr"})


def test_a_config_file_named_by_the_environment_is_named_so(tmp_path) -> None:
    absent = tmp_path / "absent.yaml"
    with pytest.raises(SettingsError, match=f"cannot read config file CASA_CONFIG={absent}"):
        load_settings(environ={"CASA_CONFIG": str(absent)})
    bad = tmp_path / "bad.yaml"
    bad.write_text("slo: {cstr: 2}")
    with pytest.raises(SettingsError, match=f"got 2 from CASA_CONFIG={bad}"):
        load_settings(environ={"CASA_CONFIG": str(bad)})
