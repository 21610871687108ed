"""Arrival generation rate: one 15-minute epoch of the 500-function sample at R = 20×.

Usage: python -m benchmarks.arrivals [trace-dir]. Uses ../shared/data's sample when present,
else the embedded synthetic default (same shape). Prints arrivals generated per second for
Workload.arrivals (merged, time-ordered) and Workload.arrivals_by_function.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from benchmarks._common import SAMPLE
from casa_sched.traces import Workload, load_workload, synthetic_workload

R = 20.0
REPEATS = 5


def _best_rate(w: Workload, merged: bool) -> tuple[int, float]:
    best = float("inf")
    n = 0
    for rep in range(REPEATS):
        start = time.perf_counter()
        for epoch in range(w.n_epochs()):
            if merged:
                n_epoch = len(w.arrivals(epoch, seed=rep))
            else:
                n_epoch = sum(x.size for x in w.arrivals_by_function(epoch, seed=rep))
            n += n_epoch if rep == 0 else 0
        best = min(best, time.perf_counter() - start)
    return n, n / best


def main() -> None:
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLE
    base = load_workload(directory) if directory.is_dir() else synthetic_workload(seed=0)
    w = base.scaled(R, seed=0)
    print(f"workload: {base.source}; {w.n_functions} functions × {w.n_minutes} min at R = {R:g}×")
    one = w.window(w.start_minute + 15 * 3, 15)  # one epoch (the 4th, 08:45-09:00 for the sample)
    for merged in (True, False):
        n, rate = _best_rate(one, merged)
        name = "arrivals (merged, time-ordered)" if merged else "arrivals_by_function"
        print(f"{name:34s} {n:>10,d} requests in one epoch  {rate / 1e6:6.1f} M arrivals/s")
    total, rate = _best_rate(w, True)
    print(f"{'all 32 epochs, merged':34s} {total:>10,d} requests            {rate / 1e6:6.1f} M arrivals/s "
          f"(≈ {total / rate:.1f} s per full replay)")


if __name__ == "__main__":
    main()
