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
    """A string that is not a Kubernetes quantity (does not match :data:`QUANTITY_PATTERN`)."""


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
    value = float(number)  # the pattern admits only decimal literals float() accepts
    scale = _SUFFIX.get(suffix)
    if scale is None:  # decimal exponent e/E[+-]digits
        digits = suffix[1:].lstrip("+-").lstrip("0") or "0"
        negative = suffix[1:2] == "-"
        if len(digits) > 6:  # absurd exponent: saturate instead of building a huge int
            scale = 0.0 if negative else math.inf
        else:
            exponent = -int(digits) if negative else int(digits)
            try:
                scale = 10.0**exponent
            except OverflowError:
                scale = math.inf
    if value == 0.0:
        return 0.0
    # Schema-valid but physically absurd quantities (1e400) saturate to ±inf rather than being
    # rejected: such a request simply fits nowhere.
    result = value * scale
    return 0.0 if math.isnan(result) else result  # inf × 0 (e.g. "1e999e-9999999") is NaN: call it 0


def parse_cpu_cores(text: str) -> float:
    """A cpu quantity in cores (``"1500m"`` → 1.5)."""
    return parse_quantity(text)


def parse_memory_bytes(text: str) -> float:
    """A memory quantity in bytes (``"128Mi"`` → 134217728.0)."""
    return parse_quantity(text)
