"""Load cores at a target utilisation: one worker process per core, pinned, duty-cycled.

``stress-ng`` is used when it is installed (Debian package ``stress-ng``); otherwise this
module's own burner: each worker pins itself to its core (``os.sched_setaffinity``) and, every
``period_s``, spins for ``target · period_s`` and sleeps for the rest. Workers exit at the
deadline or when the parent asks, and the parent stops them on SIGINT/SIGTERM, so none is
left behind.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from types import FrameType
from typing import Literal

Backend = Literal["auto", "stress-ng", "builtin"]
PERIOD_S = 0.1


class StressError(RuntimeError):
    """The stress could not be started; the message says why and how to fix it."""


def _burn(core: int, target: float, deadline: float, period_s: float, stop: Event) -> None:  # pragma: no cover - child
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    with contextlib.suppress(AttributeError, OSError):  # pinning is best effort off Linux
        os.sched_setaffinity(0, {core})
    busy_s = target * period_s
    while not stop.is_set() and time.monotonic() < deadline:
        start = time.monotonic()
        while time.monotonic() - start < busy_s:
            pass
        rest = period_s - (time.monotonic() - start)
        if rest > 0:
            stop.wait(rest)


def available_cores() -> list[int]:
    """Cores this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return list(range(os.cpu_count() or 1))


@dataclass
class Stress:
    """A running stress on ``cores`` at ``target`` utilisation; use as a context manager."""

    cores: Sequence[int]
    target: float
    duration_s: float
    backend: Backend = "auto"
    period_s: float = PERIOD_S
    _procs: list[BaseProcess] = field(default_factory=list)
    _stress_ng: subprocess.Popen[bytes] | None = None
    _stop: Event | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.target <= 1.0:
            raise StressError(f"target utilisation must be in [0, 1], got {self.target}")
        allowed = set(available_cores())
        bad = [c for c in self.cores if c not in allowed]
        if bad:
            raise StressError(f"cores {bad} are not available to this process (allowed: {sorted(allowed)})")
        if self.duration_s <= 0:
            raise StressError(f"duration must be > 0 s, got {self.duration_s}")

    @property
    def uses_stress_ng(self) -> bool:
        if self.backend == "builtin":
            return False
        found = shutil.which("stress-ng") is not None
        if self.backend == "stress-ng" and not found:
            raise StressError("stress-ng is not installed (apt-get install stress-ng), or use --backend builtin")
        return found

    def start(self) -> Stress:
        if not self.cores or self.target == 0.0:
            return self
        if self.uses_stress_ng:
            cmd = [
                "stress-ng", "--cpu", str(len(self.cores)), "--cpu-load", str(round(self.target * 100)),
                "--taskset", ",".join(str(c) for c in self.cores), "--timeout", f"{max(1, round(self.duration_s))}s",
                "--quiet",
            ]  # fmt: skip
            self._stress_ng = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return self
        ctx = mp.get_context("spawn")
        self._stop = ctx.Event()
        deadline = time.monotonic() + self.duration_s
        for core in self.cores:
            proc = ctx.Process(target=_burn, args=(core, self.target, deadline, self.period_s, self._stop), daemon=True)
            proc.start()
            self._procs.append(proc)
        return self

    def stop(self) -> None:
        if self._stress_ng is not None:
            if self._stress_ng.poll() is None:
                self._stress_ng.terminate()
                try:
                    self._stress_ng.wait(5)
                except subprocess.TimeoutExpired:
                    self._stress_ng.kill()
                    self._stress_ng.wait()
            self._stress_ng = None
        if self._stop is not None:
            self._stop.set()
        for proc in self._procs:
            proc.join(2)
            if proc.is_alive():
                proc.kill()
                proc.join()
        self._procs.clear()

    def wait(self) -> None:
        """Block until the stress ends (its duration passes), stopping it cleanly on SIGINT/SIGTERM."""

        def handler(signum: int, frame: FrameType | None) -> None:
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, handler)
        try:
            if self._stress_ng is not None:
                self._stress_ng.wait()
            for proc in self._procs:
                proc.join()
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.stop()

    def pids(self) -> list[int]:
        if self._stress_ng is not None:
            return [self._stress_ng.pid]
        return [p.pid for p in self._procs if p.pid is not None]

    def __enter__(self) -> Stress:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
