"""The Prometheus configuration :class:`PrometheusServer` writes is one Prometheus accepts, at
any scrape interval a loop may ask for (sub-second ones included: Prometheus durations take no
fractions, so half a second is ``500ms``, never ``0.5s``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from casa_sched.devcluster.prometheus import PrometheusServer, duration, find_tool, tools_missing


@pytest.mark.parametrize(("seconds", "text"), [(1.0, "1s"), (5.0, "5s"), (60.0, "60s"), (0.5, "500ms"),
                                               (0.25, "250ms"), (1.5, "1500ms"), (0.001, "1ms")])  # fmt: skip
def test_duration_is_whole_seconds_else_milliseconds(seconds: float, text: str) -> None:
    assert duration(seconds) == text


@pytest.mark.parametrize("seconds", [0.0, -1.0, 0.0004, 0.0015, float("nan"), float("inf")])
def test_duration_refuses_what_prometheus_cannot_say(seconds: float) -> None:
    with pytest.raises(ValueError, match="Prometheus duration"):
        duration(seconds)


@pytest.mark.prometheus
@pytest.mark.skipif(tools_missing() is not None, reason=str(tools_missing()))
@pytest.mark.parametrize("interval_s", [0.5, 1.0, 2.5])
def test_written_config_passes_promtool_check_config(tmp_path: Path, interval_s: float) -> None:
    server = PrometheusServer(tmp_path, scrape_targets={"emulator": "127.0.0.1:9110"}, scrape_interval_s=interval_s)
    path = server.write_config()
    done = subprocess.run([str(find_tool("promtool")), "check", "config", str(path)], capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert duration(interval_s) in path.read_text()
