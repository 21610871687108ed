"""The request-level simulator on tiny clusters whose results can be worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from casa_sched.contract.cluster import ClusterSpec, NodeSpec, SimParams, SimulationError
from casa_sched.contract.forecast import EpochSignals
from casa_sched.models.power import PowerCurve
from casa_sched.settings import CasaSettings
from casa_sched.simulator import EpochRequests, HourlySignals, Simulator, plan_from_mapping

# P(U) = 100 W + 10 W per busy core on an 8-core node; no storage/network power, no cooling.
LINEAR = PowerCurve((0.0, 0.0, 0.0, 10.0, 100.0), 8)


def tiny(n_nodes: int = 1, **overrides: object) -> tuple[ClusterSpec, SimParams]:
    cluster = ClusterSpec(
        tuple(NodeSpec(f"n{i}", 8, 1e4, LINEAR, switch_hops=0) for i in range(n_nodes)),
        storage_power_w=0.0,
        network_power_w=0.0,
        image_bandwidth_mb_per_s=100.0,  # a 100 MB image takes 1 s (eq. 8)
        switch_delay_s=0.0,
    )
    values: dict[str, object] = {
        "request_cpu_cores": 1.0,  # one slot per 1-core unit
        "base_cpu_cores": 1.0,
        "image_mb": 100.0,
        "starting_cores": 0.0,
        "idle_cores": 0.0,
        "stopping_cores": 0.0,
        "epoch_s": 100.0,
        "autoscale": False,
        "laxity": 10.0,
    }
    values.update(overrides)
    return cluster, SimParams(**values)  # type: ignore[arg-type]


def run(cluster, params, plans_and_requests, ci=500.0):
    sim = Simulator(cluster, params, params.epoch_s * len(plans_and_requests))
    signals = EpochSignals.constant(1, ci, 0.1, 0.0)  # one value for the whole 100 s epoch
    results = [sim.run_epoch(plan, req, signals) for plan, req in plans_and_requests]
    return sim, results


def req(epoch, arrivals_by_fn, t_ave=1.0, epoch_s=100.0):
    fns = sorted(arrivals_by_fn)
    return EpochRequests.build(epoch, epoch * epoch_s, fns, [t_ave] * len(fns), [arrivals_by_fn[f] for f in fns])


def test_cold_start_queueing_and_carbon_on_one_node():
    cluster, params = tiny()
    plan = plan_from_mapping(0, {"f": [("n0", 1)]})
    _, (r,) = run(cluster, params, [(plan, req(0, {"f": [0.0, 0.5, 5.0]}))])
    f = r.functions["f"]
    # Cold start 100 MB / 100 MB/s = 1 s. One slot: request 0 runs 1→2 (waits 1 s), request 1
    # runs 2→3 (waits 1.5 s), request 2 runs 5→6. Deadlines are 10 s after arrival: none dropped.
    assert (f.served, f.dropped, f.waited) == (3, 0, 2)
    assert f.wait_s_total == pytest.approx(2.5)
    # Energy: 100 W for 100 s + 10 W × 3 busy core-seconds = 10,030 J = 0.0027861 kWh;
    # carbon 500 g/kWh × 0.0027861 kWh = 1.3931 g; cost 0.1 $/kWh × 0.0027861 = 0.00027861 $.
    assert r.energy_kwh == pytest.approx(10_030 / 3.6e6)
    assert r.carbon_g == pytest.approx(500 * 10_030 / 3.6e6)
    assert r.cost_usd == pytest.approx(0.1 * 10_030 / 3.6e6)
    # Load: 3 core-seconds over 8 cores × 100 s.
    assert r.load == pytest.approx(3 / 800)
    assert r.cold_starts == 1


def test_requests_that_cannot_meet_their_deadline_are_dropped():
    cluster, params = tiny(laxity=2.0)
    plan = plan_from_mapping(0, {"f": [("n0", 1)]})
    _, (r,) = run(cluster, params, [(plan, req(0, {"f": [0.0, 0.0, 0.0]}))])
    # Ready at 1 s. Request 0: 1→2, deadline 0 + 2·1 = 2: met. Requests 1 and 2 would run
    # 2→3 and 3→4, past their deadline of 2 s: dropped, so SL_f = 2/3.
    assert (r.functions["f"].served, r.functions["f"].dropped) == (1, 2)
    assert r.slo_violation_rate == pytest.approx(2 / 3)


def test_sl_ave_is_the_unweighted_mean_over_active_functions():
    cluster, params = tiny(laxity=2.0)
    plan = plan_from_mapping(0, {"f": [("n0", 1)], "g": [("n0", 1)], "idle": [("n0", 1)]})
    # Both cold-start together: 200 MB / 100 MB/s = 2 s, so f's request at 0 s (deadline 2 s)
    # misses; g's 80 requests 1.1 s apart from 10 s never queue on their 1-s slot: all met.
    # SL_ave = (1/1 + 0/80) / 2 = 0.5 (unweighted by request counts).
    g_arrivals = [10.0 + i * 1.1 for i in range(80)]
    _, (r,) = run(cluster, params, [(plan, req(0, {"f": [0.0], "g": g_arrivals}))])
    assert r.functions["f"].dropped == 1
    assert r.functions["g"].dropped == 0
    assert r.slo_violation_rate == pytest.approx(0.5)
    assert "idle" not in r.functions  # no requests: not active, not in SL_ave


def test_kept_containers_stay_warm_and_removed_ones_pay_shutdown():
    cluster, params = tiny(stopping_cores=1.0, shutdown_s=15.0)
    p0 = plan_from_mapping(0, {"f": [("n0", 1)], "g": [("n0", 1)]})
    p1 = plan_from_mapping(1, {"f": [("n0", 1)]})
    _, (r0, r1) = run(cluster, params, [(p0, req(0, {"f": [50.0]})), (p1, req(1, {"f": [100.0]}))])
    # Epoch 1: f's container is kept, so the request at 100 s starts at once (no cold start).
    assert r1.functions["f"].waited == 0
    assert r1.cold_starts == 0
    # g is removed: 1 core for 15 s while it stops. Epoch 1 energy: 100 W · 100 s
    # + 10 W · 1 busy core-second + 10 W · 15 core-seconds = 10,160 J.
    assert r1.energy_kwh == pytest.approx(10_160 / 3.6e6)
    # Epoch 0: two images share the link (200 MB → 2 s); one busy core-second.
    assert r0.energy_kwh == pytest.approx(10_010 / 3.6e6)


def test_a_function_without_container_starts_one_on_demand_and_scales_to_zero():
    cluster, params = tiny(keepalive_s=20.0, autoscale_interval_s=10.0)
    empty = plan_from_mapping(0, {})
    # Request at 10 s: on-demand container, cold 1 s → runs 11→12 (waits 1 s). Idle for 20 s
    # after 12 s → released at the first window edge ≥ 32 s, i.e. 40 s. The request at 60 s
    # therefore cold-starts again: 60→61 ready, runs 61→62.
    _, (r,) = run(cluster, params, [(empty, req(0, {"f": [10.0, 60.0]}))])
    f = r.functions["f"]
    assert (f.served, f.dropped, f.waited) == (2, 0, 2)
    assert f.wait_s_total == pytest.approx(2.0)
    assert r.on_demand_starts == 2


def test_full_cluster_drops_requests_of_functions_without_containers():
    cluster, params = tiny()
    full = plan_from_mapping(0, {"big": [("n0", 8)]})  # all 8 cores allocated
    _, (r,) = run(cluster, params, [(full, req(0, {"big": [1.5], "late": [5.0, 6.0]}))])
    assert r.functions["late"].dropped == 2
    assert r.on_demand_starts == 0


def test_autoscaling_grows_a_saturated_container_in_place():
    cluster, params = tiny(autoscale=True, autoscale_interval_s=10.0, laxity=100.0)
    plan = plan_from_mapping(0, {"f": [("n0", 1)]})
    # 4 requests/s of 1 s each on one slot saturate it in the first window; after each 10-s
    # window the container grows one unit (one more slot) until it keeps up (4 slots).
    arrivals = list(np.arange(0.0, 60.0, 0.25))
    _, (r,) = run(cluster, params, [(plan, req(0, {"f": arrivals}))])
    assert r.autoscale_grows >= 3
    assert r.functions["f"].dropped == 0


def test_allocated_utilisation_counts_allocated_cores():
    cluster, params = tiny(utilisation="allocated")
    plan = plan_from_mapping(0, {"f": [("n0", 4)]})
    _, (r,) = run(cluster, params, [(plan, req(0, {"f": [10.0]}))])
    # 4 of 8 cores allocated for the whole epoch: load 0.5, energy (100 + 10·4) W · 100 s.
    assert r.load == pytest.approx(0.5)
    assert r.energy_kwh == pytest.approx(14_000 / 3.6e6)


@pytest.mark.parametrize(
    ("containers", "message"),
    [
        pytest.param({"f": [("n0", 9)]}, "allocates 9 cores on n0", id="over-capacity"),
        pytest.param({"f": [("nX", 1)]}, "unknown node 'nX'", id="unknown-node"),
    ],
)
def test_infeasible_plans_are_refused(containers, message):
    cluster, params = tiny()
    sim = Simulator(cluster, params, 100.0)
    with pytest.raises(SimulationError, match=message):
        sim.run_epoch(plan_from_mapping(0, containers), req(0, {"f": [1.0]}), EpochSignals.constant(1, 1.0, 1.0, 0.0))


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(3, id="100 s / 3 values = 33.3 s each"),
        pytest.param(0, id="no values"),
    ],
)
def test_epoch_signals_must_split_the_epoch_into_whole_seconds(values):
    cluster, params = tiny()
    sim = Simulator(cluster, params, 100.0)
    with pytest.raises(SimulationError, match=r"split the 100\.0 s epoch"):
        sim.run_epoch(plan_from_mapping(0, {}), req(0, {}), EpochSignals.constant(values, 1.0, 1.0, 0.0))


@pytest.mark.parametrize(
    ("ci_first_half", "ci_second_half", "cooling_factor"),
    [
        # an idle 1-node cluster draws P(0) = 100 W: 50 s halves of 100·50 J = 5000 J each
        # carbon = 5000 J / 3.6e6 J/kWh · (200 + 600) g/kWh = 1.111 g
        pytest.param(200.0, 600.0, 0.0, id="two CIs, no cooling"),
        # the same with E_t = 0.5: every kWh draws half a kWh of cooling → 1.5 · 1.111 = 1.667 g
        pytest.param(200.0, 600.0, 0.5, id="two CIs, E_t=0.5"),
        # equal halves are one run: 10000 J / 3.6e6 · 400 = 1.111 g
        pytest.param(400.0, 400.0, 0.0, id="one CI"),
    ],
)
def test_carbon_follows_the_epoch_signals_value_by_value(ci_first_half, ci_second_half, cooling_factor):
    cluster, params = tiny()
    sim = Simulator(cluster, params, 100.0)
    signals = EpochSignals(
        np.array([ci_first_half, ci_second_half]), np.array([0.1, 0.1]), np.full(2, cooling_factor)
    )
    r = sim.run_epoch(plan_from_mapping(0, {}), req(0, {}), signals)
    assert r.accounting.it_energy_kwh == pytest.approx(100.0 * 100.0 / 3.6e6)
    half_kwh = 100.0 * 50.0 / 3.6e6 * (1.0 + cooling_factor)
    assert r.carbon_g == pytest.approx(half_kwh * (ci_first_half + ci_second_half))


@pytest.mark.parametrize(
    ("start_s", "minutes", "hours_of_minutes"),
    [
        pytest.param(0.0, 15, [0] * 15, id="epoch 0: hour 0"),
        pytest.param(3300.0, 10, [0] * 5 + [1] * 5, id="minute 55: 5 min of hour 0, 5 of hour 1"),
        pytest.param(5400.0, 30, [1] * 30, id="1.5 h: hour 1"),
    ],
)
def test_hourly_signals_window_gives_each_minute_its_hour(start_s, minutes, hours_of_minutes):
    hourly = HourlySignals(np.array([100.0, 200.0]), np.array([0.1, 0.2]), np.array([0.3, 0.4]))
    w = hourly.window(start_s, minutes)
    np.testing.assert_array_equal(w.ci_g_per_kwh, hourly.ci_g_per_kwh[hours_of_minutes])
    np.testing.assert_array_equal(w.price_usd_per_kwh, hourly.price_usd_per_kwh[hours_of_minutes])
    np.testing.assert_array_equal(w.cooling_factor, hourly.cooling_factor[hours_of_minutes])


def test_hourly_signals_window_must_lie_inside_them_and_extended_holds_the_last_hour():
    hourly = HourlySignals(np.array([100.0, 200.0]), np.array([0.1, 0.2]), np.array([0.3, 0.4]))
    with pytest.raises(SimulationError, match="signals cover 2 h"):
        hourly.window(3600.0, 61)  # minutes 60..120: minute 120 is in hour 2
    longer = hourly.extended(4)
    np.testing.assert_array_equal(longer.ci_g_per_kwh, [100.0, 200.0, 200.0, 200.0])
    assert hourly.extended(1) is hourly


def test_real_sample_conserves_requests_and_is_deterministic(azure_sample_dir: Path) -> None:
    from casa_sched.traces import load_workload

    wl = load_workload(azure_sample_dir).top_k(60).scaled(5.0, seed=3).window(480, 30)
    cluster = ClusterSpec.uniform(2, CasaSettings())
    params = SimParams()
    plans = [
        plan_from_mapping(e, {f: [(f"node-{i % 2}", 1)] for i, f in enumerate(wl.function_ids[:40])}) for e in range(2)
    ]

    def simulate():
        sim = Simulator(cluster, params, 1800.0)
        signals = EpochSignals.constant(15, 400.0, 0.05, 0.4)
        for e in range(2):
            arr = wl.arrivals_by_function(e, seed=11)
            sim.run_epoch(plans[e], EpochRequests(e, 900.0 * e, wl.function_ids, wl.t_ave_s, tuple(arr)), signals)
        return sim.finish()

    a, b = simulate(), simulate()
    assert a.summary() == b.summary()
    total = int(wl.counts.sum())
    assert a.requests == total
    for e in a.epochs:
        # every request is served (finished or still running) or dropped
        assert e.served + e.dropped == e.requests
    assert 0 <= a.in_flight_at_end <= sum(e.served for e in a.epochs)
    assert math.isfinite(a.accounting.carbon_g)
    assert a.accounting.carbon_g > 0
