"""Writing a run's results: one table, a per-epoch CSV, a JSON summary and PNG plots."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table

from casa_sched.experiments.runner import PolicyRun
from casa_sched.outputs import OutputSet, json_text

SUMMARY_KEYS = (
    "carbon_g", "energy_kwh", "cost_usd", "slo_violation_rate", "request_violation_rate", "epochs_meeting_cstr",
    "load", "plan_seconds_mean",
)  # fmt: skip

# The table's columns: short headers so that it fits an 80-column terminal; TABLE_UNITS explains
# them in lines of under 80 characters, printed under the table.
_COLUMNS = ("policy", "carbon", "energy", "cost", "SL_ave", "SL_req", "≤Cstr", "load", "plan")
TABLE_UNITS = (
    "units: carbon g CO2eq · energy kWh · cost $ · plan s (mean per epoch)",
    "SL_ave: mean SLO violation ratio over functions (eq. 7, the paper's metric)",
    "SL_req: violated share of all requests (each violation is a dropped request)",
    "≤Cstr: epochs with SL_ave ≤ Cstr · load: mean node CPU use",
)
#: The policy the closing comparison lines measure the others against.
REFERENCE_POLICY = "casa"


def summary(runs: Mapping[str, PolicyRun]) -> dict[str, dict[str, float]]:
    """Per policy: the JSON summary's keys (``casa simulate --json``) and a few more counts."""
    return {name: run.summary() for name, run in runs.items()}


def summary_table(result: Mapping[str, Mapping[str, float]], meta: Mapping[str, Any], epochs: int) -> Table:
    """One row per policy (``result`` is :func:`summary`'s) under the run's N, R, Cstr, length and
    node power management (``meta["sleep_empty_nodes"]``); the workload is ``meta["workload"]``
    (print it above), the units :data:`TABLE_UNITS`."""
    title = f"N={meta['nodes']} · R={meta['intensity']:g}x · Cstr={meta['cstr']:.0%} · {epochs} epochs"
    if meta.get("sleep_empty_nodes"):
        title += " · empty nodes sleep"
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)
    for col in _COLUMNS:
        table.add_column(col, justify="left" if col == "policy" else "right", no_wrap=True)
    for name, s in result.items():
        table.add_row(
            name, f"{s['carbon_g']:.1f}", f"{s['energy_kwh']:.3f}", f"{s['cost_usd']:.4f}",
            f"{s['slo_violation_rate']:.2%}", f"{s['request_violation_rate']:.2%}",
            f"{int(s['epochs_meeting_cstr'])}/{epochs}", f"{s['load']:.1%}", f"{s['plan_seconds_mean']:.2f}",
        )  # fmt: skip
    return table


def comparison_lines(result: Mapping[str, Mapping[str, float]], epochs: int) -> list[str]:
    """One line per baseline against :data:`REFERENCE_POLICY` (else the first policy): the epochs
    each met Cstr in and their carbon ratio, e.g. ``casa met Cstr in 16/16 epochs; score 15/16;
    carbon 1.41x less than score``. Empty with a single policy."""
    if not result:
        return []
    ref = REFERENCE_POLICY if REFERENCE_POLICY in result else next(iter(result))
    mine = result[ref]
    lines = []
    for name, s in result.items():
        if name == ref:
            continue
        ours, theirs = mine["carbon_g"], s["carbon_g"]
        if ours == theirs:
            carbon = f"carbon equal to {name}"
        elif ours <= 0 or theirs <= 0:
            carbon = f"carbon {ours:.1f} g against {name}'s {theirs:.1f} g"
        elif ours < theirs:
            carbon = f"carbon {theirs / ours:.2f}x less than {name}"
        else:
            carbon = f"carbon {ours / theirs:.2f}x more than {name}"
        lines.append(
            f"{ref} met Cstr in {int(mine['epochs_meeting_cstr'])}/{epochs} epochs; "
            f"{name} {int(s['epochs_meeting_cstr'])}/{epochs}; {carbon}"
        )
    return lines


def time_bound_notes(result: Mapping[str, Mapping[str, float]], epochs: int, time_budget_s: float | None) -> list[str]:
    """One line per policy whose search the wall clock ended (so its numbers depend on the machine);
    ``time_budget_s`` None: the budget was derived per epoch from the problem size."""
    budget = "derived" if time_budget_s is None else f"{time_budget_s:g} s"
    return [
        f"{name}: the {budget} planning budget, not planner.gen, ended the search in "
        f"{int(s['plan_epochs_time_bound'])}/{epochs} epochs, so these numbers depend on this machine's speed "
        "and load; for a reproducible run raise --time-budget until this note goes away (or lower planner.gen)."
        for name, s in result.items()
        if s["plan_epochs_time_bound"]
    ]


#: The files of one run's output set, in ``--out``.
OUTPUT_FILES = ("summary.json", "epochs.csv", "carbon_by_epoch.png", "slo_by_epoch.png")


def write_outputs(runs: Mapping[str, PolicyRun], out_dir: Path, meta: Mapping[str, Any]) -> list[Path]:
    """``summary.json``, ``epochs.csv`` and two PNG plots in ``out_dir``, as one set: each is written
    to a temporary file first and all replace their previous versions only once every one is
    written (:class:`casa_sched.outputs.OutputSet`), so a failed run leaves the previous set
    intact. JSON is strict: a NaN or infinite figure is refused (ValueError), not written."""
    text = json_text({"meta": dict(meta), "policies": summary(runs)}, indent=2, sort_keys=True)
    with OutputSet() as out:
        out.write_text(out_dir / "summary.json", text)
        out.write_text(out_dir / "epochs.csv", _epochs_csv(runs))
        _plots(runs, out_dir, out.temp_path)
    return out.paths


def _epochs_csv(runs: Mapping[str, PolicyRun]) -> str:
    fh = io.StringIO(newline="")
    writer = csv.writer(fh)
    header = [
        "policy", "epoch", "requests", "dropped", "slo_violation_rate", "request_violation_rate", "carbon_g",
        "energy_kwh", "cost_usd", "water_l", "load", "cold_starts", "on_demand_starts", "autoscale_grows",
        "containers", "plan_seconds",
    ]  # fmt: skip
    writer.writerow(header)
    for name, run in runs.items():
        assert run.result is not None
        for e, secs in zip(run.result.epochs, run.plan_seconds, strict=True):
            writer.writerow([
                name, e.epoch, e.requests, e.dropped, f"{e.slo_violation_rate:.6f}", f"{e.request_violation_rate:.6f}",
                f"{e.carbon_g:.4f}", f"{e.energy_kwh:.6f}", f"{e.cost_usd:.6f}", f"{e.accounting.water_l:.4f}",
                f"{e.load:.6f}",
                e.cold_starts, e.on_demand_starts, e.autoscale_grows, e.containers, f"{secs:.4f}",
            ])  # fmt: skip
    return fh.getvalue()


def _plots(runs: Mapping[str, PolicyRun], out_dir: Path, target: Callable[[Path], Path]) -> None:
    """The two per-epoch plots, each saved to ``target(final path)`` (a temporary file of the set)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for key, label, fname in (
        ("carbon_g", "carbon per epoch (gCO2eq)", "carbon_by_epoch.png"),
        ("slo_violation_rate", "SL_ave (solid), SL_req (dashed)", "slo_by_epoch.png"),
    ):
        fig, ax = plt.subplots(figsize=(8, 4))
        for name, run in runs.items():
            assert run.result is not None
            xs = [e.epoch for e in run.result.epochs]
            ys = [e.carbon_g if key == "carbon_g" else e.slo_violation_rate for e in run.result.epochs]
            (line,) = ax.plot(xs, ys, marker="o", markersize=3, label=name)
            if key == "slo_violation_rate":  # the request-weighted rate beside SL_ave, same colour
                ax.plot(xs, [e.request_violation_rate for e in run.result.epochs], linestyle="--",
                        color=line.get_color())  # fmt: skip
        ax.set_xlabel("epoch (15 min)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = target(out_dir / fname)
        fig.savefig(path, dpi=120, format="png")
        plt.close(fig)
