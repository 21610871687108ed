"""The meter interface and its registry: each meter is one module, found by name.

A meter is either an *energy* meter (a cumulative counter read as joules since ``start()``,
wraparound handled inside: powercap, pyRAPL) or a *power* meter (an average power over the last
sampling window: IPMI DCMI, Prometheus ``rate()``). The profiler differences the first and
averages the second.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, Protocol

from casa_sched.registry import Registry


class MeterError(RuntimeError):
    """A meter that cannot be read; the message says what is wrong and how to fix it."""


MeterKind = Literal["energy", "power"]


class Meter(Protocol):
    name: str
    kind: MeterKind

    def start(self) -> None:
        """(Re)start counting: the next ``energy_j`` is measured from now (no wrap check across the gap)."""

    def energy_j(self) -> float:
        """Energy meters: joules since ``start()``."""

    def power_w(self) -> float:
        """Power meters: watts averaged over the meter's own window (or instantaneous)."""

    def max_interval_s(self) -> float:
        """Longest gap between reads that the meter can still tell apart from a double wrap, s."""


class MeterBase:
    """Defaults for the optional parts of :class:`Meter`."""

    name = "meter"
    kind: MeterKind = "energy"

    def start(self) -> None:
        return None

    def energy_j(self) -> float:
        raise MeterError(f"meter {self.name} measures power, not energy")

    def power_w(self) -> float:
        raise MeterError(f"meter {self.name} measures energy, not power")

    def max_interval_s(self) -> float:
        return math.inf


MeterFactory = Callable[..., Meter]
METERS: Registry[MeterFactory] = Registry("meter", MeterError)


def register(name: str) -> Callable[[MeterFactory], MeterFactory]:
    """Class or factory decorator: make a meter available as ``name`` (a name already taken is refused)."""
    return METERS.register(name)


def meter_names() -> tuple[str, ...]:
    return METERS.names()


def create(name: str, **options: object) -> Meter:
    """The meter registered as ``name``, built with ``options`` (each meter's own keyword arguments)."""
    return METERS.get(name)(**options)
