"""One registry mechanism for everything found by name: policies, signal providers, meters.

A :class:`Registry` maps names to factories (or other values). Registering a name twice is an
error, and asking for an unknown name raises the family's own error type with the known names
(``unknown policy 'x'; known: a, b``), so the message a user sees names what they may type.
Which entries exist is decided by explicit registration lists next to each family (for example
:mod:`casa_sched.planners._policies`), never by scanning packages, so the import arrows show
what is registered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one family; ``kind`` names the family in messages (``"policy"``)."""

    def __init__(self, kind: str, error: type[Exception] = KeyError) -> None:
        self.kind = kind
        self.error = error
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` as ``name``; a second entry under the same name is refused."""
        if name in self._entries:
            raise self.error(f"{self.kind} {name!r} registered twice")
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def deco(entry: T) -> T:
            return self.add(name, entry)

        return deco

    def remove(self, name: str) -> None:
        """Unregister ``name`` (for tests and for replacing a built-in entry)."""
        self.get(name)
        del self._entries[name]

    def get(self, name: str) -> T:
        """The entry registered as ``name``; raises the family's error listing the known names."""
        try:
            return self._entries[name]
        except KeyError:
            raise self.error(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}") from None

    def copy(self) -> Registry[T]:
        """An independent registry with the same entries (for tests that register their own)."""
        other: Registry[T] = Registry(self.kind, self.error)
        other._entries = dict(self._entries)
        return other

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._entries))

    def __contains__(self, name: object) -> bool:
        return name in self._entries
