"""The Prometheus meter against a real Prometheus server scraping a tiny exporter served here.

The exporter exposes node_exporter's and Kepler's joules counters rising at fixed powers; the
server scrapes it every second under two instance names (127.0.0.1 and localhost), so the
meter must also insist on one node's series.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from casa_profiler.meters import MeterError
from casa_profiler.meters.prometheus import PrometheusMeter
from casa_profiler.profile import measure_power

pytestmark = [
    pytest.mark.prometheus,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed (.ci/system-deps.sh)"),
]

POWERS_W = {
    "node_rapl_package_joules_total": 50.0,
    "node_rapl_dram_joules_total": 10.0,
    "kepler_node_cpu_joules_total": 70.0,
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Exporter(BaseHTTPRequestHandler):
    t0 = time.time()

    def do_GET(self) -> None:
        elapsed_s = time.time() - self.t0
        lines = []
        for metric, watts in POWERS_W.items():
            labels = (
                '{zone="package"}'
                if metric.startswith("kepler")
                else '{index="0",path="/sys/class/powercap/intel-rapl:0"}'
            )
            lines += [f"# TYPE {metric} counter", f"{metric}{labels} {watts * elapsed_s:.6f}"]
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Prom:
    url: str
    exporter_port: int


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prom]:
    exporter = ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    threading.Thread(target=exporter.serve_forever, daemon=True).start()
    eport = exporter.server_address[1]
    work = tmp_path_factory.mktemp("prom")
    (work / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: node\n    static_configs: [{{targets: ['127.0.0.1:{eport}', 'localhost:{eport}']}}]\n"
    )
    port = _free_port()
    log = (work / "prometheus.log").open("w")
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # ready, and at least 3 scrapes of each target stored
            try:
                r = requests.get(f"{url}/api/v1/query",
                                 params={"query": "min(count_over_time(node_rapl_package_joules_total[1m]))"}, timeout=2)  # fmt: skip
                result = r.json()["data"]["result"] if r.status_code == 200 else []
                if result and float(result[0]["value"][1]) >= 3:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"prometheus did not start scraping: {(work / 'prometheus.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield Prom(url, eport)
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
        exporter.shutdown()
        exporter.server_close()


@pytest.mark.parametrize(
    ("counter", "expected_w"),
    [
        pytest.param('node_rapl_package_joules_total{instance="127.0.0.1:%d"}', 50.0, id="node-exporter-package"),
        # package 50 W + dram 10 W: two selectors, summed
        pytest.param(('node_rapl_package_joules_total{instance="127.0.0.1:%d"}',
                      'node_rapl_dram_joules_total{instance="127.0.0.1:%d"}'), 60.0, id="node-exporter-package+dram"),
        pytest.param('kepler_node_cpu_joules_total{zone="package",instance="localhost:%d"}', 70.0, id="kepler"),
    ],
)  # fmt: skip
def test_rate_of_the_counter_is_the_power(prom, counter, expected_w):
    counters = [c % prom.exporter_port for c in ((counter,) if isinstance(counter, str) else counter)]
    meter = PrometheusMeter(prom.url, counters, window_s=3.0)
    # the counters rise linearly, so rate() over 3 s (≥ 2 scrapes at 1 s) is the power itself
    powers = measure_power(meter, samples=2, interval_s=0.5)
    assert powers == pytest.approx([expected_w] * 2, rel=0.05)


def test_a_selector_matching_two_nodes_is_refused(prom):
    with pytest.raises(MeterError, match=r"matches 2 instances .*select this node's"):
        PrometheusMeter(prom.url, "node_rapl_package_joules_total")


def test_a_window_shorter_than_two_scrapes_is_a_clear_error(prom):
    meter = PrometheusMeter(
        prom.url, f'node_rapl_package_joules_total{{instance="127.0.0.1:{prom.exporter_port}"}}', window_s=0.5
    )
    # 0.5 s holds at most one 1 s scrape: rate() is empty
    with pytest.raises(MeterError, match="fewer than two scrapes"):
        meter.power_w()


@pytest.mark.parametrize(
    ("url", "counter", "message"),
    [
        pytest.param(None, "no_such_joules_total", "has no series for no_such_joules_total", id="absent-metric"),
        pytest.param(None, "node_rapl_package_joules_total{", "failed: HTTP 400", id="bad-promql"),
        pytest.param("http://127.0.0.1:9", "x", "unreachable", id="no-server"),
        pytest.param(None, "x[5m]", "without a range", id="range-selector"),
    ],
)
def test_clear_errors(prom, url, counter, message):
    with pytest.raises(MeterError, match=message):
        PrometheusMeter(url or prom.url, counter)
