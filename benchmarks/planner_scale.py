"""CASA against bin-packing, Hybrid and Score at cluster scale: N nodes × F synthetic functions.

    nice .venv/bin/python -m benchmarks.planner_scale [--quick] [--sizes 32,128,512]
        [--functions 500,2000,5000] [--epochs 2] [--out benchmarks/out/planner-scale.png]

For every grid point the embedded synthetic workload is generated with F functions (their
per-function statistics are the 500-function sample's, README "casa simulate") and replayed by
``casa simulate``'s own runner (:func:`casa_sched.experiments.runner.run_policies`) on N default
nodes with the default settings (planning budget included). The load is the paper's R = 10·N
for the 500-function workload: F functions carry F/500 times its requests at one R, so each
point runs at R = 10·N·500/F and every point offers the cluster the same share of its cores
(``--per-function-r`` applies R = 10·N to every function instead, which overloads the cluster
F/500-fold). Printed per policy: planning seconds (mean, max), SL_ave (the paper's eq. 7 mean
over functions), the request-weighted violation rate (violated requests over all requests; a
violation is a drop in the simulator), dropped requests, epochs meeting Cstr and carbon; the
baseline of each ratio is bin-packing in the same process. The PNG plots plan time and carbon.

``--budget`` runs the planners only (no replay): CASA's plan wall time per epoch against its
budget, the overrun ratio (target ≤ 10 % at every size), the time per phase (estimator set-up,
safe start, search, validation), the longest completed search step and the validations run and
skipped, beside bin-packing's plan time in the same process.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from casa_sched.contract.plan import Plan
from casa_sched.contract.snapshot import ClusterSnapshot
from casa_sched.experiments.inputs import build_scenario
from casa_sched.experiments.runner import Scenario, run_policies
from casa_sched.planners import create
from casa_sched.planners.casa import CasaPlanner
from casa_sched.settings import load_settings
from casa_sched.traces.synthetic import SyntheticParams, synthetic_workload

POLICIES = ("casa", "binpack", "hybrid", "score")
DEFAULT_OUT = Path(__file__).resolve().parent / "out" / "planner-scale.png"
BUDGET_TARGET = 0.10  # plan wall time at most 10 % over planner.time_budget_s
SAME = 1e-4  # rates within 0.01 percentage point count as no worse (the same plan replayed)


def _per_size(flag: str, text: str, sizes: list[int], kind: type[float] | type[int]) -> dict[int, float]:
    """``--flag a`` or ``--flag a,b,c`` (one per size) as {size: value}; bad input exits 2."""
    try:
        values = [kind(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if len(values) == 1:
        values *= len(sizes)
    if len(values) != len(sizes):
        print(f"planner_scale: {flag} takes one number or one per size ({len(sizes)}), got {text!r}", file=sys.stderr)
        raise SystemExit(2)
    return dict(zip(sizes, values, strict=True))


def _ints(flag: str, text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        print(f"planner_scale: {flag} must be comma-separated positive integers, got {text!r}", file=sys.stderr)
        raise SystemExit(2)
    return values


def scenario_of(
    nodes: int, functions: int, epochs: int, per_function_r: bool, budget_s: float | None = None, r_factor: float = 1.0
) -> tuple[Scenario, float]:
    """The grid point's scenario (default settings, synthetic workload of ``functions``; the
    planning budget derived unless ``budget_s``) and its R."""
    intensity = r_factor * 10.0 * nodes * (1.0 if per_function_r else 500.0 / functions)
    settings = load_settings(
        None, {"cluster.nodes": nodes, "workload.intensity": intensity, "planner.time_budget_s": budget_s}
    )
    wl = synthetic_workload(SyntheticParams(n_functions=functions), seed=settings.planner.seed)
    scenario, _ = build_scenario(settings, epochs=epochs, workload=wl.scaled(intensity, seed=settings.planner.seed))
    return scenario, intensity


def budget_point(
    nodes: int, functions: int, epochs: int, per_function_r: bool, budget_s: float | None, r_factor: float = 1.0
) -> list[dict[str, float | str | int]]:
    """CASA's plan wall time against its budget, epoch by epoch (each plans from its own previous
    plan; the first from an empty cluster), with the planner's phases; bin-packing's plan time in
    the same process is the baseline. No replay: only the planner runs."""
    scenario, intensity = scenario_of(nodes, functions, epochs, per_function_r, budget_s, r_factor)
    casa, binpack = CasaPlanner(scenario.config), create("binpack", scenario.config)
    previous: dict[str, Plan | None] = {"casa": None, "binpack": None}
    rows: list[dict[str, float | str | int]] = []
    for epoch in range(epochs):
        forecast, signals = scenario.forecast_for(epoch), scenario.signals_for(epoch)
        took: dict[str, float] = {}
        for name, planner in (("casa", casa), ("binpack", binpack)):
            snapshot = ClusterSnapshot(scenario.cluster, scenario.params, previous[name], scenario.water)
            t = time.perf_counter()
            previous[name] = planner.plan(snapshot, forecast, signals)
            took[name] = time.perf_counter() - t
        tr = casa.last_trace
        budget = tr.budget_s
        rows.append({
            "nodes": nodes, "functions": functions, "intensity": intensity, "epoch": epoch, "budget_s": budget,
            "plan_s": took["casa"], "overrun": took["casa"] / budget - 1.0, "binpack_s": took["binpack"],
            "start": f"{tr.start} (of {len(tr.start_candidates)})", "iterations": tr.iterations, "longest_step_s": tr.longest_step_s, "stopped_by": tr.stopped_by, "validations": len(tr.validations),
            "skipped": tr.validations_skipped,
            **{f"{k}_s": v for k, v in tr.phase_s.items()},
        })  # fmt: skip
        print(
            f"  N={nodes} F={functions} epoch {epoch}: {took['casa']:.2f} s of {budget:g} s",
            file=sys.stderr,
            flush=True,
        )
    return rows


def budget_table(rows: list[dict[str, float | str | int]]) -> str:
    head = ("| N | F | R | epoch | budget s | plan s | overrun | set-up s | start s (chosen of built) | search s | validate s "
            "| iterations (stopped by) | longest step s | validations (skipped) | binpack s |")  # fmt: skip
    lines = [head, "|" + "---|" * 15]
    for r in rows:
        lines.append(
            f"| {r['nodes']} | {r['functions']} | {float(r['intensity']):g} | {r['epoch']} | {float(r['budget_s']):g} "
            f"| {float(r['plan_s']):.2f} | {float(r['overrun']):+.1%} | {float(r['setup_s']):.2f} "
            f"| {float(r['start_s']):.2f} {r['start']} | {float(r['search_s']):.2f} | {float(r['validate_s']):.2f} "
            f"| {r['iterations']} ({r['stopped_by']}) | {float(r['longest_step_s']):.3f} | {r['validations']} ({r['skipped']}) | {float(r['binpack_s']):.3f} |"
        )  # fmt: skip
    worst = max(float(r["overrun"]) for r in rows)
    lines.append("")
    lines.append(
        f"worst overrun {worst:+.1%} (target ≤ {BUDGET_TARGET:.0%}): {'met' if worst <= BUDGET_TARGET else 'NOT met'}"
    )
    return "\n".join(lines)


def run_point(
    nodes: int, functions: int, epochs: int, per_function_r: bool, budget_s: float | None, r_factor: float = 1.0
) -> list[dict[str, float | str | int]]:
    scenario, intensity = scenario_of(nodes, functions, epochs, per_function_r, budget_s, r_factor)
    runs = run_policies(scenario, POLICIES)
    empty = ClusterSnapshot(scenario.cluster, scenario.params)
    budgets = [scenario.config.budget_s(empty, scenario.forecast_for(e)) for e in range(epochs)]
    rows: list[dict[str, float | str | int]] = []
    for name in POLICIES:
        s = runs[name].summary()
        result = runs[name].result
        assert result is not None
        met = "".join("1" if e.slo_violation_rate <= scenario.config.cstr else "0" for e in result.epochs)
        rows.append({
            "budget_s_mean": sum(budgets) / len(budgets), "cstr_by_epoch": met,
            "nodes": nodes, "functions": functions, "intensity": intensity, "policy": name,
            "plan_s_mean": s["plan_seconds_mean"], "plan_s_max": s["plan_seconds_max"],
            "sl_ave": s["slo_violation_rate"], "violations_weighted": s["dropped"] / max(s["requests"], 1.0),
            "dropped": int(s["dropped"]), "requests": int(s["requests"]),
            "epochs_meeting_cstr": int(s["epochs_meeting_cstr"]), "epochs": epochs, "carbon_g": s["carbon_g"],
        })  # fmt: skip
    return rows


def table(rows: list[dict[str, float | str | int]]) -> str:
    head = ("| N | F | R | policy | plan s mean | plan s max | SL_ave | viol. (req-weighted) | dropped "
            "| ≤Cstr | carbon g | carbon / binpack |")  # fmt: skip
    lines = [head, "|" + "---|" * 12]
    base = {(r["nodes"], r["functions"]): float(r["carbon_g"]) for r in rows if r["policy"] == "binpack"}
    for r in rows:
        ratio = float(r["carbon_g"]) / base[(r["nodes"], r["functions"])]
        lines.append(
            f"| {r['nodes']} | {r['functions']} | {float(r['intensity']):g} | {r['policy']} "
            f"| {float(r['plan_s_mean']):.2f} | {float(r['plan_s_max']):.2f} | {float(r['sl_ave']):.2%} "
            f"| {float(r['violations_weighted']):.2%} | {int(r['dropped']):,} | {r['epochs_meeting_cstr']}/{r['epochs']} "
            f"| {float(r['carbon_g']):,.0f} | {ratio:.3f} |"
        )  # fmt: skip
    return "\n".join([*lines, "", *targets(rows)])


def targets(rows: list[dict[str, float | str | int]]) -> list[str]:
    """Per point: CASA's SL_ave and share of requests dropped against the best baseline's, and
    whether CASA meets Cstr in every epoch in which any policy does."""
    out = []
    for point in sorted({(int(r["nodes"]), int(r["functions"])) for r in rows}):
        mine = {str(r["policy"]): r for r in rows if (r["nodes"], r["functions"]) == point}
        casa, others = mine["casa"], [r for name, r in mine.items() if name != "casa"]
        best_sl = min(float(r["sl_ave"]) for r in others)
        best_drop = min(float(r["violations_weighted"]) for r in others)
        met = str(casa["cstr_by_epoch"])
        anyone = [
            "1" if any(str(r["cstr_by_epoch"])[e] == "1" for r in mine.values()) else "0" for e in range(len(met))
        ]
        wherever = all(m == "1" for m, a in zip(met, anyone, strict=True) if a == "1")
        sl_ok = float(casa["sl_ave"]) <= best_sl + SAME
        drop_ok = float(casa["violations_weighted"]) <= best_drop + SAME
        out.append(
            f"- N={point[0]} F={point[1]} (budget {float(casa['budget_s_mean']):.1f} s, plan {float(casa['plan_s_mean']):.1f} s "
            f"mean / {float(casa['plan_s_max']):.1f} s max): SL_ave {float(casa['sl_ave']):.2%} vs best baseline "
            f"{best_sl:.2%} ({'ok' if sl_ok else 'WORSE'}); dropped {float(casa['violations_weighted']):.2%} vs "
            f"{best_drop:.2%} ({'ok' if drop_ok else 'WORSE'}); Cstr met in epochs {met}, some policy in "
            f"{''.join(anyone)} ({'ok' if wherever else 'MISSED'})"
        )  # fmt: skip
    return out


def plot(rows: list[dict[str, float | str | int]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sorted({(int(r["nodes"]), int(r["functions"])) for r in rows})
    labels = [f"N={n}\nF={f}" for n, f in points]
    fig, (ax_t, ax_v, ax_c) = plt.subplots(1, 3, figsize=(16, 4.5))
    width = 0.8 / len(POLICIES)
    for i, name in enumerate(POLICIES):
        mine = {(int(r["nodes"]), int(r["functions"])): r for r in rows if r["policy"] == name}
        xs = [j + (i - (len(POLICIES) - 1) / 2) * width for j in range(len(points))]
        ax_t.bar(xs, [float(mine[p]["plan_s_mean"]) for p in points], width, label=name)
        ax_v.bar(xs, [100 * float(mine[p]["violations_weighted"]) for p in points], width, label=name)
        ax_c.bar(
            xs, [float(mine[p]["carbon_g"]) / float(rows_of(rows, p)["carbon_g"]) for p in points], width, label=name
        )
    casa = {(int(r["nodes"]), int(r["functions"])): r for r in rows if r["policy"] == "casa"}
    budgets = [float(casa[p].get("budget_s_mean", "nan")) for p in points]
    ax_t.scatter(range(len(points)), budgets, marker="_", s=400, color="black", label="CASA's budget", zorder=3)
    ax_t.set_yscale("log")
    ax_t.set_ylabel("plan time per epoch, s (mean)")
    ax_v.set_ylabel("requests dropped (request-weighted violations), %")
    ax_c.set_ylabel("carbon / bin-packing's")
    for ax in (ax_t, ax_v, ax_c):
        ax.set_xticks(range(len(points)), labels, fontsize=7)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def rows_of(rows: list[dict[str, float | str | int]], point: tuple[int, int]) -> dict[str, float | str | int]:
    """Bin-packing's row at ``point`` (the ratios' baseline)."""
    return next(r for r in rows if r["policy"] == "binpack" and (r["nodes"], r["functions"]) == point)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="N = 4, 8 and F = 500, 1000, one epoch (a smoke run)")
    ap.add_argument("--sizes", default="32,128,512", help="node counts N")
    ap.add_argument("--functions", default="500,2000,5000", help="synthetic function counts F")
    ap.add_argument(
        "--epochs",
        default="2",
        help="epochs per point (the first plans from an empty cluster); one value, or one per size",
    )
    ap.add_argument(
        "--r-factor",
        default="1",
        help="R = factor · 10·N (·500/F); one value, or one per size (a smaller R shortens the replay)",
    )
    ap.add_argument(
        "--time-budget",
        type=float,
        default=None,
        help="planner.time_budget_s for every policy, s (default: unset, the budget derived per epoch)",
    )
    ap.add_argument("--per-function-r", action="store_true", help="R = 10·N on every function (load grows with F)")
    ap.add_argument(
        "--budget",
        action="store_true",
        help="only CASA's plan wall time against its budget, per epoch and phase (no replay)",
    )
    ap.add_argument(
        "--from-json",
        default="",
        help="comma-separated row files of earlier runs (written beside --out as .json): table and PNG of them, no run",
    )
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG path; the table goes beside it as .md")
    args = ap.parse_args()
    sizes, functions = (([4, 8], [500, 1000]) if args.quick
                        else (_ints("--sizes", args.sizes), _ints("--functions", args.functions)))  # fmt: skip
    epochs = {n: int(e) for n, e in _per_size("--epochs", "1" if args.quick else args.epochs, sizes, int).items()}
    factors = _per_size("--r-factor", args.r_factor, sizes, float)
    if not all(1 <= e <= 32 for e in epochs.values()):
        print(f"planner_scale: --epochs must be in 1..32, got {args.epochs}", file=sys.stderr)
        raise SystemExit(2)
    if not all(0 < r <= 1e3 for r in factors.values()):
        print(f"planner_scale: --r-factor must be in (0, 1000], got {args.r_factor}", file=sys.stderr)
        raise SystemExit(2)
    if args.time_budget is not None and not args.time_budget > 0:
        print(f"planner_scale: --time-budget must be > 0 s, got {args.time_budget}", file=sys.stderr)
        raise SystemExit(2)
    if args.out.exists() and args.out.is_dir():
        print(f"planner_scale: --out must be a file path, {args.out} is a directory", file=sys.stderr)
        raise SystemExit(2)
    rows: list[dict[str, float | str | int]] = []
    if args.from_json:
        for path in args.from_json.split(","):
            try:
                rows.extend(json.loads(Path(path).read_text()))
            except (OSError, ValueError) as exc:
                print(f"planner_scale: --from-json {path}: {exc}", file=sys.stderr)
                raise SystemExit(2) from exc
        text = table(rows)
        print(text)
        plot(rows, args.out)
        args.out.with_suffix(".md").write_text(text + "\n")
        return
    if args.budget:
        for n in sizes:
            for f in functions:
                rows.extend(budget_point(n, f, epochs[n], args.per_function_r, args.time_budget, factors[n]))
        print(budget_table(rows))
        return
    for n in sizes:
        for f in functions:
            t = time.perf_counter()
            rows.extend(run_point(n, f, epochs[n], args.per_function_r, args.time_budget, factors[n]))
            print(f"N={n} F={f}: {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")  # the points so far
    text = table(rows)
    print(text)
    plot(rows, args.out)
    args.out.with_suffix(".md").write_text(text + "\n")
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}", file=sys.stderr)


if __name__ == "__main__":
    main()
