"""The Grafana dashboard drawn to PNG with matplotlib, for people without Grafana.

The panels, their PromQL, legends, units and the Cstr threshold are the dashboard's own
(:data:`~casa_sched.accounting.dashboards.PANELS`, the definition ``manifests/grafana/`` is
generated from); each query runs as a Prometheus range query through the project's one client
(:class:`~casa_sched.metricsources.base.PromClient`). :func:`fetch` does the I/O, :func:`draw`
only draws what was fetched, and :func:`render` writes one PNG per panel and one of the whole
dashboard (laid out by the panels' ``gridPos``) as one atomic set (:class:`~casa_sched.outputs.OutputSet`).

Like Grafana, a series is broken where samples are missing (no line across a gap longer than
1.5 steps), a panel whose queries return nothing says "No data", and ``{{label}}`` in a legend
is the series' label value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from casa_sched._typing import FloatArray
from casa_sched.accounting.dashboards import DASHBOARD_UID, PANELS, Panel, dashboard
from casa_sched.metricsources.base import PromClient
from casa_sched.outputs import OutputSet

if TYPE_CHECKING:
    from matplotlib.axes import Axes

MAX_POINTS = 11_000  # Prometheus refuses range queries of more points per series
LEGEND_MAX = 8  # series named in a panel's legend
POINTS_PER_PANEL = 720  # default resolution: about one point per pixel of a panel, as Grafana's maxDataPoints
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0}
# Grafana unit id -> the y axis' label (the value formatting of percentunit is a percent axis)
UNIT_LABELS = {
    "massg": "g",
    "watt": "W",
    "kwatth": "kWh",
    "currencyUSD": "USD",
    "percentunit": "%",
    "s": "s",
    "reqps": "requests/s",
    "ops": "operations/s",
    "short": "",
}


@dataclass(frozen=True)
class Window:
    """The time range of every range query, with its resolution step."""

    start: datetime
    end: datetime
    step_s: int

    @classmethod
    def of(cls, start: datetime, end: datetime, step_s: int | None = None) -> Window:
        """A checked window; ``step_s`` unset: the range over :data:`POINTS_PER_PANEL`, at least 1 s."""
        span_s = (end - start).total_seconds()
        if not span_s > 0:
            raise ValueError(f"the range must end after it starts: {start.isoformat()} .. {end.isoformat()}")
        step = step_s if step_s is not None else max(1, math.ceil(span_s / POINTS_PER_PANEL))
        if step < 1:
            raise ValueError(f"--step must be at least 1 s, got {step}")
        if span_s / step + 1 > MAX_POINTS:
            raise ValueError(
                f"--step {step} s gives {span_s / step + 1:.0f} points over the range; Prometheus allows {MAX_POINTS}"
            )
        return cls(start, end, step)


def duration_s(text: str) -> float:
    """A Prometheus duration (``90s``, ``30m``, ``6h``, ``1h30m``, ``2d``) in seconds; ValueError otherwise."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"expected a duration such as 30m, 6h or 1h30m, got {text!r}")
    seconds = sum(int(n) * _UNIT_S[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"expected a duration above zero, got {text!r}")
    return seconds


def timestamp(text: str) -> datetime:
    """ISO 8601 (UTC when no offset is given) or Unix seconds, as an aware UTC datetime."""
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except (ValueError, OverflowError, OSError):
        pass
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expected an ISO 8601 time (e.g. 2026-12-03T06:00Z) or Unix seconds, got {text!r}") from None
    try:
        return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is out of the range of dates") from None


@dataclass(frozen=True)
class Series:
    legend: str
    t_unix_s: FloatArray
    values: FloatArray  # NaN where Prometheus gave NaN or ±Inf


@dataclass(frozen=True)
class PanelData:
    panel: Panel
    series: tuple[Series, ...]


def legend_text(template: str, labels: Mapping[str, str]) -> str:
    """Grafana's legend format: ``{{name}}`` is the series' label ``name`` (empty when absent)."""
    text = re.sub(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)
    return text or "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _series(item: Mapping[str, Any], template: str) -> Series:
    rows = item.get("values") or []
    t = np.array([float(r[0]) for r in rows], dtype=np.float64)
    v = np.array([float(r[1]) for r in rows], dtype=np.float64)  # "NaN", "+Inf" parse as floats
    v[~np.isfinite(v)] = np.nan
    return Series(legend_text(template, dict(item.get("metric") or {})), t, v)


def fetch(client: PromClient, panels: Sequence[Panel], window: Window) -> list[PanelData]:
    """Every query of every panel over ``window``, in the panels' order (raises MetricsUnavailable)."""
    out: list[PanelData] = []
    for panel in panels:
        series: list[Series] = []
        for q in panel.queries:
            matrix = client.range(q.expr, window.start, window.end, window.step_s)
            series += sorted((_series(item, q.legend) for item in matrix), key=lambda s: s.legend)
        out.append(PanelData(panel, tuple(series)))
    return out


def _broken(s: Series, step_s: int) -> tuple[FloatArray, FloatArray]:
    """The series with a NaN inserted in every gap longer than 1.5 steps (no line across it)."""
    if s.t_unix_s.size < 2:
        return s.t_unix_s, s.values
    gaps = np.flatnonzero(np.diff(s.t_unix_s) > 1.5 * step_s) + 1
    t = np.insert(s.t_unix_s, gaps, s.t_unix_s[gaps - 1] + step_s)
    v = np.insert(s.values, gaps, np.nan)
    return t, v


def draw(ax: Axes, data: PanelData, window: Window) -> None:
    """One panel on ``ax``: its series as lines over the window, its unit, threshold and legend."""
    import matplotlib.dates as mdates
    from matplotlib.ticker import PercentFormatter

    panel = data.panel
    ax.set_title(panel.title, fontsize=10, loc="left")
    ax.set_xlim(window.start, window.end)  # type: ignore[arg-type]  # matplotlib converts datetimes
    locator = mdates.AutoDateLocator(tz=UTC)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))  # type: ignore[no-untyped-call]
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=8)
    if panel.unit == "percentunit":
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    elif UNIT_LABELS.get(panel.unit, panel.unit):
        ax.set_ylabel(UNIT_LABELS.get(panel.unit, panel.unit), fontsize=8)
    shown_series = [s for s in data.series if np.isfinite(s.values).any()]
    # the legend names the LEGEND_MAX series with the highest peaks (a PNG cannot scroll a legend)
    peaks = sorted(shown_series, key=lambda s: -float(np.nanmax(s.values)))
    named = {id(s) for s in peaks[:LEGEND_MAX]}
    for s in shown_series:
        t, v = _broken(s, window.step_s)
        times = [datetime.fromtimestamp(x, UTC) for x in t]
        label = s.legend if id(s) in named else "_nolegend_"
        ax.plot(times, v, linewidth=1.2, label=label)  # type: ignore[arg-type]
    if len(shown_series) > LEGEND_MAX:
        ax.plot([], [], " ", label=f"(+{len(shown_series) - LEGEND_MAX} more series)")
    if panel.threshold is not None:
        value = f"{panel.threshold:.0%}" if panel.unit == "percentunit" else f"{panel.threshold:g}"
        ax.axhline(panel.threshold, color="red", linestyle="--", linewidth=1.0, label=f"threshold {value}")
    if not shown_series:
        ax.text(0.5, 0.5, "No data", transform=ax.transAxes, ha="center", va="center", fontsize=12, color="grey")
        ax.set_yticks([])
    if shown_series or panel.threshold is not None:
        ax.legend(fontsize=7, loc="upper left", ncol=2 if len(shown_series) > 4 else 1)


def panel_file(index: int, panel: Panel) -> str:
    """``casa-sched-01-carbon-emitted.png``: the dashboard's uid, the panel's position and title."""
    slug = re.sub(r"[^a-z0-9]+", "-", panel.title.lower()).strip("-")
    return f"{DASHBOARD_UID}-{index + 1:02d}-{slug}.png"


def output_names(panels: Sequence[Panel] = PANELS) -> list[str]:
    """Every file :func:`render` writes: the dashboard's PNG, then one per panel."""
    return [f"{DASHBOARD_UID}.png", *(panel_file(i, p) for i, p in enumerate(panels))]


def render(data: Sequence[PanelData], window: Window, out: Path, dpi: int = 100) -> list[Path]:
    """Draw the dashboard and each panel into ``out`` (all files or none); returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = {p["title"]: p["gridPos"] for p in dashboard()["panels"]}
    rows = max(g["y"] + g["h"] for g in grid.values()) // 8
    title = dashboard()["title"]
    span = f"{window.start:%Y-%m-%d %H:%M} .. {window.end:%Y-%m-%d %H:%M} UTC, step {window.step_s} s"
    with OutputSet() as outputs:

        def save(fig: Any, name: str) -> None:
            fig.savefig(outputs.temp_path(out / name), dpi=dpi, format="png")
            plt.close(fig)

        height_in = 3.2 * rows
        fig = plt.figure(figsize=(16, height_in))
        spec = fig.add_gridspec(rows, 2)
        for d in data:
            g = grid[d.panel.title]
            y, h = g["y"] // 8, max(1, g["h"] // 8)
            x, w = g["x"] // 12, max(1, g["w"] // 12)
            draw(fig.add_subplot(spec[y : y + h, x : x + w]), d, window)
        fig.suptitle(f"{title}\n{span}", fontsize=12)
        fig.tight_layout(rect=(0.0, 0.0, 1.0, 1.0 - 0.7 / height_in))  # 0.7 in for the title
        save(fig, f"{DASHBOARD_UID}.png")
        for i, d in enumerate(data):
            fig, ax = plt.subplots(figsize=(8, 4))
            draw(ax, d, window)
            ax.set_title(span, fontsize=7, loc="right", color="grey")
            fig.tight_layout()
            save(fig, panel_file(i, d.panel))
    return outputs.paths


def empty_panels(data: Sequence[PanelData]) -> list[str]:
    """Titles of the panels whose queries returned no finite value."""
    return [d.panel.title for d in data if not any(np.isfinite(s.values).any() for s in d.series)]


def draw_dashboard(client: PromClient, window: Window, out: Path) -> tuple[list[Path], list[str]]:
    """``casa dashboard render`` once its inputs are checked: check that ``client`` reaches a
    Prometheus (before any panel query), fetch every panel over ``window``, write the PNGs into
    ``out``; returns the paths (the dashboard first) and the titles of the panels without data.
    Raises :class:`~casa_sched.metricsources.base.MetricsUnavailable` (Prometheus) or OSError."""
    client.instant("vector(1)")
    data = fetch(client, PANELS, window)
    return render(data, window, out), empty_panels(data)
