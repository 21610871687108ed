"""Each equation once: the compiled kernel and the estimator agree with the models on drawn inputs.

The kernel calls the models' own functions for eqs. (1), (2), (6) and (8) (numba compiles them
in); these properties fail if it ever stops doing so, or if numba's on-disk cache still holds a
kernel compiled against an older model (its cache does not notice edits in models/). Two parts
stay written twice, for speed, and are pinned here instead: the estimator's per-minute
carbon/cost factors (eqs. 3-5, folded into grams and dollars per watt, against
``account_hours``) and the kernel's finish time (eq. 9, ``start + T_ave``, against
``finish_time_s``).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from casa_sched.contract.cluster import ClusterSpec, NodeSpec, SimParams
from casa_sched.contract.forecast import EpochSignals, Forecast
from casa_sched.contract.plan import Container, Plan
from casa_sched.models import (
    WaterFactors,
    account_hours,
    cold_start_s,
    deadline_s,
    finish_time_s,
    it_power_w,
    wait_budget_s,
)
from casa_sched.models.accounting import J_PER_KWH
from casa_sched.models.power import PowerCurve
from casa_sched.simulator.estimator import Estimator
from casa_sched.simulator.kernel import DROPPED, RESULT_COLUMNS, SERVED, WAIT_S, WAITED, replay

MINUTES = 15
unit = st.floats(0.0, 1.0)


@st.composite
def curves(draw: st.DrawFn) -> PowerCurve:
    cores = draw(st.sampled_from([8, 16, 64, 128]))
    # a rising quartic: idle 50-300 W, then terms that add up to at most a few hundred W at full load
    a, b, c, d = (draw(unit) * scale / cores**k for k, scale in ((4, 50.0), (3, 80.0), (2, 120.0), (1, 300.0)))
    return PowerCurve((a, b, c, d, draw(st.floats(50.0, 300.0))), cores)


@settings(max_examples=60, deadline=None)
@given(
    curve=curves(),
    hops=st.lists(st.integers(0, 6), min_size=1, max_size=4),
    containers=st.lists(st.lists(st.integers(1, 2), max_size=3), min_size=4, max_size=4),
    image_mb=st.floats(1.0, 1000.0),
    bandwidth=st.floats(10.0, 1000.0),
    switch_delay_s=st.floats(0.0, 0.01),
    storage_w=st.floats(0.0, 500.0),
    network_w=st.floats(0.0, 500.0),
    starting_cores=st.floats(0.0, 2.0),
    idle_cores=st.floats(0.0, 0.2),
    allocated=st.booleans(),
    sleep_empty=st.booleans(),
    ci=st.lists(st.floats(0.0, 800.0), min_size=MINUTES, max_size=MINUTES),
    price=st.lists(st.floats(0.0, 0.5), min_size=MINUTES, max_size=MINUTES),
    cooling=st.lists(st.floats(0.0, 1.0), min_size=MINUTES, max_size=MINUTES),
    water=st.tuples(st.floats(0.0, 3.0), st.floats(0.0, 1.0), st.floats(0.0, 0.01)),
)
def test_estimator_energy_carbon_and_cost_follow_the_models(
    curve: PowerCurve,
    hops: list[int],
    containers: list[list[int]],
    image_mb: float,
    bandwidth: float,
    switch_delay_s: float,
    storage_w: float,
    network_w: float,
    starting_cores: float,
    idle_cores: float,
    allocated: bool,
    sleep_empty: bool,
    ci: list[float],
    price: list[float],
    cooling: list[float],
    water: tuple[float, float, float],
) -> None:
    """Containers of functions with no requests: node load is their overheads (``busy``) or their
    allocation (``allocated``), so eqs. (1)-(5) and (8) can be recomputed from the models alone."""
    n = len(hops)
    cluster = ClusterSpec(
        tuple(NodeSpec(f"n{i}", curve.cores, 1e6, curve, hops[i]) for i in range(n)),
        storage_power_w=storage_w,
        network_power_w=network_w,
        image_bandwidth_mb_per_s=bandwidth,
        switch_delay_s=switch_delay_s,
        sleep_empty_nodes=sleep_empty,
        sleep_power_w=7.0,
    )
    params = SimParams(
        image_mb=image_mb,
        starting_cores=starting_cores,
        idle_cores=idle_cores,
        utilisation="allocated" if allocated else "busy",
    )
    # one function per container, none with requests, all new (no previous plan)
    sizes_by_node = [containers[i] if i < n else [] for i in range(n)]
    layout = [(i, k) for i, sizes in enumerate(sizes_by_node) for k in sizes]
    fids = tuple(f"f{j}" for j in range(len(layout)))
    fc = Forecast(0, 0.0, fids, np.zeros((len(fids), MINUTES)), np.ones(len(fids)), np.full(len(fids), 128.0))
    signals = EpochSignals(np.array(ci), np.array(price), np.array(cooling))
    plan = Plan(0, {f: (Container(f"n{i}", k),) for f, (i, k) in zip(fids, layout, strict=True)})
    if sleep_empty:  # power management: the plan puts its empty nodes to sleep
        plan = plan.with_sleeping(f"n{i}" for i, sizes in enumerate(sizes_by_node) if not sizes)
    wf = WaterFactors(*water)
    got = Estimator(cluster, params, fc, signals, water=wf).load(plan)

    power_w = np.empty(n)
    for i, sizes in enumerate(sizes_by_node):
        new = len(sizes)
        if allocated:
            u = sum(sizes) * params.base_cpu_cores
        else:
            t_cold = cold_start_s(new * image_mb, bandwidth, hops[i], switch_delay_s)  # eq. (8)
            u = new * idle_cores + new * t_cold * starting_cores / params.epoch_s
        u = min(u, float(curve.cores))
        asleep = sleep_empty and not sizes
        power_w[i] = cluster.sleep_power_w if asleep else curve.power_w(u)  # eq. (2)
    it_w = float(it_power_w(power_w, storage_w, network_w))  # eq. (1)
    # eqs. (3)-(5), each minute an accounting period of 60 s at constant power
    want = account_hours(np.full(MINUTES, it_w * 60.0), cooling, ci, price, wf)
    assert got.energy_kwh == pytest.approx(want.energy_kwh, rel=1e-9)
    assert got.carbon_g == pytest.approx(want.carbon_g, rel=1e-9, abs=1e-9)
    assert got.cost_usd == pytest.approx(want.cost_usd, rel=1e-9, abs=1e-12)
    assert got.energy_kwh * J_PER_KWH == pytest.approx(it_w * 60.0 * (MINUTES + sum(cooling)), rel=1e-9)
    assert got.sl_ave == 0.0


@settings(max_examples=300, deadline=None)
@given(
    arrival_s=st.floats(0.0, 800.0),
    t_ave_s=st.floats(0.01, 30.0),
    laxity=st.floats(1.0, 20.0),
    # the slot frees anywhere in the epoch, or within a second of the request's last start in time
    free=st.one_of(st.tuples(st.just(False), st.floats(0.0, 900.0)), st.tuples(st.just(True), st.floats(-1.0, 1.0))),
)
def test_kernel_deadline_and_finish_time_follow_eqs_6_and_9(
    arrival_s: float, t_ave_s: float, laxity: float, free: tuple[bool, float]
) -> None:
    """One request, one slot free at ``free_s`` (a cold container's slot frees when it is ready, so
    ``T_wait + T_cold = max(free − arrival, 0)``): served iff ``T_finish ≤ T_deadline``."""
    near, x = free
    free_s = max(arrival_s + wait_budget_s(laxity, t_ave_s) + x, 0.0) if near else x
    waited_s = max(free_s - arrival_s, 0.0)
    finish = finish_time_s(arrival_s, waited_s, 0.0, t_ave_s)  # eq. (9)
    deadline = deadline_s(arrival_s, laxity, t_ave_s)  # eq. (6)
    assume(abs(finish - deadline) > 1e-9 * max(deadline, 1.0))  # rounding decides a tie either way
    heap_t, heap_id = np.array([free_s]), np.zeros(1, dtype=np.int64)
    busy = np.zeros((1, 1001))
    out = np.zeros(RESULT_COLUMNS)
    replay(np.array([arrival_s]), t_ave_s, laxity, heap_t, heap_id, 1, np.zeros(1, dtype=np.int64), 0.1,
           busy, busy.copy(), 1000, out)  # fmt: skip
    if finish <= deadline:
        assert (out[SERVED], out[DROPPED]) == (1.0, 0.0)
        assert heap_t[0] == pytest.approx(finish, rel=1e-12)  # the slot is busy until T_finish
        assert out[WAIT_S] == pytest.approx(waited_s, abs=1e-9)
        assert out[WAITED] == float(free_s > arrival_s)
    else:
        assert (out[SERVED], out[DROPPED]) == (0.0, 1.0)
        assert heap_t[0] == free_s  # a dropped request never takes the slot
