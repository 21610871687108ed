"""A fake powercap tree whose counters advance like a real package, driven by a background thread.

``intel-rapl:0`` (package-0) with its ``intel-rapl:0:0`` (dram) sub-zone, linked at the top level
as on real machines. Each tick adds ``power × dt`` to ``energy_uj`` modulo
``max_energy_range_uj`` (the wraparound). Power is fixed, or a function of the CPU seconds
the test process's children (the stress workers) used in the tick, so a profile run sees its
own load in the counter.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

#: (dt_s, children_cpu_s) -> joules added in the tick
EnergyFn = Callable[[float, float], float]

PACKAGE, DRAM = "intel-rapl:0", "intel-rapl:0/intel-rapl:0:0"


def constant(watts: float) -> EnergyFn:
    return lambda dt_s, _cpu_s: watts * dt_s


def linear_in_cpu(idle_w: float, per_core_w: float) -> EnergyFn:
    """P = idle_w + per_core_w × busy cores, integrated exactly: E = idle_w·dt + per_core_w·cpu_s."""
    return lambda dt_s, cpu_s: idle_w * dt_s + per_core_w * cpu_s


class FakeRapl:
    def __init__(self, root: Path, package: EnergyFn, dram: EnergyFn, range_j: float, tick_s: float = 0.005) -> None:
        self.root = root
        self.energy_fns = {PACKAGE: package, DRAM: dram}
        self.range_uj = int(range_j * 1e6)
        self.energy_uj = dict.fromkeys(self.energy_fns, 0.0)
        self.tick_s = tick_s
        self.wraps = dict.fromkeys(self.energy_fns, 0)
        for rel, name in ((PACKAGE, "package-0"), (DRAM, "dram")):
            d = root / rel
            d.mkdir(parents=True)
            (d / "name").write_text(name + "\n")
            (d / "max_energy_range_uj").write_text(f"{self.range_uj}\n")
            (d / "energy_uj").write_text("0\n")
        (root / "intel-rapl:0:0").symlink_to(root / DRAM)  # sub-zones also appear at the top level
        (root / "intel-rapl").mkdir()  # the control type directory, not a zone
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._seen_cpu_s: dict[int, float] = {}

    def _children_cpu_delta_s(self) -> float:
        """CPU seconds the test process's children used since the last tick (new children from 0)."""
        delta = 0.0
        seen: dict[int, float] = {}
        for child in psutil.Process().children(recursive=True):
            try:
                t = child.cpu_times()
            except psutil.Error:
                continue
            cpu_s = t.user + t.system
            delta += max(0.0, cpu_s - self._seen_cpu_s.get(child.pid, 0.0))
            seen[child.pid] = cpu_s
        self._seen_cpu_s = seen
        return delta

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.tick_s):
            now = time.monotonic()
            cpu_s = self._children_cpu_delta_s()
            for rel, fn in self.energy_fns.items():
                total = self.energy_uj[rel] + fn(now - last, cpu_s) * 1e6
                self.wraps[rel] += int(total // self.range_uj)
                self.energy_uj[rel] = total % self.range_uj
                tmp = self.root / rel / "energy_uj.tmp"  # sysfs reads are atomic: replace, never truncate
                tmp.write_text(f"{int(self.energy_uj[rel])}\n")
                os.replace(tmp, self.root / rel / "energy_uj")
            last = now

    def __enter__(self) -> FakeRapl:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
