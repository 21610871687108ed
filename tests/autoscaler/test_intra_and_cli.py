"""Intra-epoch growth decisions (paper §V.D) and the command's input checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from casa_sched.autoscaler.adapters.deployment import workload_from_deployment
from casa_sched.autoscaler.intra import grow, saturated
from casa_sched.autoscaler.snapshot import build_state
from casa_sched.contract.cluster import SimParams
from casa_sched.contract.plan import Container, Plan

from .objects import deployment, node, pod

PARAMS = SimParams()  # 2 cores per unit, 0.1 core per request → 20 slots per unit


def _state(pods, nodes=(("a", "8"), ("b", "16"))):
    ws = [workload_from_deployment(deployment(f"d{f}", f)) for f in ("f", "g")]
    return build_state([node(n, cpu=c) for n, c in nodes], pods, [w for w in ws if w])


PLAN = Plan(epoch=1, containers={"f": (Container("a"), Container("b")), "g": (Container("b"),)})


@pytest.mark.parametrize(("in_flight", "usage", "expected"), [
    # f: two 2-core pods = 2 × 20 = 40 slots; g: one pod = 20 slots
    pytest.param({"f": 40.0, "g": 20.0}, {}, [], id="at-their-slots-not-saturated"),
    pytest.param({"f": 41.0, "g": 5.0}, {}, ["f"], id="one-request-over-40-slots"),
    pytest.param({"f": 50.0, "g": 90.0}, {}, ["g", "f"], id="busiest-first"),
    pytest.param({}, {"fn/g1": 1.9}, ["g"], id="cpu-at-95-percent-of-2-cores"),
    pytest.param({}, {"fn/g1": 1.8}, [], id="cpu-at-90-percent-is-not"),
])
def test_saturation(in_flight, usage, expected) -> None:
    state = _state([pod("f1", "f", "a"), pod("f2", "f", "b"), pod("g1", "g", "b")])
    got = saturated(state, PLAN, ["f", "g"], PARAMS, in_flight, usage, 0.95)
    assert [s.function for s in got] == expected


def test_growth_goes_to_the_node_with_room_and_stops_when_nodes_are_full() -> None:
    # a: 8 cores, f1 (2) + other (6) = full; b: 16 cores, f2 (2) + g1 (2) = 12 free
    pods = [pod("f1", "f", "a"), pod("x", None, "a", cpu="6", namespace="o"), pod("f2", "f", "b"),
            pod("g1", "g", "b")]
    state = _state(pods)
    hot = saturated(state, PLAN, ["f", "g"], PARAMS, {"f": 500.0, "g": 100.0}, {}, 0.95)
    grown = grow(state, PLAN, hot, PARAMS, {})
    assert grown == {"uid-f2": 1, "uid-g1": 1}  # both on b (a is full), busiest (f) first
    # b nearly full: 2 cores free → only the busiest function grows
    full_b = _state([*pods[:3], pod("g1", "g", "b", cpu="12", memory="900Mi")])
    assert grow(full_b, PLAN, hot, PARAMS, {}) == {"uid-f2": 1}
    # no core free anywhere: nothing grows, whatever the load
    none_free = _state([*pods[:3], pod("g1", "g", "b", cpu="14", memory="1050Mi")])
    assert grow(none_free, PLAN, hot, PARAMS, {}) == {}


def test_a_growth_not_yet_applied_is_not_stacked() -> None:
    state = _state([pod("f1", "f", "a"), pod("f2", "f", "b"), pod("g1", "g", "b")])
    hot = saturated(state, PLAN, ["f"], PARAMS, {"f": 500.0}, {}, 0.95)
    # f2 was grown by one unit last tick, its spec still says 1 unit: wait for that resize
    assert grow(state, PLAN, hot, PARAMS, {"uid-f2": 1}) == {"uid-f2": 1, "uid-f1": 1}


CASA = str(Path(sys.executable).parent / "casa")


@pytest.mark.parametrize(("args", "code", "message"), [
    pytest.param(["--policy", "nope"], 2, "--policy: unknown policy 'nope'", id="policy"),
    pytest.param(["--platforms", "lambda"], 2, "--platforms: unknown platform 'lambda'", id="platform"),
    pytest.param(["--epoch-s", "-1"], 2, "workload.epoch_s", id="epoch"),
    pytest.param(["--kubeconfig", "/nonexistent/kubeconfig"], 2, "--kubeconfig /nonexistent/kubeconfig", id="kubeconfig"),
    pytest.param(["--metrics-file", "/nonexistent/m.json"], 2, "--metrics-file", id="metrics-file"),
])
def test_bad_input_is_one_line_and_exit_2(args, code, message) -> None:
    res = subprocess.run([CASA, "autoscaler", *args], capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == code
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("casa autoscaler: ")
    assert message in lines[0]
    assert "Traceback" not in res.stderr


def test_unreachable_api_server_is_exit_1(tmp_path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{name: k, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\nusers: [{name: u, user: {token: t}}]\n")
    res = subprocess.run([CASA, "autoscaler", "--kubeconfig", str(kubeconfig), "--once"], capture_output=True,
                         text=True, timeout=120, check=False)
    assert res.returncode == 1, res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("casa autoscaler: the API server http://127.0.0.1:9 does not answer")


@pytest.mark.parametrize("policy", ["casa", "score", "binpack", "hybrid", "rl"])
def test_the_planner_warm_up_is_a_valid_problem_for_every_policy(policy, caplog):
    from casa_sched.autoscaler.loop import warm_up_planner
    from casa_sched.contract.snapshot import PlannerConfig
    from casa_sched.settings import load_settings

    settings = load_settings(environ={}, overrides={"planner.policy": policy})
    with caplog.at_level("WARNING", logger="casa_sched.autoscaler.loop"):
        seconds = warm_up_planner(settings, PlannerConfig.from_settings(settings), SimParams.from_settings(settings))
    assert seconds >= 0.0
    assert caplog.records == []  # "planner warm-up failed" would mean the dummy epoch is not a valid problem
