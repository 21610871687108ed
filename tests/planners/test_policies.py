"""Every registered policy, through the one interface: registration, provenance, optional parts."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from casa_sched.contract.cluster import ClusterSpec, NodeSpec, SimParams
from casa_sched.contract.forecast import EpochSignals, Forecast
from casa_sched.contract.snapshot import ClusterSnapshot, PlannerConfig
from casa_sched.models.power import PowerCurve
from casa_sched.planners import Planner, PlannerBase, PlannerError, create, policy_names, register
from casa_sched.planners._policies import POLICIES

CURVE = PowerCurve((0.0, 0.0, 0.0, 2.0, 100.0), 16)
CLUSTER = ClusterSpec(tuple(NodeSpec(f"n{i}", 16, 65536.0, CURVE, 0) for i in range(2)))
# a 10-minute epoch, so a plan that kept the Plan default of 900 s would show it
PARAMS = SimParams(epoch_s=600.0)
START = dt.datetime(2024, 7, 1, 12, 15, tzinfo=dt.UTC)
# CI 100, 200, …, 1000 g/kWh → mean 550; price 0.1 $/kWh; E_t 0.2 for 5 min, 0.4 for 5 → mean 0.3
SIGNALS = EpochSignals(np.arange(100.0, 1001.0, 100.0), np.full(10, 0.1), np.repeat([0.2, 0.4], 5))
# f0 at concurrency 6 (600 requests a minute of 0.6 s), f1 at 1, f2 idle: 7000 requests, 2 active
FORECAST = Forecast(
    epoch=3,
    start_s=1800.0,
    function_ids=("f0", "f1", "f2"),
    counts=np.array([[600.0] * 10, [100.0] * 10, [0.0] * 10]),
    t_ave_s=np.full(3, 0.6),
    memory_mb=np.full(3, 128.0),
    start=START,
)
CONFIG = PlannerConfig(gen=50, time_budget_s=30.0)


def test_the_registration_list_holds_every_policy():
    assert policy_names() == ("binpack", "casa", "hybrid", "milp", "rl", "score", "score-mostallocated")


def test_an_unknown_policy_is_named_with_the_known_ones():
    with pytest.raises(PlannerError, match=r"unknown policy 'nope'; known: binpack, casa, hybrid, milp, rl, score"):
        create("nope", CONFIG)


def test_a_policy_name_cannot_be_taken_twice(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("casa_sched.planners._policies.POLICIES", POLICIES.copy())
    register("extra", PlannerBase)  # type: ignore[arg-type]  # no plan(): only the name is checked
    assert "extra" in policy_names()
    with pytest.raises(PlannerError, match="policy 'extra' registered twice"):
        register("extra", PlannerBase)  # type: ignore[arg-type]
    assert "extra" not in POLICIES.names()  # the real registry was left alone


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in POLICIES.names()])
def test_every_policy_stamps_its_plan_with_provenance(name):
    plan = create(name, CONFIG).plan(ClusterSnapshot(CLUSTER, PARAMS), FORECAST, SIGNALS)
    assert plan.epoch == 3
    assert plan.inputs.policy == name
    assert plan.epoch_start == START
    assert plan.epoch_length_s == 600.0  # 10 minutes of 60 s
    assert (plan.base_cpu_cores, plan.base_memory_mb) == (PARAMS.base_cpu_cores, PARAMS.base_memory_mb)
    assert plan.inputs.ci_g_per_kwh == pytest.approx(550.0)
    assert plan.inputs.price_usd_per_kwh == pytest.approx(0.1)
    assert plan.inputs.cooling_factor == pytest.approx(0.3)
    assert plan.inputs.forecast_functions == 2
    assert plan.inputs.forecast_requests == pytest.approx(7000.0)  # (600 + 100) · 10
    assert "f2" not in plan.containers  # the idle function scales to zero


def _never(planner: Planner) -> None:
    raise AssertionError("a policy that does not learn must not run training episodes")


@pytest.mark.parametrize(
    ("name", "learns", "has_trace"),
    [
        pytest.param("casa", False, True, id="casa"),
        pytest.param("score", False, False, id="score"),
        pytest.param("score-mostallocated", False, False, id="score-mostallocated"),
        pytest.param("binpack", False, False, id="binpack"),
        pytest.param("hybrid", False, False, id="hybrid"),
        pytest.param("milp", False, False, id="milp"),
        pytest.param("rl", True, False, id="rl"),
    ],
)
def test_optional_parts_have_documented_defaults(name, learns, has_trace):
    planner = create(name, CONFIG)
    ran: list[str] = []
    planner.train([(lambda p: ran.append(p.name)) if learns else _never])
    assert ran == ([name] if learns else [])
    trace = planner.last_trace
    assert (trace is not None) is has_trace
    if trace is not None:
        assert trace.time_bound is False  # nothing planned yet
