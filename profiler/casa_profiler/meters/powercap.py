"""RAPL energy through the Linux powercap sysfs tree (Intel, and AMD Zen via intel_rapl_common).

Zones ``intel-rapl:N`` (name ``package-N``) and sub-zones ``intel-rapl:N:M`` (``core``,
``uncore``, ``dram``) expose ``energy_uj`` (µJ) and ``max_energy_range_uj``; sub-zones also
appear at the top level as symlinks, so only the top level is scanned (no double counting).
``psys`` (platform) and ``intel-rapl-mmio:*`` (a second view of the same package) are skipped.

The counter wraps at the range: a reading lower than the previous one means
``now + range − before``. Reads must come well inside the wrap period (minutes at full power on
recent AMD parts); a gap long enough for the counter to pass its whole range at a plausible
power (``max_power_w``) may hide a second wrap that cannot be told from one, so it is refused.
``energy_uj`` is root-only since November 2020 (CVE-2020-8694, PLATYPUS). The root directory is
configurable (tests; a container that mounts the host's tree elsewhere).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from casa_profiler.meters.base import MeterBase, MeterError, MeterKind, register

#: Average power per zone beyond which a gap may hide a second wrap, W. Generous on purpose
#: (the biggest server packages draw ~500 W): it only bounds how long reads may be apart.
MAX_PLAUSIBLE_POWER_W = 2000.0


@dataclass
class _Zone:
    path: Path
    name: str
    range_uj: int
    last_uj: int
    last_t: float
    total_uj: int = 0


@register("powercap")
class PowercapMeter(MeterBase):
    """Sum of the package zones (and DRAM sub-zones when ``include_dram``), joules since ``start()``."""

    name = "powercap"
    kind: MeterKind = "energy"

    def __init__(
        self,
        root: Path | str = Path("/sys/class/powercap"),
        include_dram: bool = True,
        max_power_w: float = MAX_PLAUSIBLE_POWER_W,
    ) -> None:
        self.root = Path(root)
        self.include_dram = include_dram
        if not max_power_w > 0:
            raise MeterError(f"max plausible power must be > 0 W, got {max_power_w}")
        self.max_power_w = max_power_w
        self.zones: list[_Zone] = []
        if not self.root.is_dir():
            raise MeterError(
                f"no powercap tree at {self.root}: this machine exposes no RAPL energy counters "
                "(needs bare-metal Intel or AMD Zen with the intel_rapl_common module; VMs usually have none); "
                "use --meter ipmi or --meter prometheus instead"
            )
        now_t = time.monotonic()
        for zone_dir in sorted(self.root.glob("intel-rapl:*")):
            name = _read_text(zone_dir / "name")
            is_package = name.startswith("package") and zone_dir.name.count(":") == 1
            is_dram = name == "dram" and self.include_dram
            if is_package or is_dram:
                range_uj = self._read_uj(zone_dir / "max_energy_range_uj")
                if range_uj <= 0:
                    raise MeterError(f"{zone_dir / 'max_energy_range_uj'} is {range_uj}: not a usable counter range")
                self.zones.append(_Zone(zone_dir, name, range_uj, self._read_uj(zone_dir / "energy_uj"), now_t))
        if not self.zones:
            raise MeterError(
                f"{self.root} has no intel-rapl package zones: load the RAPL driver "
                "(modprobe intel_rapl_common; intel_rapl_msr on Intel) or use another --meter"
            )

    def _read_uj(self, path: Path) -> int:
        try:
            text = path.read_text().strip()
        except PermissionError:
            raise MeterError(
                f"permission denied reading {path}: energy_uj is root-only since 2020 (CVE-2020-8694); "
                "run the profiler as root (the DaemonSet's init container is privileged) or grant read access "
                "(chmod a+r via a udev rule or tmpfiles.d)"
            ) from None
        except OSError as exc:
            raise MeterError(f"cannot read {path}: {exc.strerror}") from None
        try:
            return int(text)
        except ValueError:
            raise MeterError(f"{path} holds {text!r}, not a counter in µJ") from None

    def max_interval_s(self) -> float:
        """The counter with the smallest range, passed in full at ``max_power_w``, s."""
        return min(z.range_uj for z in self.zones) / 1e6 / self.max_power_w

    def start(self) -> None:
        now_t = time.monotonic()
        for z in self.zones:
            z.last_uj, z.last_t, z.total_uj = self._read_uj(z.path / "energy_uj"), now_t, 0

    def energy_j(self) -> float:
        now_t = time.monotonic()
        for z in self.zones:
            now = self._read_uj(z.path / "energy_uj")
            if not 0 <= now <= z.range_uj:
                raise MeterError(f"{z.path / 'energy_uj'} = {now} µJ lies outside its range 0..{z.range_uj} µJ")
            gap_s = now_t - z.last_t
            # A plausible power could have used up a whole range in the gap: one wrap cannot be
            # told from two, so refuse instead of guessing.
            if gap_s * self.max_power_w > z.range_uj / 1e6:
                raise MeterError(
                    f"{z.path.name} ({z.name}): {gap_s:.1f} s between reads may hide two counter wraps "
                    f"(range {z.range_uj / 1e6:.0f} J, passed in {self.max_interval_s():.1f} s at {self.max_power_w:g} W): "
                    "sample more often (--interval)"
                )
            delta = now - z.last_uj
            if delta < 0:  # one wrap
                delta += z.range_uj
            z.total_uj += delta
            z.last_uj, z.last_t = now, now_t
        return sum(z.total_uj for z in self.zones) / 1e6


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
