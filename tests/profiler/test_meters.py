"""The powercap meter on a fake sysfs tree whose counters advance like a real package; pyRAPL
and the registry's errors."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from casa_profiler.meters import MeterError, create, meter_names
from casa_profiler.meters.powercap import PowercapMeter
from casa_profiler.profile import check_interval, measure_power

from tests.profiler.fake_rapl import FakeRapl, constant


@pytest.fixture
def rapl(tmp_path: Path) -> Iterator[FakeRapl]:
    # 80 W package + 20 W DRAM; a 30 J range wraps the package counter every 30 / 80 = 0.375 s
    with FakeRapl(tmp_path, constant(80.0), constant(20.0), 30.0) as fake:
        yield fake


def _static_zone(root: Path, energy: str = "12345", range_uj: str = "262143328850", name: str = "package-0") -> Path:
    zone = root / "intel-rapl:0"
    zone.mkdir(parents=True, exist_ok=True)
    (zone / "name").write_text(name + "\n")
    (zone / "energy_uj").write_text(energy + "\n")
    (zone / "max_energy_range_uj").write_text(range_uj + "\n")
    return zone


@pytest.mark.parametrize(
    ("include_dram", "expected_w"),
    [
        pytest.param(True, 100.0, id="package+dram"),  # 80 W + 20 W
        pytest.param(False, 80.0, id="package-only"),
    ],
)
def test_power_through_many_wraparounds(rapl, include_dram, expected_w):
    # 30 J / 150 W = 0.2 s before a double wrap is possible; reads every 0.08 s are well inside it
    meter = PowercapMeter(rapl.root, include_dram=include_dram, max_power_w=150.0)
    powers = measure_power(meter, samples=12, interval_s=0.08)
    # ~1 s at 80 W = 80 J = 2.7 ranges: the package counter wrapped at least twice
    assert rapl.wraps["intel-rapl:0"] >= 2
    assert sum(powers) / len(powers) == pytest.approx(expected_w, rel=0.1)


def test_zones_found_once_each(rapl):
    meter = PowercapMeter(rapl.root)
    # package-0 and its dram sub-zone (through the top-level symlink); "intel-rapl" itself is not a zone
    assert sorted(z.name for z in meter.zones) == ["dram", "package-0"]


@pytest.mark.parametrize(
    ("range_j", "max_power_w", "max_interval_s"),
    [
        pytest.param(30.0, 150.0, 0.2, id="fake-30J"),  # 30 J / 150 W
        # a real Intel package: 262143 J at the 2000 W default = 131 s; the default 2 s is far inside
        pytest.param(262143.328850, 2000.0, 131.07, id="intel-package"),
    ],
)
def test_max_interval_is_the_range_at_plausible_power(tmp_path, range_j, max_power_w, max_interval_s):
    _static_zone(tmp_path, range_uj=str(int(range_j * 1e6)))
    assert PowercapMeter(tmp_path, max_power_w=max_power_w).max_interval_s() == pytest.approx(max_interval_s, rel=1e-3)


def test_a_gap_that_may_hide_two_wraps_is_refused(rapl):
    meter = PowercapMeter(rapl.root, max_power_w=150.0)
    meter.start()
    time.sleep(0.3)  # 0.3 s × 150 W = 45 J > the 30 J range
    with pytest.raises(MeterError, match="may hide two counter wraps"):
        meter.energy_j()


def test_an_interval_outside_the_wrap_period_is_refused_up_front(rapl):
    meter = PowercapMeter(rapl.root, max_power_w=150.0)
    # well inside = at most half of 0.2 s
    with pytest.raises(MeterError, match=r"--interval 0.15 s is too long.*every ≤ 0.1 s"):
        check_interval(meter, 0.15)


def test_a_counter_that_does_not_move(tmp_path):
    _static_zone(tmp_path)
    meter = PowercapMeter(tmp_path)
    with pytest.raises(MeterError, match="did not move"):
        measure_power(meter, samples=2, interval_s=0.05)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        pytest.param("absent", "no powercap tree", id="no-tree"),
        pytest.param("empty", "no intel-rapl package zones", id="no-zones"),
        pytest.param("psys-only", "no intel-rapl package zones", id="platform-zone-only"),
        pytest.param("garbage", "not a counter in µJ", id="garbage-counter"),
        pytest.param("zero-range", "not a usable counter range", id="zero-range"),
    ],
)
def test_clear_errors_for_missing_or_broken_rapl(tmp_path, setup, message):
    root = tmp_path / "pc"
    if setup != "absent":
        root.mkdir()
    if setup == "psys-only":
        _static_zone(root, name="psys")
    if setup == "garbage":
        _static_zone(root, energy="not-a-number")
    if setup == "zero-range":
        _static_zone(root, range_uj="0")
    with pytest.raises(MeterError, match=message):
        PowercapMeter(root)


def test_permission_denied_says_root_only(tmp_path, monkeypatch):
    _static_zone(tmp_path)
    original = Path.read_text

    def denied(self: Path, *args: object, **kwargs: object) -> str:
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied")
        return original(self)

    monkeypatch.setattr(
        Path, "read_text", denied
    )  # root reads anything: deny it here (a real run as nobody is in test_profile)
    with pytest.raises(MeterError, match="root-only since 2020"):
        PowercapMeter(tmp_path)


def test_pyrapl_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyRAPL", None)  # import pyRAPL → ImportError, installed or not
    with pytest.raises(MeterError, match=r"pyRAPL is not installed: pip install 'casa-sched\[pyrapl\]'"):
        create("pyrapl")


def test_registry_knows_every_meter_and_refuses_others():
    assert meter_names() == ("ipmi", "powercap", "prometheus", "pyrapl")
    with pytest.raises(MeterError, match="unknown meter 'wattmeter'; known: ipmi, powercap, prometheus, pyrapl"):
        create("wattmeter")
