"""The one clock of the live components, real or emulated (README "Emulated cluster").

Every live component — the autoscaler's epochs and ticks, the live accounting's windows, the
metric sources' Prometheus queries and the emulator's replay — reads time from a :class:`Clock`
built from the ``clock`` settings, so that with ``clock.factor = 30`` a 15-minute epoch passes
in 30 wall-clock seconds for all of them at once:

    emulated = start_unix_s + factor · (wall − origin_unix_s)

With the defaults (factor 1, origin 0, start unset) the emulated clock *is* the wall clock.

Prometheus stores what it scrapes at wall-clock times. Values keep their emulated meaning
(request counts, latencies in emulated seconds), and a query about emulated time is asked at
the wall-clock instant that emulated time fell on, over the wall-clock length of its window
(:meth:`Clock.real_unix_s`, :meth:`Clock.promql_duration`). CPU is the exception that keeps
PromQL's rates right: the emulator's ``container_cpu_usage_seconds_total`` advances by the busy
cores per *wall-clock* second, so ``rate()`` over any window is busy cores, as on a real node.

Leader election (the Lease's 15 s) and the planner's time budget stay on the wall clock: they
bound real work, not emulated time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from casa_sched.settings import CasaSettings


@dataclass(frozen=True)
class Clock:
    """Emulated time as a linear function of the wall clock (see the module docstring)."""

    factor: float = 1.0
    origin_unix_s: float = 0.0
    start_unix_s: float = 0.0
    wall: Callable[[], float] = field(default=time.time, compare=False, repr=False)
    wall_monotonic: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.factor > 0:
            raise ValueError(f"clock factor must be > 0, got {self.factor}")

    @classmethod
    def from_settings(cls, settings: CasaSettings) -> Clock:
        c = settings.clock
        start = c.origin_unix_s if c.start_unix_s is None else c.start_unix_s
        return cls(c.factor, c.origin_unix_s, start)

    @property
    def real(self) -> bool:
        """True when emulated time is the wall clock."""
        return self.factor == 1.0 and self.origin_unix_s == self.start_unix_s

    def now(self) -> float:
        """Emulated Unix time, s."""
        return self.emulated_unix_s(self.wall())

    def now_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    def monotonic(self) -> float:
        """Emulated seconds on a monotonic scale (for durations: deadlines, settle times)."""
        return self.factor * self.wall_monotonic()

    def emulated_unix_s(self, wall_unix_s: float) -> float:
        return self.start_unix_s + self.factor * (wall_unix_s - self.origin_unix_s)

    def real_unix_s(self, emulated_unix_s: float) -> float:
        """The wall-clock instant at which the emulated clock reads ``emulated_unix_s``."""
        return self.origin_unix_s + (emulated_unix_s - self.start_unix_s) / self.factor

    def real_datetime(self, emulated: datetime) -> datetime:
        return datetime.fromtimestamp(self.real_unix_s(emulated.timestamp()), UTC)

    def real_s(self, emulated_s: float) -> float:
        """Wall-clock seconds of an emulated duration."""
        return emulated_s / self.factor

    def emulated_s(self, real_s: float) -> float:
        return real_s * self.factor

    def sleep(self, emulated_s: float) -> None:
        """Sleep for an emulated duration."""
        if emulated_s > 0:
            time.sleep(self.real_s(emulated_s))

    def wait(self, event: threading.Event, emulated_s: float) -> bool:
        """``event.wait`` for an emulated duration; True when the event is set."""
        return event.wait(max(self.real_s(emulated_s), 0.0))

    def promql_duration(self, emulated_s: float) -> str:
        """A PromQL range of the wall-clock length of ``emulated_s`` (whole milliseconds, >= 1 ms).

        >>> Clock(30.0).promql_duration(900.0), Clock().promql_duration(300.0)
        ('30000ms', '300000ms')
        """
        return f"{max(1, round(self.real_s(emulated_s) * 1000.0))}ms"


WALL = Clock()
"""The wall clock (factor 1): the default of every component."""
