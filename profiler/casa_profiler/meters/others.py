"""Other meters: pyRAPL, Prometheus (node_exporter RAPL or Kepler counters), IPMI DCMI.

- ``pyrapl``: the pyRAPL package (optional extra ``pyrapl``). Limits: unmaintained since 2019
  (0.2.3.1), hard-coded Intel sysfs paths, no wraparound handling, and core/uncore zones read
  through the DRAM reader (a bug). Prefer ``powercap``.
- ``prometheus``: cumulative joules from ``node_rapl_package_joules_total`` (node_exporter;
  silently empty when it cannot read energy_uj) or Kepler's ``kepler_node_cpu_joules_total``,
  summed over the node's series, through the HTTP query API.
- ``ipmi``: whole-server power (closer to the paper's P_i) from ``ipmitool dcmi power reading``;
  a power meter, so the profiler averages its readings instead of differencing energy.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

import requests

from casa_profiler.meters.base import MeterError, register

_IPMI_POWER = re.compile(r"Instantaneous power reading:\s*([0-9.]+)\s*Watts", re.IGNORECASE)


def parse_dcmi_power(text: str) -> float:
    """Watts from ``ipmitool dcmi power reading`` output."""
    m = _IPMI_POWER.search(text)
    if m is None:
        raise MeterError(
            "ipmitool output has no 'Instantaneous power reading: N Watts' line (is DCMI power supported?)"
        )
    return float(m.group(1))


@register("ipmi")
@dataclass
class IpmiMeter:
    command: tuple[str, ...] = ("ipmitool", "dcmi", "power", "reading")
    name: str = "ipmi"

    def __post_init__(self) -> None:
        if shutil.which(self.command[0]) is None:
            raise MeterError(f"{self.command[0]} is not installed (apt-get install ipmitool) or not on PATH")

    def energy_j(self) -> None:
        return None

    def power_w(self) -> float:
        try:
            out = subprocess.run(self.command, capture_output=True, text=True, timeout=10, check=True)
        except subprocess.CalledProcessError as exc:
            raise MeterError(f"{' '.join(self.command)} failed: {exc.stderr.strip() or exc.returncode}") from None
        except subprocess.TimeoutExpired:
            raise MeterError(f"{' '.join(self.command)} timed out: is the BMC reachable?") from None
        return parse_dcmi_power(out.stdout)


@register("prometheus")
@dataclass
class PrometheusMeter:
    url: str = "http://localhost:9090"
    query: str = "sum(node_rapl_package_joules_total)"
    timeout_s: float = 5.0
    name: str = "prometheus"

    def energy_j(self) -> float:
        try:
            resp = requests.get(
                f"{self.url.rstrip('/')}/api/v1/query", params={"query": self.query}, timeout=self.timeout_s
            )
        except requests.RequestException as exc:
            raise MeterError(f"Prometheus at {self.url} unreachable: {exc}") from None
        if resp.status_code != 200:
            raise MeterError(f"Prometheus query failed: HTTP {resp.status_code}: {resp.text[:200]}")
        data: Any = resp.json()
        result = data.get("data", {}).get("result", []) if isinstance(data, dict) else []
        if not result:
            raise MeterError(
                f"Prometheus returned no series for {self.query!r}: is node_exporter's rapl collector able to read "
                "energy_uj (root), or is Kepler installed (kepler_node_cpu_joules_total)?"
            )
        return float(sum(float(r["value"][1]) for r in result))

    def power_w(self) -> None:
        return None


@register("pyrapl")
class PyRaplMeter:
    name = "pyrapl"

    def __init__(self) -> None:
        try:
            import pyRAPL
        except ImportError:
            raise MeterError(
                "pyRAPL is not installed: pip install 'casa-sched[pyrapl]' (or prefer --meter powercap)"
            ) from None
        try:
            pyRAPL.setup()
            self._meter = pyRAPL.Measurement("casa")
            self._meter.begin()
        except Exception as exc:  # pyRAPL raises its own untyped errors
            raise MeterError(f"pyRAPL cannot read RAPL: {exc}") from None

    def energy_j(self) -> float:
        self._meter.end()
        result = self._meter.result
        total = float(sum(result.pkg or []) + sum(result.dram or [])) / 1e6
        self._meter.begin()
        self._total = getattr(self, "_total", 0.0) + total
        return self._total

    def power_w(self) -> None:
        return None
