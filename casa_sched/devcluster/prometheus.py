"""A real Prometheus server on loopback: for ``casa dev-cluster``, the tests and the benchmarks.

One implementation of three things the local stacks need from Prometheus:

- :func:`openmetrics` and :func:`backfill`: history written as OpenMetrics text and loaded into a
  TSDB with ``promtool tsdb create-blocks-from openmetrics`` (timestamps in seconds, ``# EOF``
  last, one family per metric name). Every family is typed ``unknown``: OpenMetrics would demand
  a ``_total`` suffix on counters that OpenCensus-era Knative counters do not have, and Prometheus
  stores no types anyway.
- :class:`PrometheusServer`: ``prometheus`` on a loopback port over a data directory, scraping
  static ``{job: host:port}`` targets, every target file in :attr:`PrometheusServer.targets_dir`
  (``file_sd_configs``: a JSON file written there later is picked up without a restart, which is
  how :func:`casa_sched.devcluster.cluster.register_target` adds scrape targets to a running dev
  cluster) and evaluating rule files. It can be stopped and started again on the same port (an
  outage drill), and run detached (it outlives the process that started it).
- :func:`wait_for_value`: poll an instant query until it reaches a value (readiness, not timing).

The binaries are Debian's ``prometheus`` and ``promtool`` (``/usr/bin``; see
``.ci/system-deps.sh``), or whatever ``PATH`` finds. Standard library only.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from casa_sched.devcluster.controlplane import HarnessError, Process, free_port

Sample = tuple[str, Mapping[str, str], float, float]  # metric name, labels, unix time s, value
# ``{'name{label="v"}': {unix_s: value}}``: the same history keyed by series selector text.
SeriesMap = Mapping[str, Mapping[float, float]]

DEBIAN_BIN = Path("/usr/bin")


class PrometheusMissingError(HarnessError):
    """``prometheus`` or ``promtool`` is not installed."""


def find_tool(name: str) -> Path:
    """``prometheus`` or ``promtool``: ``PATH`` first, then Debian's ``/usr/bin``."""
    found = shutil.which(name) or (str(DEBIAN_BIN / name) if (DEBIAN_BIN / name).is_file() else None)
    if found is None:
        raise PrometheusMissingError(f"{name} not found on PATH nor in {DEBIAN_BIN}; install Debian's prometheus "
                                "package (.ci/system-deps.sh)")
    return Path(found)


def tools_missing() -> str | None:
    """Why the Prometheus tests cannot run here (a skip reason), or None."""
    try:
        find_tool("prometheus")
        find_tool("promtool")
    except PrometheusMissingError as exc:
        return str(exc)
    return None


def _value(v: float) -> str:
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v)


def openmetrics(samples: Iterable[Sample] | SeriesMap) -> str:
    """OpenMetrics text of ``samples`` (``(name, labels, t_s, value)`` tuples, or a
    :data:`SeriesMap`), grouped into one ``unknown`` family per metric name, ending in ``# EOF``."""
    families: dict[str, list[str]] = {}
    if isinstance(samples, Mapping):
        for selector, points in samples.items():
            name = selector.split("{", 1)[0]
            families.setdefault(name, []).extend(f"{selector} {_value(v)} {t:.3f}" for t, v in sorted(points.items()))
    else:
        for name, labels, t, v in samples:
            lab = ",".join(f'{k}="{val}"' for k, val in sorted(labels.items()))
            families.setdefault(name, []).append(f"{name}{{{lab}}} {_value(v)} {t:.3f}")
    lines: list[str] = []
    for name, rows in families.items():
        lines += [f"# TYPE {name} unknown", *rows]
    return "\n".join([*lines, "# EOF"]) + "\n"


def backfill(data_dir: Path, samples: Iterable[Sample] | SeriesMap) -> Path:
    """TSDB blocks under ``data_dir`` holding ``samples`` (``promtool``); returns ``data_dir``."""
    promtool = find_tool("promtool")
    data_dir.mkdir(parents=True, exist_ok=True)
    src = data_dir.parent / f"{data_dir.name}-history.om"
    src.write_text(openmetrics(samples))
    done = subprocess.run([str(promtool), "tsdb", "create-blocks-from", "openmetrics", str(src), str(data_dir)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise HarnessError(f"promtool backfill failed: {done.stdout[-1500:]} {done.stderr[-1500:]}")
    return data_dir


def duration(seconds: float) -> str:
    """``seconds`` as a Prometheus duration: whole seconds (``5s``), else whole milliseconds
    (``500ms``, ``1500ms``); Prometheus refuses fractions such as ``0.5s``. Raises
    ValueError for anything that is not a positive whole number of milliseconds."""
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a Prometheus duration must be a positive number of seconds, got {seconds!r}")
    ms = round(seconds * 1000.0)
    if ms < 1 or abs(ms - seconds * 1000.0) > 1e-6 * max(1.0, ms):
        raise ValueError(f"a Prometheus duration is a whole number of milliseconds, got {seconds!r} s")
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _get(url: str, timeout_s: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), b""
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, b""


def query(url: str, promql: str, timeout_s: float = 5.0) -> list[dict[str, Any]]:
    """The ``result`` list of an instant query (empty when Prometheus does not answer 200)."""
    code, body = _get(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}", timeout_s)
    if code != 200:
        return []
    result: list[dict[str, Any]] = json.loads(body)["data"]["result"]
    return result


def wait_for_value(url: str, promql: str, minimum: float, what: str, timeout_s: float = 60.0) -> float:
    """Poll until ``promql``'s first value reaches ``minimum``; returns it. Raises
    :class:`HarnessError` naming ``what`` on timeout (readiness, not a timed assertion)."""
    deadline = time.monotonic() + timeout_s
    last: float | None = None
    while time.monotonic() < deadline:
        result = query(url, promql)
        if result:
            last = float(result[0]["value"][1])
            if last >= minimum:
                return last
        time.sleep(0.3)
    raise HarnessError(f"{what}: {promql} did not reach {minimum} within {timeout_s:.0f} s (last: {last})")


@dataclass
class PrometheusServer:
    """``prometheus`` on ``127.0.0.1:port`` with its config, data and log under ``work``.

    ``scrape_targets`` are ``{job: "host:port"}`` scraped at ``/metrics``; every ``*.json`` file
    in :attr:`targets_dir` (Prometheus ``file_sd`` format) is scraped too. ``port`` 0 picks a free
    port at the first :meth:`start`; later starts reuse it.
    """

    work: Path
    port: int = 0
    scrape_targets: Mapping[str, str] = field(default_factory=dict)
    rule_files: tuple[Path, ...] = ()
    scrape_interval_s: float = 1.0
    retention: str = "100y"
    detach: bool = False
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.work / "data"

    @property
    def targets_dir(self) -> Path:
        return self.work / "targets"

    @property
    def config_path(self) -> Path:
        return self.work / "prometheus.yml"

    def write_config(self) -> Path:
        interval = duration(self.scrape_interval_s)
        jobs: list[dict[str, Any]] = [
            {"job_name": job, "static_configs": [{"targets": [target]}]} for job, target in self.scrape_targets.items()
        ]
        jobs.append({"job_name": "registered", "file_sd_configs": [
            {"files": [str(self.targets_dir / "*.json")], "refresh_interval": interval}]})
        config: dict[str, Any] = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "scrape_configs": jobs,
        }
        if self.rule_files:
            config["rule_files"] = [str(p) for p in self.rule_files]
        self.work.mkdir(parents=True, exist_ok=True)
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(config, indent=1) + "\n")  # YAML is a superset of JSON
        return self.config_path

    def argv(self) -> list[str]:
        return [
            str(find_tool("prometheus")),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]

    def start(self, timeout_s: float = 60.0) -> PrometheusServer:
        """Start it and wait until ``/-/ready`` answers; raises :class:`HarnessError` if it does not."""
        if self.process is not None and self.process.alive():
            raise HarnessError(f"prometheus is already running (pid {self.process.pid})")
        if self.port == 0:
            self.port = free_port()
        self.write_config()
        self.process = proc = Process("prometheus", self.argv(), self.work, detach=self.detach)
        deadline = time.monotonic() + timeout_s
        while _get(f"{self.url}/-/ready")[0] != 200:
            if not proc.alive() or time.monotonic() > deadline:
                tail = proc.log_tail(2000)
                self.stop()
                raise HarnessError(f"prometheus did not become ready on {self.url}:\n{tail}")
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout_s=20.0)
        self.process = None

    def __enter__(self) -> PrometheusServer:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def write_target(self, job: str, target: str, labels: Mapping[str, str] | None = None) -> Path:
        """Add ``target`` (``host:port``) as job ``job``: a ``file_sd`` file in :attr:`targets_dir`,
        written atomically; Prometheus picks it up within a scrape interval."""
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        path = self.targets_dir / f"{job}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps([{"targets": [target], "labels": {"job": job, **(labels or {})}}]))
        tmp.replace(path)
        return path


def backfilled_server(work: Path, samples: Iterable[Sample] | SeriesMap, **kwargs: Any) -> PrometheusServer:
    """Backfill ``samples`` under ``work/data`` and start a :class:`PrometheusServer` over them."""
    server = PrometheusServer(work, **kwargs)
    backfill(server.data_dir, samples)
    return server.start()
