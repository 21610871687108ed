"""The Grafana dashboard: regenerated equals checked in; every query names declared metrics; and
every query of the accounting, signal and extender panels returns data of the expected shape on a
real Prometheus scraping the real exporters (the live accountant, a real ``casa extender``).

The autoscaler's panels (plan solve time, actions, resizes) need the live autoscaler, which these
tests do not run; for them only the metric names are checked against ``casa_sched/metrics.py``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import yaml
from matplotlib.image import imread
from prometheus_api_client import PrometheusConnect
from prometheus_client import start_http_server

from casa_sched.accounting import LiveAccountant
from casa_sched.accounting.dashboards import PANELS, Query, write
from casa_sched.accounting.live import prometheus_query
from casa_sched.accounting.render import Window, empty_panels, fetch, output_names
from casa_sched.autoscaler.epoch_signals import SignalReader
from casa_sched.cli.main import main
from casa_sched.devcluster import payloads
from casa_sched.devcluster.controlplane import free_port
from casa_sched.devcluster.prometheus import PrometheusServer, backfill
from casa_sched.devcluster.prometheus import wait_for_value as wait_for
from casa_sched.metrics import CasaMetrics
from casa_sched.metricsources.base import PromClient
from casa_sched.settings import CasaSettings
from tests.observability.test_live_accounting import LINEAR_CURVE, T0, _history, needs_prometheus

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "manifests" / "grafana"
RULES = ROOT / "manifests" / "prometheus" / "rules.yml"
QUERIES = [(p.title, q) for p in PANELS for q in p.queries]
METRIC = re.compile(r"\bcasa[_:][a-z0-9_:]+")
RULE_GROUPS = yaml.safe_load(RULES.read_text())["groups"]
RECORDED = {r["record"] for g in RULE_GROUPS for r in g["rules"] if "record" in r}


def test_regenerated_files_equal_the_checked_in_ones(tmp_path: Path) -> None:
    for path in write(tmp_path):
        assert path.read_text() == (GRAFANA / path.name).read_text(), f"run `casa dashboard generate`: {path.name}"


def test_configmap_is_provisioned_and_holds_the_dashboard() -> None:
    cm = yaml.safe_load((GRAFANA / "dashboard-configmap.yaml").read_text())
    assert cm["kind"] == "ConfigMap"
    assert cm["metadata"]["labels"] == {"grafana_dashboard": "1"}
    assert json.loads(cm["data"]["casa-sched.json"]) == json.loads((GRAFANA / "casa-sched.json").read_text())


def _declared() -> set[str]:
    names = set(RECORDED)  # the recording rules' own series
    for family in CasaMetrics().registry.collect():
        names |= {family.name, *(family.name + s for s in ("_total", "_bucket", "_sum", "_count"))}
    return names


@pytest.mark.parametrize(
    "expr",
    [pytest.param(q.expr, id=f"panel:{t}:{q.legend}") for t, q in QUERIES]
    + [pytest.param(r["expr"], id=f"rule:{r.get('alert', r.get('record'))}")
       for g in RULE_GROUPS for r in g["rules"]],
)  # fmt: skip
def test_queries_name_only_declared_metrics(expr: str) -> None:
    used = set(METRIC.findall(expr))
    assert used, expr
    assert used <= _declared(), f"not declared in casa_sched/metrics.py: {sorted(used - _declared())}"


def call_extender(base: str) -> None:
    """One filter and one prioritize call of a function pod over three nodes."""
    nodes = [payloads.real_node("n1"), payloads.real_node("n2"), payloads.real_node("n3")]
    for verb in ("filter", "prioritize"):
        r = requests.post(f"{base}/{verb}", json=payloads.args_nodes(payloads.real_pod(), nodes), timeout=5)
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def live_prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prometheus holding the backfilled cAdvisor/meter/latency history and scraping the live
    accountant's exporter (ticked over that history) and a real ``casa extender`` with a plan."""
    work = tmp_path_factory.mktemp("prom-dashboards")
    backfill(work / "data", _history())
    metrics = CasaMetrics()
    exporter_port = free_port()
    server, _thread = start_http_server(exporter_port, addr="127.0.0.1", registry=metrics.registry)
    plan = work / "plan.json"
    plan.write_text(payloads.plan_doc({"thumbnail": ["n1", "n2"]}, epoch_start=datetime.now(UTC).isoformat()))
    ext_port = free_port()
    ext_log = (work / "extender.log").open("w")
    ext = subprocess.Popen(
        [str(Path(sys.executable).with_name("casa")), "extender", "--host", "127.0.0.1", "--port", str(ext_port),
         "--plan-file", str(plan)], stdout=ext_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    sim_port = free_port()
    sim_log = (work / "simulate.log").open("w")
    sim = subprocess.Popen(
        [str(Path(sys.executable).with_name("casa")), "simulate", "--serve-metrics", str(sim_port), "--speed", "300",
         "--epochs", "4", "--functions", "6", "--policies", "binpack", "--json", "--out", str(work / "sim")],
        stdout=subprocess.DEVNULL, stderr=sim_log,
    )  # fmt: skip
    targets = {
        "accounting": f"127.0.0.1:{exporter_port}",
        "extender": f"127.0.0.1:{ext_port}",
        "simulate": f"127.0.0.1:{sim_port}",
    }
    try:
        with PrometheusServer(work, scrape_targets=targets, rule_files=(RULES,)) as prom:
            url = prom.url
            base = f"http://127.0.0.1:{ext_port}"
            for _ in range(600):  # the extender is up once it answers /readyz
                try:
                    if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if ext.poll() is not None:
                    pytest.fail(f"casa extender exited: {(work / 'extender.log').read_text()[-2000:]}")
                time.sleep(0.1)
            call_extender(base)  # creates the per-verb series ...
            settings = CasaSettings()
            acc = LiveAccountant(settings, metrics, prometheus_query(url), SignalReader(settings, metrics),
                                 {"n2": LINEAR_CURVE}, t_ave_s={"f": 0.040})  # fmt: skip
            acc.tick(T0)
            for k in range(1, 5):  # each tick's totals scraped before the next: rate() sees them rise
                acc.tick(T0 + 60.0 * k)
                carbon = metrics.registry.get_sample_value("casa_carbon_grams_total") or 0.0
                wait_for(url, 'casa_carbon_grams_total{job="accounting"}', carbon * 0.999999, "accounting scraped")
            # ... scraped before the second calls, so rate() of its counters sees calls arrive
            wait_for(url, 'count_over_time(casa_extender_requests_total{verb="prioritize"}[1m])', 2, "extender scraped")
            call_extender(base)
            wait_for(url, 'count(casa_extender_requests_total{code="200"} > 0)', 2, "extender calls scraped")
            wait_for(url, 'sum(casa_extender_requests_total{verb="prioritize"})', 2, "second extender calls scraped")
            wait_for(
                url, 'count_over_time(casa_carbon_grams_total{job="accounting"}[5m])', 8, "enough samples for rate()"
            )
            wait_for(url, 'casa_plan_epoch{job="simulate"}', 3, "casa simulate --serve-metrics served its last epoch")
            yield url
    finally:
        for proc in (ext, sim):
            proc.terminate()
            proc.wait(10)
        ext_log.close()
        sim_log.close()
        server.shutdown()
        server.server_close()


@pytest.mark.prometheus
@needs_prometheus
@pytest.mark.parametrize(
    "query", [pytest.param(q, id=f"{t}:{q.legend}") for t, q in QUERIES if q.filled_by != "autoscaler"]
)
def test_panel_query_returns_series_of_the_expected_shape(live_prom: str, query: Query) -> None:
    result = PrometheusConnect(url=live_prom).custom_query(query.expr)
    assert result, f"{query.expr} returned nothing: does {query.filled_by} export it?"
    for series in result:
        assert set(query.by) <= set(series["metric"]), f"{query.expr}: {series['metric']} lacks {query.by}"
        assert series["value"][1] not in ("NaN", "+Inf", "-Inf"), f"{query.expr}: {series}"


@pytest.mark.prometheus
@needs_prometheus
@pytest.mark.parametrize("job", ["accounting", "simulate"])
def test_accounting_panels_have_data_from_each_exporter(live_prom: str, job: str) -> None:
    """The live accountant and the simulated run both fill the carbon, energy, cost and SLO series."""
    client = PrometheusConnect(url=live_prom)
    for name in ("casa_carbon_grams_total", "casa_energy_joules_total", "casa_energy_cost_dollars_total"):
        result = client.custom_query(f'{name}{{job="{job}"}}')
        assert result, f"{job} does not export {name}"
        assert float(result[0]["value"][1]) > 0
    assert client.custom_query(f'casa_function_requests_total{{job="{job}"}} > 0'), job


@pytest.mark.prometheus
@needs_prometheus
@pytest.mark.parametrize("record", sorted(RECORDED))
def test_recording_rule_has_data(live_prom: str, record: str) -> None:
    """The shipped recording rules, evaluated by the same Prometheus, produce series."""
    wait_for(live_prom, f"count({record})", 1, f"recording rule {record}")


@pytest.mark.prometheus
@needs_prometheus
def test_render_draws_every_panel_from_the_range_queries(
    live_prom: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``casa dashboard render`` on the live Prometheus: one PNG per panel and one of the whole
    dashboard; each query's range result ends on the same values as the instant query at the
    window's end, and only the autoscaler's panels, which nothing here fills, have no data
    (the simulated run serves the plan solve time)."""
    end = datetime.now(UTC).replace(microsecond=0)
    time.sleep(2.0)  # every scrape that started before ``end`` is stored: range and instant queries see the same
    window = Window.of(end - timedelta(minutes=10), end, 5)
    client = PromClient(live_prom)
    data = fetch(client, PANELS, window)
    assert [d.panel for d in data] == list(PANELS)
    for panel in PANELS:
        for q in panel.queries:
            (one,) = fetch(client, [replace(panel, queries=(q,))], window)
            last = sorted(
                float(s.values[-1]) for s in one.series if s.t_unix_s.size and s.t_unix_s[-1] == end.timestamp()
            )
            now = client.instant(q.expr, end)
            assert last == pytest.approx(sorted(float(s["value"][1]) for s in now), nan_ok=True), (
                f"{panel.title}: {q.expr}"
            )
    no_data = {p.title for p in PANELS if all(q.filled_by == "autoscaler" for q in p.queries)} - {"Plan solve time"}
    assert set(empty_panels(data)) == no_data

    out = tmp_path / "png"
    with pytest.raises(SystemExit) as exit_info:
        main(["dashboard", "render", "--prometheus", live_prom, "--out", str(out), "--range", "10m"])
    assert exit_info.value.code == 0
    assert f"no data: {', '.join(p.title for p in PANELS if p.title in no_data)}" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(output_names())
    for name in output_names():
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert imread(out / output_names()[1]).shape[:2] == (400, 800)  # a panel: 8 x 4 in at 100 dpi
