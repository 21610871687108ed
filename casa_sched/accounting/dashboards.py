"""The casa-sched Grafana dashboard, generated: panels as data, rendered to Grafana JSON and to a
ConfigMap for Grafana's dashboard provisioning (sidecar label ``grafana_dashboard: "1"``).

``casa dashboard generate --out manifests/grafana`` writes the checked-in files; a test
regenerates them and compares, and another runs every panel's query on a real Prometheus.
Each query names the component that fills its metrics (``filled_by``), as README "Metrics" does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from casa_sched.outputs import OutputSet

Filler = Literal["accounting", "signals", "extender", "autoscaler"]

DASHBOARD_UID = "casa-sched"
DEFAULT_RANGE = "6h"  # the time range the dashboard opens on (and `casa dashboard render` draws)
CSTR_DEFAULT = 0.05  # slo.cstr's default (paper §VI.A): drawn as the SLO panel's threshold line


@dataclass(frozen=True)
class Query:
    """One PromQL target: its expression, legend and the component whose metrics it reads;
    ``by`` lists the labels every returned series must carry (the expected shape)."""

    expr: str
    legend: str
    filled_by: Filler
    by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    queries: tuple[Query, ...]
    description: str = ""
    threshold: float | None = None


PANELS: tuple[Panel, ...] = (
    Panel("Carbon emitted", "massg", (
        Query("casa_carbon_grams_total", "cumulative gCO2eq", "accounting"),
    ), "Operational carbon since the accounting started, eq. (4)."),
    Panel("Carbon rate and carbon intensity", "short", (
        Query("3600 * rate(casa_carbon_grams_total[5m])", "carbon rate, g/h", "accounting"),
        Query("casa_carbon_intensity_grams_per_kwh", "carbon intensity, g/kWh", "signals"),
    ), "The cluster's carbon rate beside the grid's CI_h: shifting load to low-CI hours shows as the two diverging."),
    Panel("Power (IT + cooling)", "watt", (
        Query("rate(casa_energy_joules_total[5m])", "IT + cooling, W", "accounting"),
    ), "Energy per second, eqs. (1), (3)."),
    Panel("Energy", "kwatth", (
        Query("casa_energy_joules_total / 3.6e6", "cumulative kWh", "accounting"),
    )),
    Panel("Cost", "currencyUSD", (
        Query("3600 * rate(casa_energy_cost_dollars_total[5m])", "USD/h", "accounting"),
        Query("casa_energy_price_dollars_per_kwh", "price, USD/kWh", "signals"),
    ), "Electricity and water cost rate, eq. (5), beside the price EP_h."),
    Panel("Power per node", "watt", (
        Query("casa_node_power_watts", "{{node}} ({{source}})", "accounting", ("node", "source")),
    ), "Measured where a meter exists (source ipmi | kepler | rapl), else the node's eq. (2) model."),
    Panel("SLO violation rate per function", "percentunit", (
        Query("sum by (function) (rate(casa_slo_violations_total[15m]))"
              " / sum by (function) (rate(casa_function_requests_total[15m])) >= 0",
              "{{function}}", "accounting", ("function",)),
    ), "SL_f over the last 15 minutes (eq. 7; functions without requests left out); the red line is Cstr.", threshold=CSTR_DEFAULT),
    Panel("SLO: SL_ave and the request-weighted rate", "percentunit", (
        Query("avg(sum by (function) (rate(casa_slo_violations_total[15m]))"
              " / sum by (function) (rate(casa_function_requests_total[15m])) >= 0)", "SL_ave", "accounting"),
        Query("sum(rate(casa_slo_violations_total[15m])) / sum(rate(casa_function_requests_total[15m])) >= 0",
              "violated share of all requests", "accounting"),
    ), "Over the last 15 minutes: SL_ave, the paper's objective (eq. 7, the mean over functions), beside the share "
       "of all requests that missed their deadline; the red line is Cstr.", threshold=CSTR_DEFAULT),
    Panel("Planned containers per node", "short", (
        Query("sum by (node) (casa_plan_containers)", "{{node}}", "extender", ("node",)),
    ), "Containers of the plan in use, per node."),
    Panel("Plan solve time", "s", (
        Query("histogram_quantile(0.9, sum by (le) (rate(casa_plan_solve_seconds_bucket[1h])))", "p90", "autoscaler"),
    ), "Wall-clock time of the planner per epoch."),
    Panel("Extender latency", "s", (
        Query("histogram_quantile(0.99, sum by (le, verb) (rate(casa_extender_request_seconds_bucket[5m])))",
              "p99 {{verb}}", "extender", ("verb",)),
    )),
    Panel("Extender fail-open rate", "reqps", (
        Query("sum by (reason) (rate(casa_extender_fail_open_total[5m]))", "{{reason}}", "extender", ("reason",)),
    ), "Calls answered with all nodes and neutral scores, by reason."),
    Panel("Autoscaler actions", "ops", (
        Query("sum by (kind, outcome) (rate(casa_autoscaler_actions_total[15m]))", "{{kind}} {{outcome}}",
              "autoscaler", ("kind", "outcome")),
    )),
    Panel("Resize outcomes", "ops", (
        Query("sum by (outcome) (rate(casa_autoscaler_resize_total[15m]))", "{{outcome}}", "autoscaler", ("outcome",)),
    ), "In-place resizes: applied, deferred, infeasible, error."),
)  # fmt: skip


def _panel_json(i: int, panel: Panel) -> dict[str, Any]:
    thresholds: list[dict[str, Any]] = [{"color": "green", "value": None}]
    custom: dict[str, Any] = {"lineWidth": 1, "fillOpacity": 10}
    if panel.threshold is not None:
        thresholds.append({"color": "red", "value": panel.threshold})
        custom["thresholdsStyle"] = {"mode": "line"}
    return {
        "id": i + 1,
        "type": "timeseries",
        "title": panel.title,
        "description": panel.description,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
        "fieldConfig": {
            "defaults": {
                "unit": panel.unit,
                "custom": custom,
                "thresholds": {"mode": "absolute", "steps": thresholds},
            },
            "overrides": [],
        },
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
        "targets": [
            {
                "refId": chr(ord("A") + j),
                "expr": q.expr,
                "legendFormat": q.legend,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
            }
            for j, q in enumerate(panel.queries)
        ],
    }


def dashboard() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (schema 39, Grafana 10/11)."""
    return {
        "uid": DASHBOARD_UID,
        "title": "casa-sched: carbon, energy, cost and SLO",
        "tags": ["casa-sched"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": f"now-{DEFAULT_RANGE}", "to": "now"},
        "templating": {
            "list": [{"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"}]
        },
        "panels": [_panel_json(i, p) for i, p in enumerate(PANELS)],
    }


def dashboard_json() -> str:
    return json.dumps(dashboard(), indent=2, sort_keys=True) + "\n"


def configmap_yaml() -> str:
    """A ConfigMap holding the dashboard, labelled for Grafana's provisioning sidecar."""
    body = "\n".join("    " + line if line else "" for line in dashboard_json().splitlines())
    return (
        "# Generated by `casa dashboard generate --out manifests/grafana`; do not edit by hand.\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: casa-grafana-dashboard\n  namespace: casa-system\n"
        '  labels:\n    grafana_dashboard: "1"\ndata:\n  casa-sched.json: |\n' + body + "\n"
    )


#: What ``casa dashboard generate`` writes: the dashboard and its provisioning ConfigMap.
FILES = ("casa-sched.json", "dashboard-configmap.yaml")


def write(out: Path) -> list[Path]:
    """Write ``casa-sched.json`` and ``dashboard-configmap.yaml`` into ``out``, as one set
    (:class:`~casa_sched.outputs.OutputSet`: both replace their previous versions or neither)."""
    files = dict(zip((out / name for name in FILES), (dashboard_json(), configmap_yaml()), strict=True))
    with OutputSet() as files_out:
        for path, text in files.items():
            files_out.write_text(path, text)
    return list(files)
