"""How far the fast estimator is from the request-level simulator, over many random plans.

    .venv/bin/python -m benchmarks.estimator_accuracy [--plans 60] [--intensity 20] [--nodes 4]
        [--epochs 8,12] [--trace-dir DIR]

For each plan: a random epoch of the real 500-function sample (synthetic default if absent;
``--trace-dir`` names the sample's directory), or one of ``--epochs``, a random feasible plan,
half the time warm (D_{e-1} = the plan itself, installed running) and half the time cold (no
previous plan). Prints the median and 95th percentile of the absolute SL_ave error and of the
relative carbon error, and the mean signed SL_ave error (bias), and the same SL_ave error over
the timer-triggered functions alone (``--epochs 8,12`` at ``--intensity 80 --nodes 8``: the
sample's hourly timers fire together at the top of the hour, 10:00 and 11:00 local).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from benchmarks._common import forecast_of, random_plan, sample_or_synthetic
from casa_sched.contract.cluster import ClusterSpec, SimParams
from casa_sched.contract.forecast import EpochSignals
from casa_sched.settings import CasaSettings
from casa_sched.simulator import EpochRequests, Simulator
from casa_sched.simulator.estimator import Estimator


def measure(
    plans: int,
    intensity: float,
    nodes: int,
    seed: int = 0,
    verbose: bool = False,
    epochs: tuple[int, ...] = (),
    trace_dir: Path | None = None,
) -> dict[str, float]:
    settings = CasaSettings()
    params = SimParams.from_settings(settings)
    cluster = ClusterSpec.uniform(nodes, settings)
    wl = sample_or_synthetic(intensity, trace_dir=trace_dir)
    timers = np.array([t == "timer" for t in wl.triggers])
    rng = np.random.default_rng(seed)
    sig = EpochSignals(np.full(15, 400.0), np.full(15, 0.05), np.full(15, 0.4))
    sl_err: list[float] = []
    timer_err: list[float] = []
    co_err: list[float] = []
    for k in range(plans):
        e = int(rng.choice(epochs)) if epochs else int(rng.integers(0, wl.n_epochs()))
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
        # the timers' share of the SL_ave error: their rates' error summed over all active functions
        rates = est.function_rates()
        active = fc.totals > 0
        stats = [res.functions.get(f) for f in fc.function_ids]
        sim_rates = np.array([s.violation_rate if s is not None else 0.0 for s in stats])
        timer_err.append(float((rates - sim_rates)[active & timers].sum() / max(int(active.sum()), 1)))
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
        "timer_sl_abs_median": float(np.median(np.abs(timer_err))),
        "timer_sl_bias": float(np.mean(timer_err)),
        "carbon_rel_median": float(np.median(co)),
        "carbon_rel_p95": float(np.percentile(co, 95)),
    }


def speed(intensity: float, nodes: int, epoch: int, trace_dir: Path | None, moves: int = 10000) -> dict[str, float]:
    """Wall time of the estimator's set-up, of a full load of a random plan, and of one
    incremental move (a random function's layout changed and undone: the search's unit of work)."""
    settings = CasaSettings()
    params = SimParams.from_settings(settings)
    cluster = ClusterSpec.uniform(nodes, settings)
    wl = sample_or_synthetic(intensity, trace_dir=trace_dir)
    rng = np.random.default_rng(0)
    sig = EpochSignals(np.full(15, 400.0), np.full(15, 0.05), np.full(15, 0.4))
    fc = forecast_of(wl, epoch)
    plan = random_plan(fc, params, nodes, rng, settings)
    Estimator(cluster, params, fc, sig, plan).load(plan)  # compile and warm the caches
    t = time.perf_counter()
    est = Estimator(cluster, params, fc, sig, plan)
    setup_s = time.perf_counter() - t
    t = time.perf_counter()
    est.load(plan)
    load_s = time.perf_counter() - t
    active = np.flatnonzero(fc.totals > 0)
    picks = rng.choice(active, moves)
    layouts = [((int(rng.integers(0, nodes)), int(rng.integers(1, 4))),) if rng.random() < 0.8 else () for _ in picks]
    t = time.perf_counter()
    for f, lay in zip(picks, layouts, strict=True):
        est.try_move(int(f), lay)
    move_s = (time.perf_counter() - t) / moves
    return {"setup_s": setup_s, "load_s": load_s, "move_s": move_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--plans", type=int, default=60)
    ap.add_argument("--intensity", type=float, default=20.0)
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--epochs", type=str, default="", help="comma-separated epochs to draw from (default: all)")
    ap.add_argument("--trace-dir", type=Path, default=None, help="the 500-function sample's directory")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--speed", action="store_true", help="time the estimator instead (set-up, load, one move)")
    args = ap.parse_args()
    try:
        epochs = tuple(int(x) for x in args.epochs.split(",") if x.strip())
    except ValueError:
        ap.error(f"--epochs must be comma-separated integers, got {args.epochs!r}")
    if args.trace_dir is not None and not args.trace_dir.is_dir():
        ap.error(f"--trace-dir {args.trace_dir} is not a directory")
    if args.speed:
        e = epochs[0] if epochs else 12
        s = speed(args.intensity, args.nodes, e, args.trace_dir)
        print(
            f"estimator speed (R={args.intensity:g}x, N={args.nodes}, epoch {e}): set-up {s['setup_s'] * 1e3:.1f} ms, "
            f"full load {s['load_s'] * 1e3:.1f} ms, one move (try_move) {s['move_s'] * 1e6:.0f} µs"
        )
        return
    t = time.perf_counter()
    m = measure(args.plans, args.intensity, args.nodes, verbose=args.verbose, epochs=epochs, trace_dir=args.trace_dir)
    where = f", epochs {args.epochs}" if epochs else ""
    print(
        f"estimator vs simulator over {m['plans']} random plans (R={args.intensity:g}x, N={args.nodes}{where}): "
        f"SL_ave |error| median {m['sl_abs_median']:.3f}, p95 {m['sl_abs_p95']:.3f}, bias {m['sl_bias']:+.3f} "
        f"(timers' share: |error| median {m['timer_sl_abs_median']:.3f}, bias {m['timer_sl_bias']:+.3f}); "
        f"carbon relative |error| median {m['carbon_rel_median']:.2%}, p95 {m['carbon_rel_p95']:.2%} "
        f"({time.perf_counter() - t:.0f} s)"
    )
    if not math.isfinite(m["sl_abs_p95"]):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
