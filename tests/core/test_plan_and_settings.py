"""The Plan document, function identity labels and the settings object."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casa_sched.contract.plan import Container, Plan, PlanError, PredictedMetrics
from casa_sched.conventions import function_of
from casa_sched.settings import SettingsError, load_settings

names = st.text(alphabet="abcdefghij-0123456789", min_size=1, max_size=12)
containers = st.lists(st.builds(Container, node=names, size=st.integers(1, 32)), max_size=5)


@given(st.dictionaries(names, containers, max_size=8), st.integers(0, 10_000))
def test_plan_json_round_trip(functions, epoch):
    plan = Plan(epoch=epoch, containers=functions, epoch_start=dt.datetime(2024, 7, 1, 12, tzinfo=dt.UTC))
    again = Plan.from_json(plan.to_json())
    assert again.to_json() == plan.to_json()
    assert dict(again.containers) == {f: tuple(cs) for f, cs in functions.items() if cs}


def test_plan_queries_and_moves():
    plan = Plan(epoch=1, containers={"f": (Container("n1", 2), Container("n1"), Container("n2"))})
    assert plan.slots_by_node("f") == {"n1": 2, "n2": 1}
    # cores: n1 = (2 + 1)·2 = 6, n2 = 1·2 = 2
    assert plan.allocated_cores_by_node() == {"n1": 6.0, "n2": 2.0}
    moved = plan.with_function("f", [Container("n3")])
    assert moved.slots_by_node("f") == {"n3": 1}
    assert plan.slots_by_node("f") == {"n1": 2, "n2": 1}  # the original is unchanged
    assert plan.with_function("f", []).functions == ()
    pred = plan.with_predicted(PredictedMetrics(1.0, 2.0, 3.0, 0.04, 0.5))
    assert Plan.from_json(pred.to_json()).predicted == pred.predicted


def test_sleeping_nodes_round_trip_sorted_and_host_nothing():
    plan = Plan(epoch=1, containers={"f": (Container("n1"),)}).with_sleeping(["n3", "n2", "n3"])
    assert plan.sleeping_nodes == ("n2", "n3")  # sorted, each once
    assert Plan.from_json(plan.to_json()).sleeping_nodes == ("n2", "n3")
    assert Plan.from_json('{"version": 1, "epoch": 0, "containers": {}}').sleeping_nodes == ()  # older documents
    with pytest.raises(PlanError, match="n1 do"):
        plan.with_sleeping(["n1"])  # n1 hosts f's container


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("[]", "must be an object", id="not-object"),
        pytest.param("{", "not valid JSON", id="broken"),
        pytest.param('{"version": 2, "epoch": 0, "containers": {}}', "unsupported plan version", id="version"),
        pytest.param('{"version": 1, "epoch": 0, "containers": {"f": [{"node": "n"}]}}', "invalid plan", id="no-size"),
        pytest.param(
            '{"version": 1, "epoch": 0, "containers": {"f": [{"node": "n", "size": 0}]}}', "size must be", id="size0"
        ),
    ],
)
def test_bad_plan_documents_are_refused_clearly(text, message):
    with pytest.raises(PlanError, match=message):
        Plan.from_json(text)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        pytest.param({"casa.dev/function": "a", "faas_function": "b"}, "a", id="casa-wins"),
        pytest.param({"serving.knative.dev/service": "k", "faas_function": "b"}, "k", id="knative"),
        pytest.param({"faas_function": "b"}, "b", id="openfaas"),
        pytest.param({"app": "web"}, None, id="no-function"),
        pytest.param(None, None, id="no-labels"),
    ],
)
def test_function_identity(labels, expected):
    assert function_of(labels) == expected


def test_settings_precedence_yaml_env_flags(tmp_path):
    cfg = tmp_path / "casa.yaml"
    cfg.write_text("slo:\n  cstr: 0.08\n  laxity: 12\ncluster:\n  nodes: 8\n")
    s = load_settings(cfg, environ={"CASA_SLO__CSTR": "0.1"})
    assert (s.slo.cstr, s.slo.laxity, s.cluster.nodes) == (0.1, 12.0, 8)  # env beats YAML
    s = load_settings(cfg, overrides={"slo.cstr": 0.02, "cluster.nodes": None}, environ={"CASA_SLO__CSTR": "0.1"})
    assert (s.slo.cstr, s.cluster.nodes) == (0.02, 8)  # flags beat env; unset flags change nothing
    s = load_settings(environ={"CASA_CONFIG": str(cfg)})
    assert s.cluster.nodes == 8


@pytest.mark.parametrize(
    ("yaml_text", "env", "message"),
    [
        pytest.param("slo: {cstr: 2}", {}, r"slo\.cstr: Input should be less than or equal to 1", id="range"),
        pytest.param("slo: {nope: 1}", {}, r"slo\.nope: Extra inputs are not permitted", id="unknown-field"),
        pytest.param("- a\n- b", {}, "mapping at the top level", id="not-a-mapping"),
        pytest.param("slo: [", {}, "not valid YAML", id="bad-yaml"),
        pytest.param("", {"CASA_CLUSTER__NODES": "many"}, r"cluster\.nodes", id="bad-env"),
        pytest.param("", {}, None, id="ok"),
    ],
)
def test_settings_errors_name_the_field(tmp_path, yaml_text, env, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml_text)
    if message is None:
        assert load_settings(cfg, environ=env).slo.cstr == 0.05
        return
    with pytest.raises(SettingsError, match=message):
        load_settings(cfg, environ=env)


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(SettingsError, match="cannot read config file"):
        load_settings(tmp_path / "absent.yaml", environ={})
