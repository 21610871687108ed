"""Whole-server power from the BMC: ``ipmitool dcmi power reading`` (IPMI DCMI).

Closer to the paper's P_i than RAPL (it includes fans, disks, PSU losses). A power meter: the
profiler averages its readings. BMCs refresh the reading about once a second, so sample at
1 s or slower. The command is configurable (``ipmitool -I lanplus -H bmc -U user -E dcmi power
reading`` for an out-of-band BMC).

Output (ipmitool 1.8.x, e.g. OpenBMC, Dell iDRAC, Supermicro)::

        Instantaneous power reading:                   235 Watts
        Minimum during sampling period:                 98 Watts
        Maximum during sampling period:                402 Watts
        Average power reading over sample period:      220 Watts
        IPMI timestamp:                           Thu Feb 15 08:36:01 2024
        Sampling period:                          00000001 Seconds.
        Power reading state is:                   activated
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from casa_profiler.meters.base import MeterBase, MeterError, MeterKind, register

DEFAULT_COMMAND = ("ipmitool", "dcmi", "power", "reading")
_FIELD_W = {
    "instant_w": "Instantaneous power reading",
    "minimum_w": "Minimum during sampling period",
    "maximum_w": "Maximum during sampling period",
    "average_w": "Average power reading over sample period",
}
_STATE = re.compile(r"Power reading state is\s*:\s*(\w+)", re.IGNORECASE)


@dataclass(frozen=True)
class DcmiReading:
    instant_w: float
    minimum_w: float | None
    maximum_w: float | None
    average_w: float | None
    active: bool | None  # "Power reading state is: activated"; None when the line is absent


def parse_dcmi_power(text: str) -> DcmiReading:
    """The fields of ``ipmitool dcmi power reading`` output (pure)."""
    values: dict[str, float | None] = {}
    for key, label in _FIELD_W.items():
        m = re.search(rf"{label}\s*:\s*([0-9]+(?:\.[0-9]+)?)\s*Watts", text, re.IGNORECASE)
        values[key] = float(m.group(1)) if m else None
    instant = values.pop("instant_w")
    if instant is None:
        raise MeterError(
            "ipmitool output has no 'Instantaneous power reading: N Watts' line: the BMC does not support "
            "DCMI power readings (try `ipmitool sdr type 'Current'` or another --meter)"
        )
    state = _STATE.search(text)
    active = None if state is None else state.group(1).lower() == "activated"
    return DcmiReading(instant, values["minimum_w"], values["maximum_w"], values["average_w"], active)


@register("ipmi")
class IpmiMeter(MeterBase):
    name = "ipmi"
    kind: MeterKind = "power"

    def __init__(self, command: Sequence[str] | str = DEFAULT_COMMAND, timeout_s: float = 10.0) -> None:
        try:
            self.command = tuple(shlex.split(command) if isinstance(command, str) else command)
        except ValueError as exc:  # an unclosed quote
            raise MeterError(f"--ipmi-command {command!r}: not a shell command line ({exc})") from None
        self.timeout_s = timeout_s
        if not self.command or shutil.which(self.command[0]) is None:
            raise MeterError(
                f"{self.command[0] if self.command else 'ipmitool'} is not installed or not on PATH: "
                "apt-get install ipmitool (and modprobe ipmi_devintf ipmi_si for the local BMC)"
            )

    def power_w(self) -> float:
        cmd = " ".join(self.command)
        try:
            out = subprocess.run(self.command, capture_output=True, text=True, timeout=self.timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise MeterError(f"`{cmd}` timed out after {self.timeout_s:g} s: is the BMC reachable?") from None
        except OSError as exc:
            raise MeterError(f"`{cmd}` could not run: {exc.strerror}") from None
        if out.returncode != 0:
            first = (out.stderr.strip() or out.stdout.strip() or f"exit {out.returncode}").splitlines()[0]
            hint = " (load ipmi_devintf and ipmi_si, and run as root)" if "/dev/ipmi" in first else ""
            raise MeterError(f"`{cmd}` failed: {first}{hint}")
        reading = parse_dcmi_power(out.stdout)
        if reading.active is False and reading.instant_w == 0:
            raise MeterError(f"`{cmd}`: the BMC's power measurement is deactivated (reads 0 W): use another --meter")
        return reading.instant_w
