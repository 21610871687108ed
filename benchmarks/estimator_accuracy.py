"""How far the fast estimator is from the request-level simulator, over many random plans.

    .venv/bin/python -m benchmarks.estimator_accuracy [--plans 60] [--intensity 20] [--nodes 4]

For each plan: a random epoch of the real 500-function sample (synthetic default if absent), a
random feasible plan, half the time warm (D_{e-1} = the plan itself, installed running) and half
the time cold (no previous plan). Prints the median and 95th percentile of the absolute SL_ave
error and of the relative carbon error, and the mean signed SL_ave error (bias).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from benchmarks._common import forecast_of, random_plan, sample_or_synthetic
from casa_sched.contract.cluster import ClusterSpec, SimParams
from casa_sched.contract.forecast import EpochSignals
from casa_sched.settings import CasaSettings
from casa_sched.simulator import EpochRequests, Simulator
from casa_sched.simulator.estimator import Estimator


def measure(plans: int, intensity: float, nodes: int, seed: int = 0, verbose: bool = False) -> dict[str, float]:
    settings = CasaSettings()
    params = SimParams.from_settings(settings)
    cluster = ClusterSpec.uniform(nodes, settings)
    wl = sample_or_synthetic(intensity)
    rng = np.random.default_rng(seed)
    sig = EpochSignals(np.full(15, 400.0), np.full(15, 0.05), np.full(15, 0.4))
    sl_err: list[float] = []
    co_err: list[float] = []
    for k in range(plans):
        e = int(rng.integers(0, wl.n_epochs()))
        fc = forecast_of(wl, e)
        plan = random_plan(fc, params, nodes, rng, settings)
        warm = k % 2 == 0
        est = Estimator(cluster, params, fc, sig, plan if warm else None)
        pred = est.load(plan)
        sim = Simulator(cluster, params, 900.0)
        if warm:
            sim.preload(plan)
        arrivals = [a - e * 900.0 for a in wl.arrivals_by_function(e, seed=k)]
        res = sim.run_epoch(plan, EpochRequests(e, 0.0, wl.function_ids, wl.t_ave_s, tuple(arrivals)), sig)
        sl_err.append(pred.sl_ave - res.slo_violation_rate)
        if verbose:
            print(
                f"  epoch {e:2d} warm={warm!s:5} predicted SL {pred.sl_ave:.3f} simulated {res.slo_violation_rate:.3f} carbon {pred.carbon_g:.1f} vs {res.carbon_g:.1f}"
            )
        co_err.append((pred.carbon_g - res.carbon_g) / res.carbon_g)
    sl = np.abs(sl_err)
    co = np.abs(co_err)
    return {
        "plans": plans,
        "sl_abs_median": float(np.median(sl)),
        "sl_abs_p95": float(np.percentile(sl, 95)),
        "sl_bias": float(np.mean(sl_err)),
        "carbon_rel_median": float(np.median(co)),
        "carbon_rel_p95": float(np.percentile(co, 95)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--plans", type=int, default=60)
    ap.add_argument("--intensity", type=float, default=20.0)
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    t = time.perf_counter()
    m = measure(args.plans, args.intensity, args.nodes, verbose=args.verbose)
    print(
        f"estimator vs simulator over {m['plans']} random plans (R={args.intensity:g}x, N={args.nodes}): "
        f"SL_ave |error| median {m['sl_abs_median']:.3f}, p95 {m['sl_abs_p95']:.3f}, bias {m['sl_bias']:+.3f}; "
        f"carbon relative |error| median {m['carbon_rel_median']:.2%}, p95 {m['carbon_rel_p95']:.2%} "
        f"({time.perf_counter() - t:.0f} s)"
    )
    if not math.isfinite(m["sl_abs_p95"]):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
