"""The shared clock: emulated time is linear in the wall clock, and its conversions invert."""

from __future__ import annotations

import threading

import pytest

from casa_sched.clock import Clock
from casa_sched.settings import SettingsError, load_settings


def test_emulated_time_runs_factor_times_faster_from_the_origin():
    wall = [1000.0]
    c = Clock(30.0, 1000.0, 5_000_000.0, wall=lambda: wall[0])
    assert c.now() == 5_000_000.0
    wall[0] += 30.0
    assert c.now() == 5_000_900.0  # a 15-minute epoch in 30 s
    assert c.real_unix_s(c.now()) == pytest.approx(wall[0])
    assert c.real_s(900.0) == 30.0
    assert c.promql_duration(300.0) == "10000ms"
    assert not c.real


def test_wait_is_shortened_by_the_factor():
    c = Clock(1000.0, 1.0, 1.0)
    event = threading.Event()
    assert c.wait(event, 0.5) is False  # 0.5 ms of wall clock


def test_settings_need_one_origin_for_a_factor():
    with pytest.raises(SettingsError, match="origin_unix_s"):
        load_settings(environ={"CASA_CLOCK__FACTOR": "30"})
    s = load_settings(environ={"CASA_CLOCK__FACTOR": "30", "CASA_CLOCK__ORIGIN_UNIX_S": "1700000000"})
    c = Clock.from_settings(s)
    assert (c.factor, c.origin_unix_s, c.start_unix_s) == (30.0, 1.7e9, 1.7e9)
    assert Clock.from_settings(load_settings(environ={})).real
