"""Profiling a node: stress 0..all cores, let power settle, sample power, per level (paper Fig. 2).

For each level U (busy cores, fractional allowed: 12.8 = 12 cores at 100 % + one at 80 %) the
stress runs on the first cores this process may use; after ``settle_s`` the meter is read every
``interval_s`` for ``samples`` intervals, giving mean power and its spread (standard deviation of
the per-interval means); psutil gives the achieved utilisation of those cores over the sampling
window, and the stress its own CPU time. Background load is flagged when the idle level is
already busy, or a level runs well above (other work) or below (a CPU limit) its target.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
from casa_stress import Backend, Stress

from casa_profiler.meters.base import Meter, MeterError

#: Utilisation of the idle level above which other work is running, % of the profiled cores.
IDLE_BUSY_WARN_PCT = 5.0
#: A level this many points above its target has other work running beside the stress.
OVERSHOOT_WARN_PTS = 10.0
#: A level this many points below its target could not be reached (CPU limit, contention).
UNDERSHOOT_WARN_PTS = 15.0
#: Sampling must stay well inside the counter's wrap period: at most this share of it.
WRAP_SAFETY = 0.5

CSV_COLUMNS = ("cores", "power_w", "power_std_w", "samples", "target_util_pct", "achieved_util_pct", "stress_util_pct")


@dataclass(frozen=True)
class LevelSample:
    """One stress level: ``cores`` busy cores targeted, the power measured, the load achieved."""

    cores: float
    power_w: float  # mean of the per-interval average powers, W
    power_std_w: float  # their standard deviation, W
    samples: int
    target_util_pct: float  # cores / profiled cores, %
    achieved_util_pct: float  # psutil, profiled cores, during sampling (includes other work), %
    stress_util_pct: float  # the stress workers' own CPU time over the whole level, % of profiled cores


def default_levels(n_cores: int, steps: int = 10) -> list[float]:
    """``steps + 1`` evenly spaced levels from 0 to all cores (SPECpower's 0, 10, ..., 100 %)."""
    if steps < 1:
        raise ValueError(f"steps must be ≥ 1, got {steps}")
    return sorted({round(n_cores * i / steps, 3) for i in range(steps + 1)})


def parse_levels(text: str, n_cores: int) -> list[float]:
    """``"0,0.5,1,2"`` → levels in busy cores, each within ``0..n_cores``."""
    try:
        levels = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--levels must be comma-separated numbers of busy cores, got {text!r}") from None
    bad = [x for x in levels if not (math.isfinite(x) and 0 <= x <= n_cores)]
    if not levels or bad:
        raise ValueError(f"--levels must lie in 0..{n_cores} (the cores available here), got {text!r}")
    return sorted(set(levels))


def load_warning(level: float, n_cores: int, achieved_pct: float) -> str | None:
    """A warning when the achieved utilisation betrays other work or an unreachable target (pure)."""
    target_pct = 100.0 * level / n_cores
    if level == 0 and achieved_pct > IDLE_BUSY_WARN_PCT:
        return (
            f"background load: {achieved_pct:.0f} % of the CPU busy with no stress, so the idle power reads high; "
            "drain the node or stop other work and re-profile"
        )
    if achieved_pct > target_pct + OVERSHOOT_WARN_PTS:
        return (
            f"level {level:g} cores: {achieved_pct:.0f} % CPU busy against {target_pct:.0f} % targeted: "
            "other work is running beside the stress"
        )
    if achieved_pct < target_pct - UNDERSHOOT_WARN_PTS:
        return (
            f"level {level:g} cores: only {achieved_pct:.0f} % CPU busy against {target_pct:.0f} % targeted: "
            "a CPU limit (cgroup quota) or higher-priority work holds the stress back"
        )
    return None


def check_interval(meter: Meter, interval_s: float) -> None:
    """Refuse an interval that is not well inside the meter's wrap period."""
    limit_s = meter.max_interval_s() * WRAP_SAFETY
    if interval_s > limit_s:
        raise MeterError(
            f"--interval {interval_s:g} s is too long for the {meter.name} counters: they may wrap in "
            f"{meter.max_interval_s():.1f} s at the plausible maximum power; sample every ≤ {limit_s:.1f} s"
        )


def measure_power(
    meter: Meter, samples: int, interval_s: float, sleep: Callable[[float], None] = time.sleep
) -> list[float]:
    """``samples`` average powers, each over one ``interval_s``, W."""
    check_interval(meter, interval_s)
    out: list[float] = []
    if meter.kind == "power":
        for _ in range(samples):
            sleep(interval_s)
            out.append(meter.power_w())
        if all(p == 0.0 for p in out):
            raise MeterError(f"the {meter.name} meter read 0 W {samples} times: it does not measure this machine")
        return out
    meter.start()
    last_j, last_t = 0.0, time.monotonic()
    for _ in range(samples):
        sleep(interval_s)
        now_j = meter.energy_j()
        now_t = time.monotonic()
        out.append((now_j - last_j) / max(now_t - last_t, 1e-9))
        last_j, last_t = now_j, now_t
    if all(p == 0.0 for p in out):
        raise MeterError(
            f"the {meter.name} energy counter did not move in {samples * interval_s:g} s: the platform exposes a "
            "counter it does not update (common in VMs) or the tree is a stale copy; use another --meter"
        )
    return out


def profile(
    meter: Meter,
    levels: Sequence[float],
    cores: Sequence[int],
    settle_s: float,
    samples: int,
    interval_s: float,
    warn: Callable[[str], None],
    backend: Backend = "auto",
    progress: Callable[[LevelSample], None] = lambda _: None,
) -> list[LevelSample]:
    """Stress each level, measure it, and return one :class:`LevelSample` per level."""
    n_cores = len(cores)
    check_interval(meter, interval_s)
    rows: list[LevelSample] = []
    for level in levels:
        # the stress outlives the measurement; it is stopped as soon as the level is measured
        run = Stress.for_level(level, cores, settle_s + samples * interval_s + 60.0, backend)
        with run:
            time.sleep(settle_s)
            psutil.cpu_percent(percpu=True)
            powers = measure_power(meter, samples, interval_s)
            per_core = psutil.cpu_percent(percpu=True)
        achieved = float(np.mean([per_core[c] for c in cores if c < len(per_core)]))
        rep = run.report()
        stress_pct = 100.0 * rep.cpu_s / (rep.wall_s * n_cores) if rep.wall_s > 0 else 0.0
        message = load_warning(level, n_cores, achieved)
        if message:
            warn(message)
        row = LevelSample(
            cores=level,
            power_w=float(np.mean(powers)),
            power_std_w=float(np.std(powers)),
            samples=len(powers),
            target_util_pct=100.0 * level / n_cores,
            achieved_util_pct=achieved,
            stress_util_pct=stress_pct,
        )
        progress(row)
        rows.append(row)
    return rows


def write_samples(rows: Sequence[LevelSample], path: Path) -> None:
    """The per-level CSV ``casa-profiler fit`` reads (``cores,power_w`` plus the spread and loads)."""
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for r in rows:
            w.writerow([f"{r.cores:g}", f"{r.power_w:.3f}", f"{r.power_std_w:.3f}", r.samples,
                        f"{r.target_util_pct:.1f}", f"{r.achieved_util_pct:.1f}", f"{r.stress_util_pct:.1f}"])  # fmt: skip
