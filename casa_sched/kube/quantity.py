"""Kubernetes resource quantities (``"250m"``, ``"2"``, ``"128Mi"``, ``"1e3"``) as floats.

Pure. Mirrors k8s.io/apimachinery ``resource.Quantity``'s serialised form: a signed decimal
number, then either a binary SI suffix (Ki..Ei), a decimal SI suffix (n, u, m, k, M, G, T, P, E)
or a decimal exponent (e3, E-2). :data:`QUANTITY_PATTERN` is the same rule as a regular
expression, published in the extender's OpenAPI schema so that schema and parser agree.
"""

from __future__ import annotations

import math
import re
from typing import Final

# Anchored like JSON Schema "pattern" (search semantics); both the schema and the parser use it.
QUANTITY_PATTERN: Final[str] = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
_RE: Final = re.compile(QUANTITY_PATTERN)

_SUFFIX: Final[dict[str, float]] = {
    "": 1.0,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity."""


def parse_quantity(text: str) -> float:
    """The quantity's value in base units (cores for cpu, bytes for memory).

    >>> parse_quantity("250m"), parse_quantity("1Gi"), parse_quantity("1e3")
    (0.25, 1073741824.0, 1000.0)
    """
    m = _RE.search(text)
    if m is None:
        raise QuantityError(f"not a Kubernetes quantity: {text[:64]!r}")
    number = text[: m.end(1)]
    suffix = m.group(3) or ""
    try:
        value = float(number)
        if suffix[:1] in ("e", "E"):
            value *= 10.0 ** int(suffix[1:])
        else:
            value *= _SUFFIX[suffix]
    except (OverflowError, ValueError) as exc:
        raise QuantityError(f"quantity out of range: {text[:64]!r}") from exc
    if not math.isfinite(value):
        raise QuantityError(f"quantity out of range: {text[:64]!r}")
    return value


def parse_cpu_cores(text: str) -> float:
    """A cpu quantity in cores (``"1500m"`` → 1.5)."""
    return parse_quantity(text)


def parse_memory_bytes(text: str) -> float:
    """A memory quantity in bytes (``"128Mi"`` → 134217728.0)."""
    return parse_quantity(text)
