"""The meter interface: cumulative energy in joules (or instantaneous power), found by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class MeterError(RuntimeError):
    """A meter that cannot be read; the message says what is wrong and how to fix it."""


class Meter(Protocol):
    """Energy counters are read as cumulative joules since the meter was opened (wraparound
    handled inside); power-only meters (IPMI) return ``None`` from ``energy_j`` and answer
    ``power_w`` instead."""

    name: str

    def energy_j(self) -> float | None: ...

    def power_w(self) -> float | None: ...


MeterFactory = Callable[..., Meter]
_REGISTRY: dict[str, MeterFactory] = {}


def register(name: str) -> Callable[[MeterFactory], MeterFactory]:
    def deco(factory: MeterFactory) -> MeterFactory:
        _REGISTRY[name] = factory
        return factory

    return deco


def meter_names() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def create(name: str, **options: object) -> Meter:
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise MeterError(f"unknown meter {name!r}; known: {', '.join(meter_names())}") from None
    return factory(**options)
