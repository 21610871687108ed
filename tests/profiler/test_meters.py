"""The powercap meter on a fake sysfs tree whose counters advance like a real package."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from casa_profiler.meters import MeterError, create
from casa_profiler.meters.others import parse_dcmi_power
from casa_profiler.meters.powercap import PowercapMeter
from casa_profiler.profile import measure_power


class FakeRapl:
    """``intel-rapl:0`` (package-0) and ``intel-rapl:0:0`` (dram) advancing at set powers, wrapping."""

    def __init__(self, root: Path, package_w: float, dram_w: float, range_j: float) -> None:
        self.root = root
        self.powers = {"intel-rapl:0": package_w, "intel-rapl:0/intel-rapl:0:0": dram_w}
        self.range_uj = int(range_j * 1e6)
        self.energy_uj = dict.fromkeys(self.powers, 0.0)
        for rel, name in (("intel-rapl:0", "package-0"), ("intel-rapl:0/intel-rapl:0:0", "dram")):
            d = root / rel
            d.mkdir(parents=True)
            (d / "name").write_text(name + "\n")
            (d / "max_energy_range_uj").write_text(f"{self.range_uj}\n")
            (d / "energy_uj").write_text("0\n")
        # the tree's layout on real machines: sub-zones also appear at the top level
        (root / "intel-rapl:0:0").symlink_to(root / "intel-rapl:0" / "intel-rapl:0:0")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(0.005):
            now = time.monotonic()
            for rel, watts in self.powers.items():
                self.energy_uj[rel] = (self.energy_uj[rel] + watts * (now - last) * 1e6) % self.range_uj
                tmp = self.root / rel / "energy_uj.tmp"  # sysfs reads are atomic: replace, never truncate
                tmp.write_text(f"{int(self.energy_uj[rel])}\n")
                os.replace(tmp, self.root / rel / "energy_uj")
            last = now

    def __enter__(self) -> FakeRapl:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def rapl(tmp_path: Path) -> Iterator[FakeRapl]:
    # 80 W package + 20 W DRAM; a 30 J range wraps the package counter every 0.375 s
    with FakeRapl(tmp_path, 80.0, 20.0, 30.0) as fake:
        yield fake


def test_power_through_many_wraparounds(rapl):
    meter = PowercapMeter(rapl.root, max_power_w=150.0)  # 30 J / 150 W → reads every < 0.2 s are unambiguous
    powers = measure_power(meter, samples=10, interval_s=0.1)
    # package 80 W + dram 20 W = 100 W; the counter wrapped about 3 times in the second
    assert sum(powers) / len(powers) == pytest.approx(100.0, rel=0.1)


def test_package_only_without_dram(rapl):
    meter = PowercapMeter(rapl.root, include_dram=False, max_power_w=150.0)
    powers = measure_power(meter, samples=6, interval_s=0.1)
    assert sum(powers) / len(powers) == pytest.approx(80.0, rel=0.1)


def test_a_gap_that_may_hide_two_wraps_is_refused(rapl):
    meter = PowercapMeter(rapl.root, max_power_w=150.0)
    time.sleep(0.3)  # 0.3 s × 150 W = 45 J > the 30 J range
    with pytest.raises(MeterError, match="may hide two counter wraps"):
        meter.energy_j()


def test_a_counter_that_does_not_move(tmp_path):
    zone = tmp_path / "intel-rapl:0"
    zone.mkdir()
    (zone / "name").write_text("package-0\n")
    (zone / "energy_uj").write_text("12345\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")
    meter = PowercapMeter(tmp_path)
    with pytest.raises(MeterError, match="did not move"):
        measure_power(meter, samples=2, interval_s=0.05)


def test_clear_errors_for_missing_or_unreadable_rapl(tmp_path, monkeypatch):
    with pytest.raises(MeterError, match="no powercap tree"):
        PowercapMeter(tmp_path / "absent")
    with pytest.raises(MeterError, match="no intel-rapl package zones"):
        PowercapMeter(tmp_path)
    zone = tmp_path / "intel-rapl:0"
    zone.mkdir()
    (zone / "name").write_text("package-0\n")
    (zone / "max_energy_range_uj").write_text("1000\n")
    (zone / "energy_uj").write_text("not-a-number\n")
    with pytest.raises(MeterError, match="not a counter"):
        PowercapMeter(tmp_path)
    (zone / "energy_uj").write_text("5\n")
    original = Path.read_text

    def denied(self: Path, *args: object, **kwargs: object) -> str:
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied")
        return original(self)

    monkeypatch.setattr(Path, "read_text", denied)  # root reads anything, so deny it here
    with pytest.raises(MeterError, match="root-only since 2020"):
        PowercapMeter(tmp_path)


@pytest.mark.parametrize(
    ("text", "watts"),
    [
        pytest.param(
            "\n    Instantaneous power reading:                   236 Watts\n    Minimum during sampling period:"
            "                 98 Watts\n    Maximum during sampling period:                 402 Watts\n"
            "    Average power reading over sample period:     220 Watts\n    Power reading state is:"
            "                       activated\n",
            236.0,
            id="dell-idrac",
        ),
        pytest.param("Instantaneous power reading: 112.5 Watts\n", 112.5, id="decimal"),
    ],
)
def test_ipmi_dcmi_output_parsing(text, watts):
    assert parse_dcmi_power(text) == watts


def test_ipmi_without_power_reading_and_unknown_meters():
    with pytest.raises(MeterError, match="DCMI"):
        parse_dcmi_power("Power reading state is: deactivated")
    with pytest.raises(MeterError, match="unknown meter"):
        create("wattmeter")
