"""RAPL energy through the pyRAPL package (optional extra ``pyrapl``).

Limits, why ``powercap`` is the default: pyRAPL 0.2.3.1 (December 2019) is unmaintained; it
hard-codes the Intel sysfs paths; it does not handle counter wraparound (a measurement spanning a
wrap comes out negative or short), and it reads the core/uncore zones through its DRAM reader (a
bug). This meter keeps each pyRAPL measurement to one sampling interval and refuses a negative
one rather than reporting it. Imported lazily: without the package, a clear error.
"""

from __future__ import annotations

from typing import Any

from casa_profiler.meters.base import MeterBase, MeterError, MeterKind, register


@register("pyrapl")
class PyRaplMeter(MeterBase):
    name = "pyrapl"
    kind: MeterKind = "energy"

    def __init__(self) -> None:
        try:
            import pyRAPL
        except ImportError:
            raise MeterError(
                "pyRAPL is not installed: pip install 'casa-sched[pyrapl]' (unmaintained since 2019, no wraparound "
                "handling; prefer --meter powercap)"
            ) from None
        try:
            pyRAPL.setup()
            self._measurement: Any = pyRAPL.Measurement("casa-profiler")
        except PermissionError:
            raise MeterError(
                "pyRAPL: permission denied on energy_uj (root-only since 2020, CVE-2020-8694): run as root"
            ) from None
        except Exception as exc:  # pyRAPL raises its own untyped errors (e.g. PyRAPLCantInitDeviceAPI)
            raise MeterError(f"pyRAPL cannot read RAPL: {type(exc).__name__}: {exc}") from None
        self._total_j = 0.0
        self._measurement.begin()

    def start(self) -> None:
        self._total_j = 0.0
        self._measurement.begin()

    def energy_j(self) -> float:
        self._measurement.end()
        result = self._measurement.result
        interval_uj = float(sum(result.pkg or []) + sum(result.dram or []))
        self._measurement.begin()
        if interval_uj < 0:
            raise MeterError(
                "pyRAPL measured negative energy: the counter wrapped and pyRAPL does not handle wraparound; "
                "use --meter powercap"
            )
        self._total_j += interval_uj / 1e6
        return self._total_j
