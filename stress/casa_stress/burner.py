"""Load cores at a target utilisation: one worker process per core, pinned, duty-cycled.

``stress-ng`` is used when it is installed (Debian package ``stress-ng``): one
``stress-ng --cpu 1 --cpu-load P --taskset CORE --timeout T`` per core, so every worker is pinned
to its own core rather than floating over a set. Otherwise this module's own burner: each worker
pins itself to its core (``os.sched_setaffinity``) and, every ``period_s``, spins until its CPU
time reaches ``target`` × elapsed time, then sleeps for the rest of the period.

No worker outlives its parent: workers exit at the deadline, when the parent asks, or when they
notice the parent is gone (builtin: ``getppid`` changes; stress-ng: ``setpriv --pdeathsig``); the
CLI stops them all on SIGINT/SIGTERM. The achieved utilisation is the CPU time the reaped workers
used (``getrusage(RUSAGE_CHILDREN)``) over wall time × loaded cores.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import os
import resource
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event, Semaphore
from types import FrameType
from typing import Literal

Backend = Literal["auto", "stress-ng", "builtin"]
BACKENDS: tuple[Backend, ...] = ("auto", "stress-ng", "builtin")
#: Longest wait for the builtin workers' interpreters to start, s (a loaded 2-core box takes ~1 s).
STARTUP_TIMEOUT_S = 60.0
#: Duty-cycle period, s. 100 ms: long against scheduler slices (~ms), short against any sampling window.
PERIOD_S = 0.1
PERIOD_RANGE_S = (0.01, 10.0)  # shortest and longest duty-cycle period of the builtin burner
#: Longest run accepted, s (30 days); NaN and infinity are refused (``time.sleep`` and stress-ng's
#: ``--timeout`` overflow on them).
MAX_DURATION_S = 30 * 86_400.0


class StressError(RuntimeError):
    """The stress could not be started; the message says why and how to fix it."""


@dataclass(frozen=True)
class StressReport:
    """What a finished stress achieved: CPU seconds of its workers against wall time."""

    loaded_cores: int
    target_pct: float  # mean target utilisation of the loaded cores, %
    wall_s: float
    cpu_s: float

    @property
    def achieved_pct(self) -> float:
        """Mean utilisation of the loaded cores, % (CPU seconds / (wall seconds × cores))."""
        if self.loaded_cores == 0 or self.wall_s <= 0:
            return 0.0
        return 100.0 * self.cpu_s / (self.wall_s * self.loaded_cores)


def _burn(
    core: int, target: float, duration_s: float, period_s: float, stop: Event, parent_pid: int,
    ready: Semaphore, cpu_s: Synchronized[float],
) -> None:  # pragma: no cover - child  # fmt: skip
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    with contextlib.suppress(AttributeError, OSError):  # pinning is best effort off Linux
        os.sched_setaffinity(0, {core})
    cpu0_s = time.process_time()
    t0 = time.monotonic()
    deadline = t0 + duration_s
    ready.release()  # interpreter start-up is over: the duty cycle starts now
    try:
        # Closed loop on CPU time, not wall time: in each period spin until this worker's CPU
        # seconds reach target × elapsed, then sleep to the period's end. A worker that shares
        # its core with other work spins longer instead of silently falling short of its target.
        period_end = t0
        while not stop.is_set() and period_end < deadline and os.getppid() == parent_pid:
            period_end += period_s
            owed_s = target * (period_end - t0)
            while time.process_time() - cpu0_s < owed_s and time.monotonic() < period_end:
                pass
            rest = period_end - time.monotonic()
            if rest > 0:
                stop.wait(rest)
    finally:
        cpu_s.value = time.process_time() - cpu0_s


def _die_with_parent_prefix() -> list[str]:
    """``setpriv --pdeathsig TERM`` (util-linux) when present: the kernel sends SIGTERM to
    stress-ng when its parent dies, even by SIGKILL. Without it stress-ng still ends at its
    ``--timeout``. (No ``preexec_fn``: that is unsafe in a process with threads.)"""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM"] if setpriv else []


def available_cores() -> list[int]:
    """Cores this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return list(range(os.cpu_count() or 1))


def stress_ng_available() -> bool:
    return shutil.which("stress-ng") is not None


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Stress:
    """A stress on ``cores``, each at ``target`` utilisation (one value, or one per core, 0..1).

    Use as a context manager, or ``start()`` / ``wait()`` / ``stop()``.
    """

    cores: Sequence[int]
    target: float | Sequence[float]
    duration_s: float
    backend: Backend = "auto"
    period_s: float = PERIOD_S
    _procs: list[BaseProcess] = field(default_factory=list)
    _stress_ng: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _stop: Event | None = None
    _worker_cpu_s: list[Synchronized[float]] = field(default_factory=list)
    _t0: float = 0.0
    _cpu0_s: float = 0.0
    _report: StressReport | None = None

    def __post_init__(self) -> None:
        targets = self.targets
        if len(targets) != len(self.cores):
            raise StressError(f"{len(targets)} targets for {len(self.cores)} cores")
        for t in targets:
            if not 0.0 <= t <= 1.0:
                raise StressError(f"target utilisation must be in [0, 1] (a share of one core), got {t}")
        allowed = set(available_cores())
        bad = [c for c in self.cores if c not in allowed]
        if bad:
            raise StressError(f"cores {bad} are not available to this process (allowed: {sorted(allowed)})")
        if len(set(self.cores)) != len(self.cores):
            raise StressError(f"cores {list(self.cores)} name a core twice")
        if not 0 < self.duration_s <= MAX_DURATION_S:  # also NaN
            raise StressError(f"duration must be in (0, {MAX_DURATION_S:g}] s, got {self.duration_s}")
        lo, hi = PERIOD_RANGE_S
        if not lo <= self.period_s <= hi:  # also NaN
            raise StressError(f"duty-cycle period must be in [{lo:g}, {hi:g}] s, got {self.period_s}")
        if self.backend not in BACKENDS:
            raise StressError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.backend == "stress-ng" and not stress_ng_available():
            raise StressError("stress-ng is not installed (apt-get install stress-ng), or use --backend builtin")

    @classmethod
    def for_level(cls, busy_cores: float, cores: Sequence[int], duration_s: float, backend: Backend = "auto") -> Stress:
        """``busy_cores`` worth of load on the first of ``cores``: whole cores at 100 % and the
        fraction on one more core (12.8 → 12 cores at 100 % + 1 at 80 %), as SPECpower's load
        levels are shares of the machine."""
        if not 0.0 <= busy_cores <= len(cores):
            raise StressError(f"busy cores must be in [0, {len(cores)}], got {busy_cores}")
        full = math.floor(busy_cores + 1e-9)
        frac = round(busy_cores - full, 6)
        targets = [1.0] * full + ([frac] if frac > 0 else [])
        return cls(list(cores[: len(targets)]), targets, duration_s, backend)

    @property
    def targets(self) -> list[float]:
        if isinstance(self.target, int | float):
            return [float(self.target)] * len(self.cores)
        return [float(t) for t in self.target]

    @property
    def uses_stress_ng(self) -> bool:
        return self.backend == "stress-ng" or (self.backend == "auto" and stress_ng_available())

    def start(self) -> Stress:
        """Start every worker; on any failure or interrupt half-way, stop those already started."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Stress:
        self._t0, self._cpu0_s = time.monotonic(), _children_cpu_s()
        loads = [(c, t) for c, t in zip(self.cores, self.targets, strict=True) if t > 0]
        if not loads:
            return self
        if self.uses_stress_ng:
            timeout = f"{max(1, math.ceil(self.duration_s))}s"
            for core, target in loads:
                cmd = [*_die_with_parent_prefix(), "stress-ng", "--cpu", "1", "--cpu-load", str(round(target * 100)), "--taskset", str(core),
                       "--timeout", timeout, "--quiet"]  # fmt: skip
                self._stress_ng.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            return self
        ctx = mp.get_context("spawn")  # no fork: the profiler runs threads (HTTP clients)
        self._stop = ctx.Event()
        ready = ctx.Semaphore(0)
        for core, target in loads:
            cpu_s = ctx.Value("d", 0.0)
            proc = ctx.Process(
                target=_burn,
                args=(core, target, self.duration_s, self.period_s, self._stop, os.getpid(), ready, cpu_s),
                daemon=True,
            )
            proc.start()
            self._procs.append(proc)
            self._worker_cpu_s.append(cpu_s)
        for _ in loads:
            if not ready.acquire(timeout=STARTUP_TIMEOUT_S):
                raise StressError(f"the builtin workers did not start within {STARTUP_TIMEOUT_S:.0f} s")
        self._t0 = time.monotonic()  # achieved utilisation counts from the moment all workers burn
        return self

    def stop(self) -> None:
        """Stop every worker (SIGTERM, then SIGKILL after 5 s) and reap it."""
        for popen in self._stress_ng:
            if popen.poll() is None:
                popen.terminate()
        for popen in self._stress_ng:
            try:
                popen.wait(5)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
        if self._stop is not None:
            self._stop.set()
        for proc in self._procs:
            proc.join(2)
            if proc.is_alive():
                proc.kill()
                proc.join()
        if self._report is None and self._t0 > 0:
            loaded = [t for t in self.targets if t > 0]
            self._report = StressReport(
                loaded_cores=len(loaded),
                target_pct=100.0 * sum(loaded) / len(loaded) if loaded else 0.0,
                wall_s=time.monotonic() - self._t0,
                # builtin workers report their own CPU time (excluding interpreter start-up)
                cpu_s=sum(v.value for v in self._worker_cpu_s)
                if self._worker_cpu_s
                else _children_cpu_s() - self._cpu0_s,
            )
        self._stress_ng.clear()
        self._procs.clear()
        self._worker_cpu_s.clear()

    def wait(self) -> int | None:
        """Block until the stress ends (its duration passes); on SIGINT/SIGTERM stop every worker
        and return the signal number (None when the duration simply passed)."""

        class _StopError(Exception):
            pass

        received: list[int] = []

        def handler(signum: int, frame: FrameType | None) -> None:
            received.append(signum)
            raise _StopError

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            if not self._stress_ng and not self._procs:
                time.sleep(self.duration_s)  # nothing to load (0 cores / 0 %), still hold for the duration
            for popen in self._stress_ng:
                popen.wait()
            for proc in self._procs:
                proc.join()
        except _StopError:
            pass
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
            self.stop()
        return received[0] if received else None

    def report(self) -> StressReport:
        """Achieved against target utilisation; valid after ``stop()`` (or ``wait()``)."""
        if self._report is None:
            raise StressError("the stress has not finished yet")
        return self._report

    def pids(self) -> list[int]:
        """Worker process ids (for stress-ng: the per-core stress-ng parents)."""
        return [p.pid for p in self._stress_ng] + [p.pid for p in self._procs if p.pid is not None]

    def __enter__(self) -> Stress:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
