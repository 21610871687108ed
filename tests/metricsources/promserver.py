"""A real Prometheus server holding backfilled, trace-derived history (no scraping).

Series are written in OpenMetrics text (``promtool tsdb create-blocks-from openmetrics`` wants
it: timestamps in seconds, ``# EOF`` last), one sample per series at every minute boundary, then
loaded into the TSDB and served by ``prometheus`` on a loopback port. Names and labels are the
platforms' own; every family is typed ``unknown`` because OpenMetrics would otherwise demand a
``_total`` suffix that OpenCensus-era Knative counters do not have (Prometheus stores no types).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

Sample = tuple[str, dict[str, str], float, float]  # name, labels, unix time s, value


def openmetrics(samples: Iterable[Sample]) -> str:
    by_name: dict[str, list[str]] = {}
    for name, labels, t, v in samples:
        lab = ",".join(f'{k}="{val}"' for k, val in sorted(labels.items()))
        by_name.setdefault(name, []).append(f"{name}{{{lab}}} {v:.6f} {t:.3f}")
    lines = []
    for name, rows in by_name.items():
        lines += [f"# TYPE {name} unknown", *rows]
    return "\n".join([*lines, "# EOF"]) + "\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PromServer:
    """``prometheus`` on a loopback port over ``data`` (start again after ``stop`` on the same port)."""

    work: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        (self.work / "prometheus.yml").write_text("global: {scrape_interval: 1m}\n")
        log = (self.work / "prometheus.log").open("ab")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={self.work / 'prometheus.yml'}", f"--storage.tsdb.path={self.work / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=30d"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"prometheus did not start: {(self.work / 'prometheus.log').read_text()[-2000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
        self.proc = None


def backfilled_server(work: Path, samples: Iterable[Sample]) -> PromServer:
    """Write the samples, backfill them with promtool, start prometheus over them."""
    if shutil.which("prometheus") is None or shutil.which("promtool") is None:
        pytest.skip("prometheus/promtool are not installed (.ci/system-deps.sh)")
    src = work / "history.om"
    src.write_text(openmetrics(samples))
    (work / "data").mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(src), str(work / "data")],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"promtool backfill failed: {done.stdout[-1500:]} {done.stderr[-1500:]}")
    server = PromServer(work, free_port())
    server.start()
    return server
