"""Node power states as planned decisions (power management, ``cluster.sleep_empty_nodes``).

The plan's ``sleeping_nodes`` sleep in the estimator and the simulator alike; a node that slept
and is woken delays its containers by ``wake_latency_s``; the baselines' node manager sleeps a
node once it has hosted no container for ``scale_down_unneeded_s``; CASA's carbon optimizer
empties and sleeps a node, its SLO optimizer wakes one.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from casa_sched.contract.cluster import ClusterSpec, NodeSpec, SimParams
from casa_sched.contract.forecast import EpochSignals, Forecast
from casa_sched.contract.plan import Container, Plan
from casa_sched.contract.snapshot import ClusterSnapshot, PlannerConfig
from casa_sched.models.accounting import J_PER_KWH
from casa_sched.models.power import PowerCurve
from casa_sched.planners.casa import CasaPlanner, _Search
from casa_sched.simulator import EpochRequests, Simulator
from casa_sched.simulator.estimator import Estimator

# P(U) = 10 W per busy core + 100 W: P(0) = 100 W, so a sleeping node (10 W) saves 90 W
LINEAR = PowerCurve((0.0, 0.0, 0.0, 10.0, 100.0), 16)
SLEEP_W = 10.0
SIG = EpochSignals(np.full(15, 500.0), np.full(15, 0.1), np.zeros(15))  # 500 g/kWh, no cooling


def cluster(n: int = 2, managed: bool = True, wake_s: float = 60.0, cores: int = 16) -> ClusterSpec:
    return ClusterSpec(
        tuple(NodeSpec(f"n{i}", cores, 1e5, LINEAR, 0) for i in range(n)),
        storage_power_w=0.0,
        network_power_w=0.0,
        image_bandwidth_mb_per_s=100.0,
        switch_delay_s=0.0,
        sleep_empty_nodes=managed,
        sleep_power_w=SLEEP_W,
        wake_latency_s=wake_s,
    )


# no idle or start-up overheads: a node's power is P(busy cores) alone
QUIET = SimParams(image_mb=300.0, idle_cores=0.0, starting_cores=0.0, stopping_cores=0.0, laxity=10.0)


def no_requests(epoch: int, functions: tuple[str, ...] = ("a",)) -> EpochRequests:
    return EpochRequests(
        epoch, 900.0 * epoch, functions, np.ones(len(functions)), tuple(np.zeros(0) for _ in functions)
    )


def energy_j(result_kwh: float) -> float:
    return result_kwh * J_PER_KWH


# -- the simulator charges planned sleep and wake -------------------------------------------------
@pytest.mark.parametrize(
    ("managed", "sleeping", "want_j"),
    [
        # both nodes idle at P(0) = 100 W for 900 s: 2 · 100 · 900 = 180 000 J
        pytest.param(True, (), 180_000.0, id="managed-nothing-planned-asleep"),
        # n1 planned asleep: 100 · 900 + 10 · 900 = 99 000 J
        pytest.param(True, ("n1",), 99_000.0, id="planned-sleep"),
        # power management off: the plan's sleeping set is ignored, 180 000 J
        pytest.param(False, ("n1",), 180_000.0, id="off-ignores-the-plan"),
    ],
)
def test_the_simulator_sleeps_exactly_the_planned_nodes(managed, sleeping, want_j):
    sim = Simulator(cluster(managed=managed), QUIET, 900.0)
    plan = Plan(0, {"a": (Container("n0"),)}, sleeping_nodes=sleeping)
    r = sim.run_epoch(plan, no_requests(0), SIG)
    assert energy_j(r.accounting.energy_kwh) == pytest.approx(want_j)


@pytest.mark.parametrize(
    ("wake_s", "dropped"),
    [
        # n1 slept in epoch 0. Epoch 1 places b there: the container is ready at
        # 900 + wake 60 + cold 300 MB / 100 MB/s = 963 s; a request at 910 s (T_ave 1 s, laxity 10,
        # deadline 920 s) misses, one at 1000 s is served.
        pytest.param(60.0, 1, id="waking-costs-the-wake-latency"),
        # no wake latency: ready at 903 s, both served
        pytest.param(0.0, 0, id="instant-wake"),
    ],
)
def test_a_woken_node_delays_its_containers_by_the_wake_latency(wake_s, dropped):
    sim = Simulator(cluster(wake_s=wake_s), QUIET, 1800.0)
    sim.run_epoch(Plan(0, {"a": (Container("n0"),)}, sleeping_nodes=("n1",)), no_requests(0, ("a", "b")), SIG)
    arrivals = (np.zeros(0), np.array([910.0, 1000.0]))
    r = sim.run_epoch(
        Plan(1, {"a": (Container("n0"),), "b": (Container("n1"),)}),
        EpochRequests(1, 900.0, ("a", "b"), np.ones(2), arrivals),
        SIG,
    )
    assert r.functions["b"].dropped == dropped
    assert r.cold_starts == 1  # b's container, charged as a cold start


# -- the baselines' node manager (cluster-autoscaler scale-down) --------------------------------
@pytest.mark.parametrize(
    ("plan", "manager_s", "want_j"),
    [
        # n1 empty from 0 s: asleep from 600 s. 100 · 900 + 100 · 600 + 10 · 300 = 153 000 J
        pytest.param(Plan(0, {"a": (Container("n0"),)}), 600.0, 153_000.0, id="empty-10-min-sleeps"),
        # no manager (CASA: the plan decides), nothing planned asleep: 180 000 J
        pytest.param(Plan(0, {"a": (Container("n0"),)}), None, 180_000.0, id="no-manager-stays-on"),
        # both nodes host a container: nothing sleeps, 180 000 J
        pytest.param(
            Plan(0, {"a": (Container("n0"),), "b": (Container("n1"),)}), 600.0, 180_000.0, id="hosting-stays-on"
        ),
        # both empty: one node always stays awake, 100 · 900 + 100 · 600 + 10 · 300 = 153 000 J
        pytest.param(Plan(0, {}), 600.0, 153_000.0, id="one-node-stays-awake"),
    ],
)
def test_the_node_manager_sleeps_a_node_empty_for_the_scale_down_time(plan, manager_s, want_j):
    sim = Simulator(cluster(), QUIET, 900.0, node_manager_s=manager_s)
    r = sim.run_epoch(plan, no_requests(0, ("a", "b")), SIG)
    assert energy_j(r.accounting.energy_kwh) == pytest.approx(want_j)


def test_the_node_manager_wakes_a_sleeping_node_for_planned_containers():
    """Epoch 0 leaves n1 empty (asleep from 600 s); epoch 1 places b there: it wakes at 900 s,
    so epoch 1 draws 2 · 100 W · 900 s = 180 000 J; a third epoch without b sleeps n1 again
    from 1800 + 600 s: 100 · 900 + 100 · 600 + 10 · 300 = 153 000 J."""
    sim = Simulator(cluster(), QUIET, 2700.0, node_manager_s=600.0)
    fns = ("a", "b")
    sim.run_epoch(Plan(0, {"a": (Container("n0"),)}), no_requests(0, fns), SIG)
    r1 = sim.run_epoch(Plan(1, {"a": (Container("n0"),), "b": (Container("n1"),)}), no_requests(1, fns), SIG)
    r2 = sim.run_epoch(Plan(2, {"a": (Container("n0"),)}), no_requests(2, fns), SIG)
    assert energy_j(r1.accounting.energy_kwh) == pytest.approx(180_000.0)
    assert energy_j(r2.accounting.energy_kwh) == pytest.approx(153_000.0)


# -- the estimator and CASA's moves ---------------------------------------------------------------
def light_forecast() -> Forecast:
    # a and b: 60 requests a minute of 0.5 s, 0.5 busy slot each: one unit each is plenty
    return Forecast(0, 0.0, ("a", "b"), np.full((2, 15), 60.0), np.full(2, 0.5), np.full(2, 150.0))


def test_emptying_and_sleeping_a_node_saves_its_idle_power():
    """a on n0, b on n1; moving b to n0 and sleeping n1 keeps the busy cores (linear P(U)) and
    saves (P(0) − P_sleep) · 900 s = 90 W · 900 s = 81 000 J = 81 000 / 3.6e6 · 500 g = 11.25 g."""
    est = Estimator(cluster(), QUIET, light_forecast(), SIG)
    before = est.load(Plan(0, {"a": (Container("n0"),), "b": (Container("n1"),)}))
    after, rates = est.try_nodes([(1, ((0, 1),))], sleep=(1,))
    assert before.carbon_g - after.carbon_g == pytest.approx(81_000.0 / J_PER_KWH * 500.0)
    assert before.sl_ave == 0.0
    # both images now share n0's link: 2 · 300 MB / 100 MB/s = 6 s cold, 1.5 s past the wait
    # budget (10 − 1) · 0.5 s = 4.5 s, so 1.5 s of 1 request/s miss, for a and b: 1.5 / 900 each
    assert after.sl_ave == pytest.approx(1.5 / 900.0)
    assert rates.shape == (2,)
    assert est.asleep_nodes() == []  # a try leaves the current plan as it was
    est.commit_nodes([(1, ((0, 1),))], sleep=(1,))
    assert est.plan(0).sleeping_nodes == ("n1",)


@pytest.mark.parametrize(
    ("managed", "sleeping"),
    [
        # the carbon optimizer empties one node (its container moves over) and sleeps it
        pytest.param(True, 1, id="managed-sleeps-a-node"),
        pytest.param(False, 0, id="off-never-sleeps"),
    ],
)
def test_casa_carbon_optimizer_empties_and_sleeps_a_node(managed, sleeping):
    snap = ClusterSnapshot(
        cluster(managed=managed), QUIET, Plan(-1, {"a": (Container("n0"),), "b": (Container("n1"),)})
    )
    plan = CasaPlanner(PlannerConfig(cstr=0.05, gen=60, time_budget_s=30), validate_rounds=0).plan(
        snap, light_forecast(), SIG
    )
    assert len(plan.sleeping_nodes) == sleeping
    assert not set(plan.sleeping_nodes) & set(plan.nodes())


def test_casa_slo_optimizer_wakes_a_node_for_missing_capacity():
    """f: 2400 requests a minute of 6 s = 240 busy slots; n0 holds 8 units = 160 slots, n1 sleeps.
    Only waking n1 and adding a container there removes the overload."""
    fc = Forecast(0, 0.0, ("f",), np.full((1, 15), 2400.0), np.array([6.0]), np.array([150.0]))
    c = cluster()
    prev = Plan(-1, {"f": (Container("n0", 8),)}, sleeping_nodes=("n1",))
    params = dataclasses.replace(QUIET, autoscale=False)
    est = Estimator(c, params, fc, SIG, prev)
    pred = est.load(prev)
    search = _Search(est, ClusterSnapshot(c, params, prev), fc, PlannerConfig(cstr=0.05))
    # n0 is full, so no move on the awake node helps: the first step records that, the next wakes n1
    assert search.slo_step(pred) is None
    assert est.asleep_nodes() == [1]
    moved = search.slo_step(pred)
    assert moved is not None
    assert moved.sl_ave < pred.sl_ave - 0.1  # a third of the requests were dropped (1 − 160/240)
    assert est.asleep_nodes() == []
    assert any(n == 1 for n, _ in est.layout[0])


def test_emptying_a_node_merges_its_containers_into_the_functions_own_elsewhere():
    """a runs on n0 and n1, b on n2: emptying n0 (the cheapest node hosting a) grows a's warm
    container on n1 instead of starting a second one there (no image pull on n1's link, eq. 8);
    once n0 was tried on this plan, the next candidate is n1."""
    prev = Plan(-1, {"a": (Container("n0"), Container("n1")), "b": (Container("n2"),)})
    c = cluster(3)
    est = Estimator(c, QUIET, light_forecast(), SIG, prev)
    est.load(prev)
    search = _Search(est, ClusterSnapshot(c, QUIET, prev), light_forecast(), PlannerConfig(cstr=0.05))
    assert search._sleep_moves(0) == [(0, [(0, ((1, 2),))])]
    search.sleep_tried[0] = search.commits
    assert search._sleep_moves(0) == [(1, [(0, ((0, 2),))])]
    search.sleep_tried[1] = search.commits
    assert search._sleep_moves(0) == []  # both of a's nodes tried on this plan, and no node is empty


def test_starts_on_demand_share_only_the_awake_nodes_links():
    """Twelve functions without a container start on demand; with n1 asleep their image pulls
    all queue on n0's link (eq. 8), as in the simulator, so more of their requests miss the
    deadline than with both links, though n0 alone has room for every one of them."""
    counts = np.zeros((12, 15))
    counts[:, ::3] = 3.0  # a start every third minute (the keep-alive ends in between)
    ids = tuple(f"f{i}" for i in range(12))
    fc = Forecast(0, 0.0, ids, counts, np.full(12, 0.05), np.full(12, 150.0))
    big = cluster(cores=64)
    est = Estimator(big, QUIET, fc, SIG)
    both = est.load(Plan(0, {}))
    one = est.load(Plan(0, {}, sleeping_nodes=("n1",)))
    assert one.sl_ave > both.sl_ave + 0.01
    assert est.free_cores()[0] == 64.0  # room was not the reason
