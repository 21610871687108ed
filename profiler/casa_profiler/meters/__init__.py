"""Energy meters, one module each, found by name (powercap, pyrapl, prometheus, ipmi)."""

from casa_profiler.meters import others, powercap
from casa_profiler.meters.base import Meter, MeterError, create, meter_names

__all__ = ["Meter", "MeterError", "create", "meter_names", "others", "powercap"]
