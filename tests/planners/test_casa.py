"""CASA's dual local search: switching, acceptance rules, blacklists, warm start, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from casa_sched.contract.cluster import ClusterSpec, NodeSpec, SimParams
from casa_sched.contract.forecast import EpochSignals, Forecast
from casa_sched.contract.plan import Container, Plan
from casa_sched.contract.snapshot import ClusterSnapshot, PlannerConfig
from casa_sched.models.power import PowerCurve
from casa_sched.planners import create
from casa_sched.planners._common import to_plan
from casa_sched.planners.casa import CasaPlanner, _key, _Search, _warm_start
from casa_sched.simulator.estimator import Estimator, Prediction

LINEAR = PowerCurve((0.0, 0.0, 0.0, 10.0, 100.0), 16)


def cluster(n: int = 2, managed: bool = False) -> ClusterSpec:
    return ClusterSpec(
        tuple(NodeSpec(f"n{i}", 16, 1e5, LINEAR, 0) for i in range(n)),
        storage_power_w=0.0,
        network_power_w=0.0,
        image_bandwidth_mb_per_s=100.0,
        switch_delay_s=0.0,
        sleep_empty_nodes=managed,
    )


PARAMS = SimParams(image_mb=100.0, idle_cores=0.05, laxity=10.0)  # 20 slots per 2-core unit


def forecast(counts: list[list[float]], t_ave: list[float]) -> Forecast:
    ids = tuple(f"f{i}" for i in range(len(counts)))
    return Forecast(0, 0.0, ids, np.array(counts, dtype=float), np.array(t_ave), np.full(len(ids), 128.0))


SIGNALS = EpochSignals(np.full(15, 400.0), np.full(15, 0.1), np.full(15, 0.3))


def test_registry_creates_casa():
    assert isinstance(create("casa", PlannerConfig()), CasaPlanner)


@pytest.mark.parametrize(
    ("a", "b", "cstr", "a_first"),
    [
        pytest.param((0.04, 10.0), (0.01, 20.0), 0.05, True, id="both-feasible-lower-carbon-wins"),
        pytest.param((0.06, 1.0), (0.05, 99.0), 0.05, False, id="feasible-beats-infeasible"),
        pytest.param((0.30, 1.0), (0.20, 99.0), 0.05, False, id="both-infeasible-lower-sl-wins"),
    ],
)
def test_best_plan_ordering(a, b, cstr, a_first):
    pa = Prediction(sl_ave=a[0], carbon_g=a[1], energy_kwh=0, cost_usd=0, load=0)
    pb = Prediction(sl_ave=b[0], carbon_g=b[1], energy_kwh=0, cost_usd=0, load=0)
    assert (_key(pa.sl_ave, pa.carbon_g, cstr) < _key(pb.sl_ave, pb.carbon_g, cstr)) is a_first


def test_slo_optimizer_gives_a_short_function_a_container():
    # f0: 600 requests a minute of 0.1 s. Scaling from zero it would miss deadlines of 1 s behind a
    # 1-s cold start only for the first requests, but every minute's burst would be cold without
    # a warm container; f1 has no requests at all.
    fc = forecast([[600.0] * 15, [0.0] * 15], [0.05, 1.0])
    planner = CasaPlanner(PlannerConfig(cstr=0.05, gen=200, time_budget_s=30), validate_rounds=0)
    snap = ClusterSnapshot(cluster(), PARAMS, previous=Plan(epoch=-1, containers={"f0": (Container("n0"),)}))
    plan = planner.plan(snap, fc, SIGNALS)
    assert "f0" in plan.containers  # the warm container is kept: removing it would drop requests
    assert "f1" not in plan.containers
    assert plan.predicted is not None
    assert plan.predicted.slo_violation_rate <= 0.05


def test_carbon_optimizer_removes_containers_nobody_needs():
    # D_{e-1} gave f0 three 4-unit containers; its load (2 requests/s of 0.5 s = 1 busy slot) needs
    # one unit. The carbon optimizer shrinks/removes the rest while SL stays within Cstr.
    fc = forecast([[120.0] * 15], [0.5])
    prev = Plan(epoch=-1, containers={"f0": (Container("n0", 4), Container("n1", 4), Container("n0", 4))})
    planner = CasaPlanner(PlannerConfig(gen=300, time_budget_s=30), validate_rounds=0)
    plan = planner.plan(ClusterSnapshot(cluster(), PARAMS, prev), fc, SIGNALS)
    assert sum(c.size for c in plan.containers_of("f0")) < 12
    assert plan.predicted is not None
    assert plan.predicted.slo_violation_rate <= 0.05
    assert planner.last_trace.carbon_searches > 0


def test_blacklist_after_k_failed_searches():
    fc = forecast([[60.0] * 15], [0.5])
    est = Estimator(cluster(1), PARAMS, fc, SIGNALS)
    est.load(Plan(epoch=0, containers={}))
    search = _Search(est, ClusterSnapshot(cluster(1), PARAMS), fc, PlannerConfig(k=3))
    for _ in range(2):
        search._fail(0, search.fail_ca, search.b_ca)
    assert 0 not in search.b_ca
    search._fail(0, search.fail_ca, search.b_ca)  # the K-th failure blacklists
    assert 0 in search.b_ca
    assert search.exhausted(slo_mode=False)


def test_warm_start_keeps_only_functions_forecast_to_run():
    fc = forecast([[5.0] * 15, [0.0] * 15], [0.5, 0.5])
    prev = Plan(epoch=3, containers={"f0": (Container("n0"),), "f1": (Container("n1"),), "gone": (Container("n1"),)})
    warm = _warm_start(prev, fc)
    assert set(warm.containers) == {"f0"}


def test_same_inputs_give_the_same_plan():
    fc = forecast([[30.0 * (i + 1)] * 15 for i in range(6)], [0.2, 0.5, 1.0, 2.0, 0.05, 0.1])
    config = PlannerConfig(gen=150, time_budget_s=60)
    plans = [
        CasaPlanner(config, validate_rounds=1).plan(ClusterSnapshot(cluster(), PARAMS), fc, SIGNALS).to_json()
        for _ in range(2)
    ]
    assert plans[0] == plans[1]


def test_plans_respect_node_capacity():
    # Far more demand than two 16-core nodes hold: the plan must still fit.
    fc = forecast([[6000.0] * 15 for _ in range(4)], [1.0] * 4)
    plan = CasaPlanner(PlannerConfig(gen=400, time_budget_s=30), validate_rounds=0).plan(
        ClusterSnapshot(cluster(), PARAMS), fc, SIGNALS
    )
    for cores in plan.allocated_cores_by_node().values():
        assert cores <= 16


def _many_functions() -> Forecast:
    rng = np.random.default_rng(4)
    return forecast(rng.uniform(0.0, 60.0, size=(12, 15)).tolist(), rng.uniform(0.1, 3.0, size=12).tolist())


def test_a_search_ended_by_gen_is_reproducible():
    """gen binds long before a generous clock: two runs give the same plan, and the trace says
    the clock played no part."""
    fc, snap = _many_functions(), ClusterSnapshot(cluster(2), PARAMS)
    config = PlannerConfig(cstr=0.05, gen=40, time_budget_s=60.0)
    plans = []
    for _ in range(2):
        planner = CasaPlanner(config)
        plans.append(planner.plan(snap, fc, SIGNALS))
        assert not planner.last_trace.time_bound
        assert planner.last_trace.iterations <= 40
    assert plans[0].containers == plans[1].containers


def test_a_search_cut_by_the_clock_says_so():
    planner = CasaPlanner(PlannerConfig(gen=10**9, time_budget_s=1e-9))
    planner.plan(ClusterSnapshot(cluster(2), PARAMS), _many_functions(), SIGNALS)
    assert planner.last_trace.time_bound
    assert planner.last_trace.stopped_by == "time"


@pytest.mark.parametrize("managed", [False, True], ids=["power-off", "power-managed"])
def test_a_cut_after_any_of_the_first_moves_is_no_worse_than_the_safe_start(managed: bool):
    # Anytime: the incumbent starts at the best of D_{e-1} (here a poor one: everything on one
    # small container), the bin-packing and the Score plan, and is replaced only by a plan with a lower key,
    # so cutting the search after its k-th iteration (k = 0: no search at all) returns a plan rated no worse than that start.
    from casa_sched.planners.binpack import BinPackPlanner
    from casa_sched.planners.casa import _key_of

    fc = forecast([[30000.0] * 15, [6000.0] * 15, [600.0] * 15, [5.0] * 15], [0.2, 0.5, 1.0, 0.1])
    prev = Plan(epoch=-1, containers={"f0": (Container("n0"),), "f3": (Container("n1", 4), Container("n2", 4))})
    snap = ClusterSnapshot(cluster(3, managed), PARAMS, prev)
    config = PlannerConfig(cstr=0.05, time_budget_s=30)

    def rated(plan: Plan) -> tuple[int, float, float, float]:
        est = Estimator(snap.cluster, snap.params, fc, SIGNALS, snap.previous, snap.water)
        return _key_of(est, est.load(plan), config)

    from casa_sched.planners.score import ScorePlanner

    start = min(
        rated(_warm_start(prev, fc)),
        rated(BinPackPlanner(config).plan(snap, fc, SIGNALS)),
        rated(ScorePlanner(config).plan(snap, fc, SIGNALS)),
    )
    assert start < rated(_warm_start(prev, fc))  # D_{e-1} misses Cstr: a cheap policy's plan is the safe start
    accepted = []
    for k in range(13):
        planner = CasaPlanner(PlannerConfig(cstr=0.05, gen=k, time_budget_s=30), validate_rounds=0)
        plan = planner.plan(snap, fc, SIGNALS)
        assert planner.last_trace.iterations <= k
        assert rated(plan) <= start, k
        accepted.append(planner.last_trace.accepted)
    assert accepted[-1] > 0  # the search did move, so the cuts above fell between real moves


def test_the_drop_bound_refuses_meeting_sl_ave_by_abandoning_the_busiest_function():
    # f0 carries 98 % of the requests and the cluster cannot hold all 20 functions at their peak.
    # SL_ave is a mean over functions, so dropping all of f0 (1/20 of the mean) meets Cstr = 5 %
    # exactly; with the drop bound on that plan is infeasible and CASA keeps f0 served.
    from casa_sched.planners.casa import _drop_share

    fc = forecast([[60000.0] * 15] + [[60.0] * 15] * 19, [0.2] + [0.1] * 19)
    prev = Plan(epoch=-1, containers={f"f{i}": (Container(f"n{i % 3}"),) for i in range(1, 20)})
    snap = ClusterSnapshot(cluster(3), PARAMS, prev)
    shares = {}
    for bound in (PlannerConfig().max_drop_share, 1.0):
        planner = CasaPlanner(
            PlannerConfig(cstr=0.05, max_drop_share=bound, gen=300, time_budget_s=30), validate_rounds=0
        )
        plan = planner.plan(snap, fc, SIGNALS)
        est = Estimator(snap.cluster, snap.params, fc, SIGNALS, snap.previous, snap.water)
        est.load(plan)
        shares[bound] = _drop_share(est)
    assert shares[1.0] > 0.9  # unbounded: f0 abandoned
    assert shares[PlannerConfig().max_drop_share] < 0.5  # bounded: f0 keeps the room there is


def test_a_plan_over_the_drop_bound_ranks_below_any_within_it():
    assert _key(0.045, 99.0, 0.05, 0, 0.01, 0.05) < _key(0.03, 1.0, 0.05, 0, 0.60, 0.05)


def test_a_validation_that_cannot_fit_the_budget_is_skipped_and_its_time_searched():
    # The budget covers validation: a check predicted (from the request count) to take longer
    # than its share of the budget is not started; the search keeps the time and the plan is
    # still no worse than the safe start.
    from casa_sched.planners.binpack import BinPackPlanner
    from casa_sched.planners.casa import _key_of

    fc, snap = _many_functions(), ClusterSnapshot(cluster(2), PARAMS)
    config = PlannerConfig(cstr=0.05, gen=60, time_budget_s=30.0)
    slow = CasaPlanner(config, validation_s_per_request=1.0)  # ~10^4 requests: hours per check
    plan = slow.plan(snap, fc, SIGNALS)
    assert slow.last_trace.validations == []
    assert slow.last_trace.validations_skipped == slow.validate_rounds
    assert slow.last_trace.iterations == 60  # gen, not a validation round, ended the search
    est = Estimator(snap.cluster, snap.params, fc, SIGNALS, snap.previous, snap.water)
    binpack = BinPackPlanner(config).plan(snap, fc, SIGNALS)
    start = min(_key_of(est, est.load(_warm_start(None, fc)), config), _key_of(est, est.load(binpack), config))
    assert _key_of(est, est.load(plan), config) <= start


def test_a_validation_that_fits_runs_and_times_itself():
    fc, snap = _many_functions(), ClusterSnapshot(cluster(2), PARAMS)
    planner = CasaPlanner(PlannerConfig(cstr=0.05, gen=60, time_budget_s=30.0), validation_s_per_request=1e-12)
    planner.plan(snap, fc, SIGNALS)
    assert len(planner.last_trace.validations) == planner.validate_rounds
    assert planner.last_trace.validations_skipped == 0
    assert planner.validation_s_per_request > 1e-12  # the prior gave way to the measured rate


@pytest.mark.parametrize("slo_mode", [True, False], ids=["slo-step", "carbon-step"])
def test_a_step_the_clock_cuts_is_abandoned_whole(slo_mode):
    # A step on a big function evaluates many candidates; one still evaluating at the deadline
    # commits nothing and counts no failure, so every accepted move is one the uncut search makes.
    if slo_mode:  # f0 needs ~50 slots and has one 20-slot container: the SLO optimizer has moves
        fc = forecast([[6000.0] * 15, [60.0] * 15], [0.5, 0.2])
        prev = Plan(epoch=-1, containers={"f0": (Container("n0"),), "f1": (Container("n1"),)})
    else:  # f0 needs one unit and holds eight: the carbon optimizer has moves
        fc = forecast([[120.0] * 15, [60.0] * 15], [0.5, 0.2])
        prev = Plan(epoch=-1, containers={"f0": (Container("n0", 4), Container("n1", 4)), "f1": (Container("n1"),)})
    est = Estimator(cluster(2), PARAMS, fc, SIGNALS, prev)
    pred = est.load(prev)
    before = dict(est.layout)
    search = _Search(est, ClusterSnapshot(cluster(2), PARAMS, prev), fc, PlannerConfig(), until=-math.inf)
    moved = search.slo_step(pred) if slo_mode else search.carbon_step(pred)
    assert moved is None
    assert search.cut
    assert est.layout == before
    assert (search.fail_sl, search.fail_ca, search.b_sl, search.b_ca) == ({}, {}, set(), set())
    uncut = _Search(est, ClusterSnapshot(cluster(2), PARAMS, prev), fc, PlannerConfig())
    assert (uncut.slo_step(pred) if slo_mode else uncut.carbon_step(pred)) is not None  # there was a move to cut


@pytest.mark.parametrize(
    ("nodes", "functions", "epoch_s", "budget_s"),
    [
        pytest.param(4, 316, 900.0, 2.0, id="paper-sized: the 2 s floor"),
        pytest.param(128, 500, 900.0, 9.0, id="2 s per 32 nodes + 2 s per 1000 functions"),
        pytest.param(512, 2000, 900.0, 36.0, id="N=512, 2000 functions"),
        pytest.param(4096, 5000, 900.0, 90.0, id="capped at 10 % of the epoch"),
        pytest.param(512, 2000, 60.0, 6.0, id="a 1-minute epoch caps it at 6 s"),
    ],
)
def test_the_default_budget_is_derived_from_the_problem_size_and_the_epoch(nodes, functions, epoch_s, budget_s):
    from casa_sched.contract.snapshot import derived_budget_s

    assert derived_budget_s(nodes, functions, epoch_s) == pytest.approx(budget_s)


def test_casa_plans_within_the_derived_budget_unless_one_is_set():
    # 24 nodes and 40 functions of which 30 are forecast to run: 2 s · 24/32 + 2 s · 30/1000 < the
    # 2 s floor; on 64 nodes 4.06 s; an explicit time_budget_s (--time-budget) wins.
    from casa_sched.contract.snapshot import derived_budget_s

    fc = forecast([[5.0] * 15] * 30 + [[0.0] * 15] * 10, [0.2] * 40)
    for n, budget in ((24, 2.0), (64, 4.06)):
        planner = CasaPlanner(PlannerConfig(gen=5, time_budget_s=None), validate_rounds=0)
        planner.plan(ClusterSnapshot(cluster(n), PARAMS), fc, SIGNALS)
        assert planner.last_trace.budget_s == pytest.approx(budget)
        assert planner.last_trace.budget_s == derived_budget_s(n, 30, 900.0)
    planner = CasaPlanner(PlannerConfig(gen=5, time_budget_s=7.5), validate_rounds=0)
    planner.plan(ClusterSnapshot(cluster(64), PARAMS), fc, SIGNALS)
    assert planner.last_trace.budget_s == 7.5


def test_the_score_plan_is_a_safe_start_when_it_is_rated_best_and_cheap_enough():
    # f0 idles at 10 requests a minute and bursts to 300 in the last three minutes: Score's KPA
    # replicas (size-1 pods) are rated better than bin-packing's plan and than the empty D_{e-1},
    # so with no search at all (gen = 0) CASA returns a plan rated as the Score plan. With a budget
    # too short to bind its pods, the Score plan is left out of the safe starts.
    from casa_sched.planners._kpa import kpa_score_layout
    from casa_sched.planners.binpack import BinPackPlanner
    from casa_sched.planners.casa import _key_of
    from casa_sched.planners.score import ScorePlanner

    fc = forecast([[10.0] * 12 + [300.0] * 3, [20.0] * 15], [0.5, 0.2])
    snap = ClusterSnapshot(cluster(2), PARAMS)
    config = PlannerConfig(cstr=0.05, gen=0, time_budget_s=30)

    def rated(plan: Plan) -> tuple[int, float, float, float]:
        est = Estimator(snap.cluster, snap.params, fc, SIGNALS, snap.previous, snap.water)
        return _key_of(est, est.load(plan), config)

    score, binpack = (
        rated(ScorePlanner(config).plan(snap, fc, SIGNALS)),
        rated(BinPackPlanner(config).plan(snap, fc, SIGNALS)),
    )
    assert score < binpack
    assert score < rated(_warm_start(None, fc))
    planner = CasaPlanner(config, validate_rounds=0)
    assert rated(planner.plan(snap, fc, SIGNALS)) == score
    assert planner.last_trace.start == "score"
    assert planner.last_trace.start_candidates == ["previous", "binpack", "score", "score-folded"]
    assert kpa_score_layout(snap, fc, 0, deadline=-math.inf) is None
    hurried = CasaPlanner(PlannerConfig(cstr=0.05, gen=0, time_budget_s=1e-9), validate_rounds=0)
    hurried.plan(snap, fc, SIGNALS)
    assert hurried.last_trace.start_candidates == ["previous", "binpack"]


def test_folding_keeps_each_functions_units_in_fewer_containers_within_capacity():
    from casa_sched.planners.casa import _folded

    snap = ClusterSnapshot(cluster(2), PARAMS)  # 8 units per node
    spread = {"a": [(0, 1), (1, 1), (0, 1), (1, 1)], "b": [(1, 2)], "c": [(0, 3), (1, 3), (1, 1)]}
    folded = _folded(spread, snap)
    assert folded["a"] == [(0, 4)]  # gathered where it held most (a tie: the first node)
    assert folded["b"] == [(1, 2)]
    assert sorted(folded["c"]) == [(0, 3), (1, 4)]  # 7 units fit on no node with the others: one container per node
    for f, cs in spread.items():
        assert sum(k for _, k in folded[f]) == sum(k for _, k in cs)
    for n in range(2):
        assert sum(k for cs in folded.values() for m, k in cs if m == n) <= 8


def test_from_an_empty_cluster_the_folded_score_plan_is_a_safe_start_that_meets_cstr_where_score_misses():
    # Every container is new in the first epoch and a node's new containers share its image link
    # (eq. 8): Score's 32 one-unit replicas keep every function cold for 8 s x 8 per node; folded into
    # one container per function the same units start after a quarter of that. The SLO optimizer
    # only adds or grows capacity, so the folded plan has to be among the safe starts.
    from casa_sched.planners._kpa import kpa_score_layout
    from casa_sched.planners.casa import _folded, _key_of
    from casa_sched.planners.score import ScorePlanner

    params = SimParams(image_mb=1000.0, idle_cores=0.05, laxity=10.0)
    fc = forecast([[30000.0] * 15] * 4, [0.2] * 4)
    snap = ClusterSnapshot(cluster(4), params)
    config = PlannerConfig(cstr=0.05, gen=0, time_budget_s=30)
    est = Estimator(snap.cluster, snap.params, fc, SIGNALS)
    score = ScorePlanner(config).plan(snap, fc, SIGNALS)
    score_key = _key_of(est, est.load(score), config)
    layout = kpa_score_layout(snap, fc, 0)
    assert layout is not None
    folded = to_plan("casa", snap, fc, SIGNALS, _folded(layout, snap))
    folded_sl = est.load(folded).sl_ave
    folded_key = _key_of(est, est.load(folded), config)
    assert score_key[0] == 1  # Score misses Cstr
    assert folded_key[0] == 0  # folded, it meets it
    assert folded_sl < 0.05
    assert sum(len(cs) for cs in folded.containers.values()) < sum(len(cs) for cs in score.containers.values())
    planner = CasaPlanner(config, validate_rounds=0)
    plan = planner.plan(snap, fc, SIGNALS)
    assert "score-folded" in planner.last_trace.start_candidates
    assert _key_of(est, est.load(plan), config) <= folded_key
