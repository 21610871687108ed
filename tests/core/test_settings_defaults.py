"""Every promised default, pinned: the settings' values the paper and the README state, and the
few values that must stay written down twice (in a document format) agreeing with them.

The contract types (:class:`ClusterSpec`, :class:`SimParams`, :class:`PlannerConfig`) take their
defaults from the settings' field definitions; the tests below check they really do, so a literal
reintroduced there fails here.
"""

from __future__ import annotations

import dataclasses

import pytest

from casa_sched.contract.cluster import ClusterSpec, NodeSpec, SimParams
from casa_sched.contract.forecast import MINUTE_S, Forecast
from casa_sched.contract.plan import BASE_CPU_CORES, BASE_MEMORY_MB, Plan
from casa_sched.contract.snapshot import ClusterSnapshot, PlannerConfig, site_water
from casa_sched.models.accounting import NO_WATER
from casa_sched.models.power import DEFAULT_NODE_CURVE
from casa_sched.settings import CasaSettings

DEFAULTS = CasaSettings()


@pytest.mark.parametrize(
    ("path", "value"),
    [
        # paper §VI.A's baseline
        pytest.param("cluster.nodes", 4, id="N=4 nodes"),
        pytest.param("cluster.cores_per_node", 128, id="2x EPYC 7713 = 128 cores"),
        pytest.param("cluster.memory_mb_per_node", 65536.0, id="64 GB per node"),
        pytest.param("workload.intensity", 20.0, id="R=20x"),
        pytest.param("workload.epoch_s", 900.0, id="15-minute epochs"),
        pytest.param("workload.base_cpu_cores", 2.0, id="2-core base unit"),
        pytest.param("workload.base_memory_mb", 150.0, id="150 MB base unit"),
        pytest.param("overheads.shutdown_s", 15.0, id="15 s Knative shutdown"),
        pytest.param("slo.laxity", 10.0, id="laxity 10"),
        pytest.param("slo.cstr", 0.05, id="Cstr 5 %"),
        pytest.param("planner.k", 5, id="K=5 failed searches"),
        # README's stated assumptions
        pytest.param("workload.request_cpu_cores", 0.1, id="0.1 core per in-flight request"),
        pytest.param("simulation.keepalive_s", 60.0, id="60 s scale-to-zero keep-alive"),
        pytest.param("simulation.autoscale", True, id="in-epoch autoscaling on"),
        pytest.param("simulation.autoscale_interval_s", 10.0, id="10 s autoscaling windows"),
    ],
)
def test_promised_default(path, value):
    section, name = path.split(".")
    assert getattr(getattr(DEFAULTS, section), name) == value


def test_sim_params_defaults_are_the_settings():
    assert SimParams() == SimParams.from_settings(DEFAULTS)
    # the knobs that used to live only in SimParams are read from settings too
    changed = DEFAULTS.model_copy(
        update={"simulation": DEFAULTS.simulation.model_copy(update={"autoscale": False, "keepalive_s": 5.0})}
    )
    p = SimParams.from_settings(changed)
    assert (p.autoscale, p.keepalive_s, p.autoscale_interval_s) == (False, 5.0, 10.0)


def test_planner_config_defaults_are_the_settings():
    assert PlannerConfig() == PlannerConfig.from_settings(DEFAULTS)


def test_cluster_spec_defaults_are_the_settings():
    node = NodeSpec("n0", 128, 65536.0, DEFAULT_NODE_CURVE, 2)
    uniform = ClusterSpec.uniform(1, DEFAULTS)  # node-0 with the first hop count, 2
    assert dataclasses.replace(uniform, nodes=(node,)) == ClusterSpec((node,))


def test_water_is_not_accounted_unless_the_site_says_so():
    snapshot = ClusterSnapshot(ClusterSpec.uniform(1, DEFAULTS), SimParams())
    assert snapshot.water == NO_WATER
    acc = DEFAULTS.accounting
    assert site_water(DEFAULTS) == (
        type(NO_WATER)(acc.water_l_per_cooling_kwh, acc.water_ci_g_per_l, acc.water_price_usd_per_l)
    )


def test_plan_document_defaults_match_the_settings():
    """The Plan format keeps its own literals (a document written without them must keep its
    meaning whatever the settings), so they are pinned to the settings' defaults here."""
    assert (DEFAULTS.workload.base_cpu_cores, DEFAULTS.workload.base_memory_mb) == (BASE_CPU_CORES, BASE_MEMORY_MB)
    plan = Plan(epoch=0, containers={})
    assert plan.epoch_length_s == DEFAULTS.workload.epoch_s
    bare = Plan.from_dict({"version": 1, "epoch": 0, "containers": {}})
    assert (bare.epoch_length_s, bare.base_cpu_cores, bare.base_memory_mb) == (900.0, 2.0, 150.0)


def test_a_default_forecast_minute_is_sixty_seconds():
    # epoch_s = 900 s is 15 forecast minutes
    assert MINUTE_S == 60.0
    assert [f.default for f in dataclasses.fields(Forecast) if f.name == "minute_s"] == [MINUTE_S]
    assert DEFAULTS.workload.epoch_s / MINUTE_S == 15
