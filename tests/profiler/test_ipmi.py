"""IPMI DCMI: parsing real ``ipmitool dcmi power reading`` output, and running the command.

The samples below are output layouts published from real BMCs (ipmitool 1.8.x on OpenBMC, on
a Supermicro-class BMC through OpenIPMI, and a BMC whose power measurement is deactivated).
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from casa_profiler.meters import MeterError, create
from casa_profiler.meters.ipmi import DcmiReading, IpmiMeter, parse_dcmi_power
from casa_profiler.profile import measure_power

OPENIPMI_ACTIVE = """
    Instantaneous power reading:                    50 Watts
    Minimum during sampling period:                  6 Watts
    Maximum during sampling period:                304 Watts
    Average power reading over sample period:       49 Watts
    IPMI timestamp:                           Thu Feb 15 08:36:01 2024
    Sampling period:                          00000001 Seconds.
    Power reading state is:                   activated

"""

OPENBMC_DEACTIVATED = """
    Instantaneous power reading:                   235 Watts
    Minimum during sampling period:                235 Watts
    Maximum during sampling period:                235 Watts
    Average power reading over sample period:      235 Watts
    IPMI timestamp:                           Thu Jan  1 00:00:00 1970
    Sampling period:                          00000000 Seconds.
    Power reading state is:                        deactivated
"""

ZERO_DEACTIVATED = OPENBMC_DEACTIVATED.replace("235 Watts", "0 Watts")

NO_DCMI = "DCMI request failed because: Invalid command (c1)\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(OPENIPMI_ACTIVE, DcmiReading(50.0, 6.0, 304.0, 49.0, True), id="openipmi-activated"),
        # deactivated: the statistics are not being kept, but the instantaneous reading is real
        pytest.param(OPENBMC_DEACTIVATED, DcmiReading(235.0, 235.0, 235.0, 235.0, False), id="openbmc-deactivated"),
        pytest.param(
            "Instantaneous power reading: 112.5 Watts\n", DcmiReading(112.5, None, None, None, None), id="bare"
        ),
    ],
)
def test_dcmi_output_parsing(text, expected):
    assert parse_dcmi_power(text) == expected


def test_output_without_a_power_line_is_refused():
    with pytest.raises(MeterError, match="does not support DCMI power readings"):
        parse_dcmi_power(NO_DCMI)


def _fake_ipmitool(tmp_path: Path, stdout: str, exit_code: int = 0, stderr: str = "") -> str:
    script = tmp_path / "ipmitool"
    script.write_text(
        f"#!/bin/sh\ncat <<'EOF'\n{stdout}EOF\n" + (f"echo '{stderr}' >&2\n" if stderr else "") + f"exit {exit_code}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_meter_runs_the_command_and_averages_readings(tmp_path):
    meter = IpmiMeter([_fake_ipmitool(tmp_path, OPENIPMI_ACTIVE), "dcmi", "power", "reading"])
    # a power meter: three readings of 50 W
    assert measure_power(meter, samples=3, interval_s=0.01) == [50.0, 50.0, 50.0]


@pytest.mark.parametrize(
    ("stdout", "exit_code", "stderr", "message"),
    [
        pytest.param(
            "", 1, "Could not open device at /dev/ipmi0 or /dev/ipmi/0 or /dev/ipmidev/0: No such file or directory",
            r"failed: Could not open device at /dev/ipmi0.*load ipmi_devintf and ipmi_si", id="no-device",
        ),
        pytest.param(NO_DCMI, 0, "", "does not support DCMI", id="no-dcmi"),
        pytest.param(ZERO_DEACTIVATED, 0, "", "power measurement is deactivated", id="deactivated-zero"),
    ],
)  # fmt: skip
def test_command_failures_are_one_clear_error(tmp_path, stdout, exit_code, stderr, message):
    meter = IpmiMeter([_fake_ipmitool(tmp_path, stdout, exit_code, stderr)])
    with pytest.raises(MeterError, match=message):
        meter.power_w()


def test_missing_ipmitool_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no ipmitool anywhere
    with pytest.raises(MeterError, match=r"ipmitool is not installed or not on PATH: apt-get install ipmitool"):
        create("ipmi")
