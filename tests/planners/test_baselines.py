"""Baselines: Kubernetes scoring arithmetic, KPA replica counts, bin-packing, Hybrid and RL rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from casa_sched.models.power import PowerCurve
from casa_sched.planners import ClusterSnapshot, PlannerConfig, create
from casa_sched.planners.kpa import balanced_allocation, kpa_replicas, least_allocated, most_allocated, score_nodes
from casa_sched.simulator import ClusterSpec, EpochRequests, HourlySignals, NodeSpec, SimParams, Simulator
from casa_sched.simulator.forecast import EpochSignals, Forecast

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "azure-functions-2019-sample500"
CURVE = PowerCurve((0.0, 0.0, 0.0, 2.0, 100.0), 16)
SIG = EpochSignals(np.full(15, 400.0), np.full(15, 0.1), np.full(15, 0.3))


def cluster(n: int = 2, cores: int = 16) -> ClusterSpec:
    return ClusterSpec(tuple(NodeSpec(f"n{i}", cores, 65536.0, CURVE, 0) for i in range(n)))


def forecast(peaks: list[float], t_ave: float = 0.6) -> Forecast:
    # constant per-minute counts whose concurrency is `peak`: count = peak · 60 / T_ave
    counts = np.array([[p * 60.0 / t_ave] * 15 for p in peaks])
    ids = tuple(f"f{i}" for i in range(len(peaks)))
    return Forecast(0, 0.0, ids, counts, np.full(len(peaks), t_ave), np.full(len(peaks), 128.0))


@pytest.mark.parametrize(
    ("requested", "capacity", "least", "most"),
    [
        pytest.param(4000, 16000, 75, 25, id="quarter"),  # (16000-4000)·100/16000 = 75
        pytest.param(3000, 16000, 81, 18, id="integer-division"),  # 13000·100//16000 = 81; 300000//16000 = 18
        pytest.param(17000, 16000, 0, 100, id="over"),
    ],
)
def test_resource_fit_scores(requested, capacity, least, most):
    assert least_allocated(requested, capacity) == least
    assert most_allocated(requested, capacity) == most


def test_balanced_allocation_and_node_choice():
    # cpu 50 %, memory 10 %: (1 - |0.5 - 0.1| / 2) · 100 = 80
    assert balanced_allocation(0.5, 0.1) == 80
    # Two nodes of 16 cores, 64 GiB; n0 already runs 8 cores. A 2-core, 150 MB pod scores
    # n0: fit ((16000-10000)·100//16000 = 37, memory 99) // 2 = 68, balance (1 - |0.625-0.0046|/2)·100 = 68 → 136
    # n1: fit (87 + 99) // 2 = 93, balance (1 - |0.125-0.0023|/2)·100 = 93 → 186: n1 wins (spreading).
    scores = score_nodes([8000, 0], [0, 0], [16000, 16000], [65536, 65536], 2000, 150)
    assert scores[1] > scores[0]
    assert score_nodes([16000, 0], [0, 0], [16000, 16000], [65536, 65536], 2000, 150)[0] == -1


@pytest.mark.parametrize(
    ("concurrency", "expected"),
    [
        pytest.param(0.0, 0, id="idle-scales-to-zero"),
        pytest.param(1.0, 1, id="one-pod"),
        pytest.param(14.0, 1, id="exactly-target"),  # target 0.7 · 20 = 14
        pytest.param(14.5, 2, id="just-over"),
        pytest.param(100.0, 8, id="ceil-100-over-14"),
    ],
)
def test_kpa_replicas(concurrency, expected):
    assert kpa_replicas(concurrency, 20) == expected


def test_score_spreads_kpa_replicas_and_binpack_packs():
    fc = forecast([28.0, 10.0])  # KPA: ceil(28/14) = 2 pods, ceil(10/14) = 1 pod
    snap = ClusterSnapshot(cluster(), SimParams())
    score = create("score").plan(snap, fc, SIG, PlannerConfig())
    assert len(score.containers_of("f0")) == 2
    assert len(score.containers_of("f1")) == 1
    assert len(score.nodes()) == 2  # LeastAllocated spreads over both nodes
    binpack = create("binpack").plan(snap, fc, SIG, PlannerConfig())
    # 1.2 · 28 / 20 → 2 units, 1.2 · 10 / 20 → 1 unit, all on the first node
    assert sum(c.size for c in binpack.containers_of("f0")) == 2
    assert binpack.nodes() == ("n0",)


def test_plans_never_exceed_node_capacity():
    fc = forecast([200.0, 150.0, 90.0])  # far more than 2 × 16 cores
    snap = ClusterSnapshot(cluster(), SimParams())
    for name in ("score", "score-mostallocated", "binpack", "hybrid", "rl"):
        plan = create(name).plan(snap, fc, SIG, PlannerConfig())
        for cores in plan.allocated_cores_by_node().values():
            assert cores <= 16, name


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="../shared/data/azure-functions-2019-sample500 is not present")
@pytest.mark.parametrize("policy", ["score", "binpack", "hybrid", "rl"])
def test_baselines_run_on_the_real_sample(policy):
    from casa_sched.traces import load_workload

    wl = load_workload(SAMPLE).top_k(40).scaled(5.0, seed=0)
    cl = ClusterSpec.uniform(2)
    params = SimParams()
    sim = Simulator(cl, params, HourlySignals.constant(1, 400.0, 0.05, 0.3), 1800.0)
    planner = create(policy)
    previous = None
    for e in range(2):
        counts = wl.counts[:, e * 15 : (e + 1) * 15].astype(np.float64)
        fc = Forecast(e, 900.0 * e, wl.function_ids, counts, wl.t_ave_s, wl.memory_mb)
        plan = planner.plan(ClusterSnapshot(cl, params, previous), fc, SIG, PlannerConfig())
        res = sim.run_epoch(
            plan, EpochRequests(e, 900.0 * e, wl.function_ids, wl.t_ave_s, tuple(wl.arrivals_by_function(e)))
        )
        planner.observe(res)
        previous = plan
        assert res.requests == int(counts.sum())
        assert 0.0 <= res.slo_violation_rate <= 1.0


def test_milp_bound_is_below_every_plan_that_meets_cstr():
    from casa_sched.planners.milp import solve
    from casa_sched.simulator.estimator import Estimator

    fc = forecast([12.0, 6.0, 3.0, 0.5, 0.1], t_ave=0.6)
    cl = cluster(1)
    snap = ClusterSnapshot(cl, SimParams())
    config = PlannerConfig(cstr=0.05, time_budget_s=10)
    bound = solve(snap, fc, SIG, config)
    assert bound.sl_ave <= 0.05 + 1e-9
    for name in ("casa", "binpack", "score"):
        plan = create(name).plan(snap, fc, SIG, config)
        pred = Estimator(cl, SimParams(), fc, SIG, plan).load(plan)  # warm, as the bound assumes
        if pred.sl_ave <= 0.05:
            assert bound.carbon_bound_g <= pred.carbon_g + 1e-6, name


def test_milp_refuses_large_instances():
    from casa_sched.planners import PlannerError

    fc = forecast([1.0] * 70)
    with pytest.raises(PlannerError, match="small instances"):
        create("milp").plan(ClusterSnapshot(cluster(1), SimParams()), fc, SIG, PlannerConfig())
