"""A real Prometheus server for the observability tests: started on a loopback port, optionally
over history backfilled with ``promtool tsdb create-blocks-from openmetrics``."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None or PROMTOOL is None, reason="prometheus/promtool are not installed (.ci/system-deps.sh)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def openmetrics(series: Mapping[str, Mapping[float, float]]) -> str:
    """``{'name{labels}': {unix_s: value}}`` → an OpenMetrics text ending in ``# EOF``, one gauge
    family per metric name (promtool backfills any type the same way)."""
    families: dict[str, list[str]] = {}
    for selector, points in series.items():
        name = selector.split("{", 1)[0]
        families.setdefault(name, []).extend(f"{selector} {v} {t:.0f}" for t, v in sorted(points.items()))
    lines: list[str] = []
    for name, samples in families.items():
        lines += [f"# TYPE {name} gauge", *samples]
    return "\n".join([*lines, "# EOF"]) + "\n"


def backfill(work: Path, series: Mapping[str, Mapping[float, float]]) -> Path:
    """Blocks under ``work/data`` holding ``series``."""
    assert PROMTOOL is not None
    src = work / "history.om"
    src.write_text(openmetrics(series))
    data = work / "data"
    out = subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(src), str(data)],
                         capture_output=True, text=True, check=False)  # fmt: skip
    if out.returncode != 0:
        pytest.fail(f"promtool backfill failed: {out.stderr[-2000:]}")
    return data


@contextmanager
def prometheus(
    work: Path, scrape_targets: Mapping[str, str] | None = None, rule_files: tuple[Path, ...] = ()
) -> Iterator[str]:
    """A Prometheus on a free loopback port over ``work/data``, scraping ``{job: host:port}`` every
    second and evaluating ``rule_files`` every second; yields its URL once it answers."""
    assert PROMETHEUS is not None
    jobs = "".join(
        f"  - job_name: {job}\n    static_configs: [{{targets: ['{target}']}}]\n"
        for job, target in (scrape_targets or {}).items()
    )
    rules = "".join(f"  - {p}\n" for p in rule_files)
    (work / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        + (f"rule_files:\n{rules}" if rules else "")
        + (f"scrape_configs:\n{jobs}" if jobs else "")
    )
    port = free_port()
    log_path = work / "prometheus.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
             "--storage.tsdb.retention.time=100y", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if requests.get(f"{url}/-/ready", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"prometheus did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            proc.wait(10)


def wait_for(url: str, promql: str, minimum: float, what: str, timeout_s: float = 60.0) -> None:
    """Poll until ``promql``'s first value reaches ``minimum`` (readiness, not a timed assertion)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = requests.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5)
        result = r.json()["data"]["result"] if r.status_code == 200 else []
        if result and float(result[0]["value"][1]) >= minimum:
            return
        time.sleep(0.3)
    pytest.fail(f"{what}: {promql} did not reach {minimum} within {timeout_s:.0f} s")
