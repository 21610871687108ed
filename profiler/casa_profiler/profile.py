"""Profiling a node: stress 0..all cores, let power settle, sample energy, fit P(U) (paper Fig. 2).

For each level (busy cores) the stress runs on that many cores; after ``settle_s`` the meter is
read every ``interval_s`` for ``samples`` intervals, giving mean power and its spread; psutil
gives the achieved utilisation. Background load is flagged when the idle level is already busy
or a level runs well above its target.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
from casa_stress import Stress

from casa_profiler.meters.base import Meter, MeterError

IDLE_BUSY_WARN_PCT = 5.0  # achieved utilisation at 0 cores above which other work is running
OVERSHOOT_WARN_PCT = 10.0


@dataclass(frozen=True)
class LevelSample:
    cores: int
    power_w: float
    power_std_w: float
    achieved_util_pct: float
    target_util_pct: float


def measure_power(
    meter: Meter, samples: int, interval_s: float, sleep: Callable[[float], None] = time.sleep
) -> list[float]:
    """``samples`` average-power readings over ``interval_s`` each."""
    out: list[float] = []
    if meter.energy_j() is None:  # a power meter: average its instantaneous readings
        for _ in range(samples):
            sleep(interval_s)
            p = meter.power_w()
            if p is None:
                raise MeterError(f"meter {meter.name} gives neither energy nor power")
            out.append(p)
        return out
    last = meter.energy_j()
    t0 = time.monotonic()
    for _ in range(samples):
        sleep(interval_s)
        now = meter.energy_j()
        t1 = time.monotonic()
        if now is None or last is None:
            raise MeterError(f"meter {meter.name} stopped giving energy readings")
        out.append((now - last) / max(t1 - t0, 1e-9))
        last, t0 = now, t1
    if all(p == 0.0 for p in out):
        raise MeterError(
            f"the {meter.name} energy counter did not move in {samples * interval_s:.0f} s: the platform exposes "
            "a counter that is not updated (common in VMs), or the meter reads a stale file"
        )
    return out


def profile(
    meter: Meter,
    levels: Sequence[int],
    cores: Sequence[int],
    settle_s: float,
    samples: int,
    interval_s: float,
    warn: Callable[[str], None],
    backend: str = "auto",
) -> list[LevelSample]:
    total = len(cores)
    rows: list[LevelSample] = []
    for level in levels:
        duration = settle_s + samples * interval_s + 5.0
        with Stress(list(cores[:level]), 1.0, duration, backend):  # type: ignore[arg-type]
            time.sleep(settle_s)
            psutil.cpu_percent(percpu=False)
            powers = measure_power(meter, samples, interval_s)
            achieved = psutil.cpu_percent(percpu=False)
        target = 100.0 * level / total
        if level == 0 and achieved > IDLE_BUSY_WARN_PCT:
            warn(f"background load: {achieved:.0f} % CPU busy with no stress; the idle power will read high")
        elif achieved > target + OVERSHOOT_WARN_PCT:
            warn(
                f"level {level} cores: {achieved:.0f} % CPU busy against {target:.0f} % targeted (other work running?)"
            )
        rows.append(LevelSample(level, float(np.mean(powers)), float(np.std(powers)), achieved, target))
    return rows


def write_samples(rows: Sequence[LevelSample], path: Path) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["cores", "power_w", "power_std_w", "achieved_util_pct", "target_util_pct"])
        for r in rows:
            w.writerow(
                [
                    r.cores,
                    f"{r.power_w:.3f}",
                    f"{r.power_std_w:.3f}",
                    f"{r.achieved_util_pct:.1f}",
                    f"{r.target_util_pct:.1f}",
                ]
            )
