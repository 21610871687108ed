"""``casa forecast backtest``: every forecaster measured on a real trace, and what it does to CASA.

Two measurements per forecaster, on the same scenario (trace, R, N, signals, seed):

1. **Accuracy** against the trace itself. For each epoch e ≥ 1 the forecaster sees the trace's
   minutes before e and predicts e minute by minute. Over the (function, epoch) pairs where the
   prediction or the truth is non-zero: the MAE of epoch totals (requests per epoch), their sMAPE
   (mean of |p - a| / ((p + a) / 2), 0..200 %), the per-minute WAPE (Σ|p - a| / Σa over all
   function-minutes) and the shape distance (half the L1 distance between the normalised
   per-minute profiles, 0 = same shape, 1 = disjoint; pairs where both are non-zero). Epoch 0 is
   left out: no forecaster has any history there (each forecasts zero, as the runner does).
2. **Outcome**: the policy (CASA by default, paper §V) plans every epoch on that forecaster's
   forecast and the simulator replays the epoch's true requests; SL_ave, requests dropped and
   carbon are reported beside the oracle's (planning on the true counts, as the paper assumes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from casa_sched.experiments.runner import ORACLE, Scenario, run_policies
from casa_sched.forecasting import create as create_forecaster
from casa_sched.outputs import OutputSet, json_text
from casa_sched.settings import ForecastSettings

# a forecaster keeps CASA "close to the oracle" when SL_ave is at most this multiple of the oracle's ...
SL_RATIO_TARGET = 1.5
# ... and carbon within this share of it
CARBON_TARGET = 0.03


@dataclass(frozen=True)
class Accuracy:
    """Forecast errors over epochs 1.. of the scenario (see the module docstring)."""

    mae_total: float
    smape_total: float
    wape_minute: float
    shape_distance: float
    pairs: int


@dataclass(frozen=True)
class BacktestRow:
    forecaster: str
    accuracy: Accuracy
    outcome: dict[str, float]

    def ratio(self, oracle: BacktestRow, key: str) -> float:
        base = oracle.outcome[key]
        return self.outcome[key] / base if base > 0 else float("inf") if self.outcome[key] > 0 else 1.0


def accuracy(scenario: Scenario) -> Accuracy:
    """Errors of ``scenario``'s forecast against its trace over epochs 1 .. epochs - 1."""
    m = scenario.epoch_minutes
    abs_err, smapes, shape, actual_sum, minute_err = [], [], [], 0.0, 0.0
    for e in range(1, scenario.epochs):
        predicted = scenario.forecast_for(e).counts
        actual = scenario.workload.counts[:, e * m : (e + 1) * m].astype(np.float64)
        p, a = predicted.sum(axis=1), actual.sum(axis=1)
        live = (p > 0) | (a > 0)
        abs_err.append(np.abs(p - a)[live])
        smapes.append(np.abs(p - a)[live] / ((p + a)[live] / 2.0))
        both = (p > 0) & (a > 0)
        shape.append(0.5 * np.abs(predicted[both] / p[both, None] - actual[both] / a[both, None]).sum(axis=1))
        actual_sum += float(a.sum())
        minute_err += float(np.abs(predicted - actual).sum())
    errs, sm, sh = (np.concatenate(x) if x else np.zeros(0) for x in (abs_err, smapes, shape))
    return Accuracy(
        mae_total=float(errs.mean()) if errs.size else 0.0,
        smape_total=float(sm.mean()) if sm.size else 0.0,
        wape_minute=minute_err / actual_sum if actual_sum > 0 else 0.0,
        shape_distance=float(sh.mean()) if sh.size else 0.0,
        pairs=int(errs.size),
    )


def run_backtest(
    scenario: Scenario,
    forecasters: Sequence[str],
    settings: ForecastSettings,
    policy: str = "casa",
    on_forecaster: Callable[[str], None] | None = None,
) -> list[BacktestRow]:
    """One row per forecaster (``oracle`` first if asked for): accuracy and the policy's outcome."""
    rows = []
    for name in forecasters:
        if on_forecaster is not None:
            on_forecaster(name)
        forecaster = None if name == ORACLE else create_forecaster(name, settings)
        sc = dataclasses.replace(scenario, forecast=name, forecaster=forecaster)
        acc = accuracy(sc) if name != ORACLE else Accuracy(0.0, 0.0, 0.0, 0.0, 0)
        runs = run_policies(sc, [policy])
        rows.append(BacktestRow(name, acc, runs[policy].summary()))
    return rows


def best_forecaster(rows: Sequence[BacktestRow]) -> BacktestRow | None:
    """The non-oracle forecaster with the lowest SL_ave (ties: less carbon)."""
    candidates = [r for r in rows if r.forecaster != ORACLE]
    return min(candidates, key=lambda r: (r.outcome["slo_violation_rate"], r.outcome["carbon_g"]), default=None)


def markdown(rows: Sequence[BacktestRow], meta: Mapping[str, Any], policy: str) -> str:
    oracle = next((r for r in rows if r.forecaster == ORACLE), None)
    lines = [
        f"# Forecasters on {meta.get('workload', 'the trace')}: accuracy and {policy}'s outcome",
        "",
        f"N = {meta.get('nodes')}, R = {meta.get('intensity')}x, {meta.get('functions')} functions, "
        f"{meta.get('epochs')} epochs from {meta.get('start_local')}, Cstr = {meta.get('cstr')}. Errors over "
        "epochs 1.. (epoch 0 has no history); outcome over every epoch, simulated on the true requests.",
        "",
        "| forecaster | MAE of epoch totals (req) | sMAPE of totals | per-minute WAPE | shape distance "
        "| SL_ave | requests dropped | carbon (g) | SL_ave / oracle | carbon vs oracle |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        o = r.outcome
        acc = r.accuracy
        errors = ("—",) * 4 if r.forecaster == ORACLE else (
            f"{acc.mae_total:.1f}", f"{acc.smape_total:.1%}", f"{acc.wape_minute:.1%}", f"{acc.shape_distance:.3f}"
        )  # fmt: skip
        ratios = ("—", "—") if oracle is None or r is oracle else (
            f"{r.ratio(oracle, 'slo_violation_rate'):.2f}x", f"{r.ratio(oracle, 'carbon_g') - 1.0:+.1%}"
        )  # fmt: skip
        lines.append(
            f"| {r.forecaster} | {' | '.join(errors)} | {o['slo_violation_rate']:.2%} | "
            f"{o['request_violation_rate']:.2%} | {o['carbon_g']:.1f} | {' | '.join(ratios)} |"
        )
    best = best_forecaster(rows)
    if best is not None and oracle is not None:
        sl = best.ratio(oracle, "slo_violation_rate")
        dc = best.ratio(oracle, "carbon_g") - 1.0
        ok = sl <= SL_RATIO_TARGET and abs(dc) <= CARBON_TARGET
        lines += [
            "",
            f"Best non-oracle forecaster (lowest SL_ave): **{best.forecaster}**, SL_ave {sl:.2f}x the oracle's "
            f"(target ≤ {SL_RATIO_TARGET}x) and carbon {dc:+.1%} (target within ±{CARBON_TARGET:.0%}): "
            + ("target met." if ok else "target **not** met."),
        ]
    return "\n".join(lines) + "\n"


#: The files of one backtest, written as one set into the output directory.
BACKTEST_FILES = ("forecast-backtest.md", "forecast-backtest.json", "forecast-backtest.png")


def write_backtest(rows: Sequence[BacktestRow], meta: Mapping[str, Any], policy: str, out_dir: Path) -> list[Path]:
    """``forecast-backtest.md``, ``.json`` and ``.png`` in ``out_dir``, as one set
    (:class:`~casa_sched.outputs.OutputSet`: a failed write leaves the previous set); strict JSON."""
    md, js, png = (out_dir / name for name in BACKTEST_FILES)
    doc = {"meta": dict(meta), "policy": policy, "rows": [
        {"forecaster": r.forecaster, "accuracy": dataclasses.asdict(r.accuracy), "outcome": r.outcome} for r in rows
    ]}  # fmt: skip
    with OutputSet() as out:
        out.write_text(md, markdown(rows, meta, policy))
        out.write_text(js, json_text(doc, indent=2, sort_keys=True))
        _plot(rows, policy, out.temp_path(png))
    return [md, js, png]


def _plot(rows: Sequence[BacktestRow], policy: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.forecaster for r in rows]
    x = np.arange(len(rows))
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    axes[0].bar(x, [100 * r.accuracy.smape_total for r in rows], color="tab:blue", label="sMAPE of epoch totals")
    axes[0].bar(x, [100 * r.accuracy.wape_minute for r in rows], color="tab:orange", alpha=0.6,
                width=0.4, label="per-minute WAPE")  # fmt: skip
    axes[0].set_ylabel("forecast error (%)")
    axes[0].legend(fontsize=8)
    axes[1].bar(x, [100 * r.outcome["slo_violation_rate"] for r in rows], color="tab:red")
    axes[1].set_ylabel(f"{policy} SL_ave (%)")
    axes[2].bar(x, [r.outcome["carbon_g"] for r in rows], color="tab:green")
    axes[2].set_ylabel(f"{policy} carbon (gCO2eq)")
    lo = min(r.outcome["carbon_g"] for r in rows)
    axes[2].set_ylim(lo * 0.95, max(r.outcome["carbon_g"] for r in rows) * 1.02)
    for ax in axes:
        ax.set_xticks(x, names, rotation=30)
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
