"""The one cache shape of the extender: a ``str``-keyed memo bounded in bytes.

Every cache on the request path is keyed by text that arrives in requests (node names, power-model
annotations of the nodes in a NodeList), so each is bounded by the bytes it holds, not by its
number of entries: an entry count alone let 300 prioritize calls with unique 1 MB node names keep
~600 MB alive. When an insertion would pass ``max_bytes`` the memo is emptied and refilled from
the next misses (the working set — a cluster's node names — is far below every budget, so a
clear only happens under hostile or runaway input).

The byte figure is an estimate of what the entry keeps alive: ``sys.getsizeof`` of key and value
plus a dict slot, or the ``cost`` given. Lookups are plain ``dict`` lookups (``map(memo.__getitem__,
names)`` runs at C speed); only a miss runs Python code.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

V = TypeVar("V")

DICT_SLOT_BYTES = 100  # hash-table slot plus amortised growth of a CPython dict, per entry


def default_cost(key: str, value: object) -> int:
    return sys.getsizeof(key) + sys.getsizeof(value) + DICT_SLOT_BYTES


class ByteBoundedMemo(dict[str, V]):
    """``memo[key]`` returns the cached value or computes, stores and returns ``compute(key)``.
    ``compute`` may raise: nothing is stored then."""

    def __init__(
        self, compute: Callable[[str], V], max_bytes: int, cost: Callable[[str, V], int] = default_cost
    ) -> None:
        super().__init__()
        self._compute = compute
        self._cost = cost
        self.max_bytes = max_bytes
        self.bytes = 0  # estimated bytes held by the entries

    def __missing__(self, key: str) -> V:
        value = self._compute(key)
        self.put(key, value)
        return value

    def put(self, key: str, value: V) -> None:
        old = self.get(key)
        if old is not None:
            self.bytes -= self._cost(key, old)
        cost = self._cost(key, value)
        if self.bytes + cost > self.max_bytes:
            self.clear()
            if cost > self.max_bytes:
                return  # larger than the whole budget: computed, returned, never kept
        dict.__setitem__(self, key, value)
        self.bytes += cost

    def __setitem__(self, key: str, value: V) -> None:
        self.put(key, value)

    def discard(self, key: str) -> None:
        """Forget ``key`` (an invalidation: its inputs changed)."""
        if key in self:
            self.bytes -= self._cost(key, dict.pop(self, key))

    def clear(self) -> None:
        dict.clear(self)
        self.bytes = 0
