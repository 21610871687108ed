"""Simulator throughput and estimator speed on the 500-function sample at R = 20x on 4 nodes.

    .venv/bin/python -m benchmarks.simulator_bench [--epochs 32]

Prints simulated requests per second (target ≥ 500,000 on one core) and estimator incremental
evaluations per second (target ≥ 10,000), each beside a baseline measured in the same process:
numpy's sort of the same number of arrival times (a floor for any per-request work).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks._common import forecast_of, random_plan, sample_or_synthetic
from casa_sched.contract.cluster import ClusterSpec, SimParams
from casa_sched.contract.forecast import EpochSignals
from casa_sched.settings import CasaSettings
from casa_sched.simulator import EpochRequests, Simulator
from casa_sched.simulator.estimator import Estimator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=32)
    ap.add_argument("--moves", type=int, default=20_000)
    args = ap.parse_args()
    settings = CasaSettings()
    params = SimParams.from_settings(settings)
    cluster = ClusterSpec.uniform(4, settings)
    wl = sample_or_synthetic(20.0)
    rng = np.random.default_rng(0)
    n_ep = min(args.epochs, wl.n_epochs())
    sim = Simulator(cluster, params, n_ep * 900.0)
    signals = EpochSignals.constant(15, 400.0, 0.05, 0.4)
    gen_s = sim_s = sort_s = 0.0
    total = 0
    for e in range(n_ep):
        plan = random_plan(forecast_of(wl, e), params, 4, rng)
        t = time.perf_counter()
        arrivals = wl.arrivals_by_function(e, seed=7)
        gen_s += time.perf_counter() - t
        req = EpochRequests(e, e * 900.0, wl.function_ids, wl.t_ave_s, tuple(arrivals))
        t = time.perf_counter()
        result = sim.run_epoch(plan, req, signals)
        sim_s += time.perf_counter() - t
        flat = np.concatenate(arrivals)
        t = time.perf_counter()
        np.sort(flat)
        sort_s += time.perf_counter() - t
        total += result.requests
    print(f"simulator: {total:,} requests in {sim_s:.2f} s -> {total / sim_s:,.0f} simulated requests/s "
          f"(target >= 500,000; arrival generation {total / gen_s:,.0f}/s)")  # fmt: skip
    print(f"baseline numpy sort of the same arrivals: {total / sort_s:,.0f}/s -> simulator/sort = {sort_s / sim_s:.2f}")

    fc = forecast_of(wl, 10)
    sig = EpochSignals(np.full(15, 400.0), np.full(15, 0.05), np.full(15, 0.4))
    plan = random_plan(fc, params, 4, rng)
    est = Estimator(cluster, params, fc, sig, plan)
    est.load(plan)
    active = np.flatnonzero(fc.active())
    picks = rng.choice(active, size=args.moves)
    nodes = rng.integers(0, 4, size=args.moves)
    est.try_move(int(picks[0]), ((int(nodes[0]), 1),))  # compile
    t = time.perf_counter()
    for f, n in zip(picks, nodes, strict=True):
        lay = est.layout.get(int(f), ())
        est.try_move(int(f), (*lay, (int(n), 1)) if len(lay) < 4 else lay[1:])
    dt = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(200):
        est.load(plan)
    full_dt = (time.perf_counter() - t) / 200
    print(f"estimator: {args.moves / dt:,.0f} incremental evaluations/s (target >= 10,000); "
          f"full re-evaluation {1 / full_dt:,.0f}/s -> incremental/full = {full_dt / (dt / args.moves):.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
