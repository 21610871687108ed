"""Energy and power meters, one module each, found by name: powercap, pyrapl, prometheus, ipmi."""

from casa_profiler.meters import ipmi, powercap, prometheus, pyrapl
from casa_profiler.meters.base import Meter, MeterBase, MeterError, MeterKind, create, meter_names, register

__all__ = [
    "Meter",
    "MeterBase",
    "MeterError",
    "MeterKind",
    "create",
    "ipmi",
    "meter_names",
    "powercap",
    "prometheus",
    "pyrapl",
    "register",
]
