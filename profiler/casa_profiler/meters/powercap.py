"""RAPL energy through the Linux powercap sysfs tree (Intel, and AMD Zen via intel_rapl_common).

Zones ``intel-rapl:N`` (name ``package-N``) and sub-zones ``intel-rapl:N:M`` (``core``,
``uncore``, ``dram``) expose ``energy_uj`` (µJ) and ``max_energy_range_uj``. The counter wraps
at the range: a reading lower than the previous one means ``now + range − before``. Reads must
come well inside the wrap period (minutes at full power on recent AMD parts); a gap long enough
for two wraps cannot be told from one, so it is refused. ``energy_uj`` is root-only since
November 2020 (CVE-2020-8694, PLATYPUS). The root directory is configurable (tests, containers).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from casa_profiler.meters.base import MeterError, register

#: Beyond this average power over a gap, the gap may hide a second wrap (W). Two 400 W sockets.
MAX_PLAUSIBLE_POWER_W = 2000.0  # default of PowercapMeter.max_power_w


@dataclass
class _Zone:
    path: Path
    name: str
    range_uj: int
    last_uj: int
    last_t: float
    total_uj: int = 0


@register("powercap")
@dataclass
class PowercapMeter:
    """Sum of the package zones (and DRAM sub-zones when ``include_dram``)."""

    root: Path = Path("/sys/class/powercap")
    include_dram: bool = True
    max_power_w: float = MAX_PLAUSIBLE_POWER_W
    name: str = "powercap"
    zones: list[_Zone] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not self.root.is_dir():
            raise MeterError(
                f"no powercap tree at {self.root}: this machine exposes no RAPL energy counters "
                "(bare-metal Intel or AMD Zen with the intel_rapl_common module; VMs usually have none) "
                "- use --meter ipmi or --meter prometheus instead"
            )
        for zone_dir in sorted(self.root.glob("intel-rapl:*")):
            name = _read_text(zone_dir / "name")
            is_package = name.startswith("package") and zone_dir.name.count(":") == 1
            is_dram = name == "dram" and self.include_dram
            if is_package or is_dram:
                now = self._read_uj(zone_dir / "energy_uj")
                self.zones.append(
                    _Zone(zone_dir, name, self._read_uj(zone_dir / "max_energy_range_uj"), now, time.monotonic())
                )
        if not self.zones:
            raise MeterError(
                f"{self.root} has no intel-rapl package zones: load the intel_rapl_common module "
                "(modprobe intel_rapl_common) or use another meter"
            )

    def _read_uj(self, path: Path) -> int:
        try:
            text = path.read_text().strip()
        except PermissionError:
            raise MeterError(
                f"permission denied reading {path}: energy_uj is root-only since 2020 (CVE-2020-8694); "
                "run the profiler as root (the DaemonSet is privileged) or grant read access with a udev rule"
            ) from None
        except OSError as exc:
            raise MeterError(f"cannot read {path}: {exc.strerror}") from None
        try:
            return int(text)
        except ValueError:
            raise MeterError(f"{path} holds {text!r}, not a counter in µJ") from None

    def energy_j(self) -> float:
        now_t = time.monotonic()
        for z in self.zones:
            now = self._read_uj(z.path / "energy_uj")
            delta = now - z.last_uj
            if delta < 0:
                delta += z.range_uj
            gap_s = now_t - z.last_t
            # If a plausible power could have used up a whole range in the gap, one wrap cannot be
            # told from two: refuse instead of guessing.
            if gap_s * self.max_power_w > z.range_uj / 1e6:
                raise MeterError(
                    f"{z.path.name} ({z.name}): {gap_s:.0f} s between reads may hide two counter wraps "
                    f"(range {z.range_uj / 1e6:.0f} J): sample more often (--interval)"
                )
            z.total_uj += delta
            z.last_uj, z.last_t = now, now_t
        return sum(z.total_uj for z in self.zones) / 1e6

    def power_w(self) -> None:
        return None


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
