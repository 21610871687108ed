"""Bad input never crashes: property-based tests (hypothesis) that drive ``casa simulate``,
``casa-profiler fit`` and ``casa-stress`` (in process, typer's CliRunner) and the signal loaders
with generated flag values and generated or corrupted files: empty, truncated, binary, huge
numbers, wrong columns, reversed or duplicated rows.

The rule asserted for every case: exit 0, or exit 2 (usage) / 1 (runtime) with exactly one line
on stderr, starting with the command's name, and no traceback; a failed run leaves the previous
output set byte-for-byte intact (no partial outputs). Plus the output-set writer itself
(:mod:`casa_sched.outputs`): all or nothing, symlinks replaced rather than written through,
strict JSON.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from casa_profiler.cli import main as profiler_main
from casa_stress.cli import main as stress_main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from casa_sched.cli.main import main as casa_main
from casa_sched.experiments.report import OUTPUT_FILES
from casa_sched.outputs import OutputSet, json_text
from casa_sched.signals.files import SignalFileError, load_carbon_csv, load_price_csv

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True, database=None)


def fuzz(max_examples: int) -> settings:
    """Reproducible cases (derandomized), no time limit per case: CI runs the same set every time."""
    return settings(FUZZ, max_examples=max_examples)


# Numbers as a user may type them: NaN, infinities, huge, tiny, negative, zero, not numbers.
NASTY_NUMBERS = st.one_of(
    st.sampled_from(["nan", "NaN", "inf", "-inf", "1e308", "-1e308", "1e9", "-1", "0", "-0", "1e-320", "abc", ""]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
)


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str


def invoke(main: Callable[[Sequence[str] | None], None], argv: list[str]) -> Run:
    """A console script's ``main`` as a user runs it, in process: exit code, stdout, stderr.
    Any exception other than SystemExit propagates and fails the test (a traceback)."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return Run(code, out.getvalue(), err.getvalue())


def _one_line_failure(result: Run, prefix: str) -> None:
    """The exit-code rule: 0, or 1/2 with one stderr line naming the command; never a traceback."""
    assert "Traceback" not in result.stderr + result.stdout
    if result.exit_code == 0:
        return
    assert result.exit_code in (1, 2), (result.exit_code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(prefix), lines[0]


# ---- the output-set writer -----------------------------------------------------------------


def test_a_failed_set_leaves_the_previous_set_intact(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("old a")
    (tmp_path / "b.csv").write_text("old b")

    def write_set() -> None:
        with OutputSet() as out:
            out.write_text(tmp_path / "b.csv", "new b")
            out.write_text(tmp_path / "a.json", json_text({"carbon_g": math.inf}))  # refused: not JSON

    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        write_set()
    assert (tmp_path / "a.json").read_text() == "old a"
    assert (tmp_path / "b.csv").read_text() == "old b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.csv"]  # no temporary file left


def test_a_symlink_in_the_output_directory_is_replaced_not_written_through(tmp_path: Path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "epochs.csv").symlink_to(target)
    with OutputSet() as out:
        out.write_text(tmp_path / "out" / "epochs.csv", "policy,epoch\n")
    assert target.read_text() == "keep me"
    assert not (tmp_path / "out" / "epochs.csv").is_symlink()
    assert (tmp_path / "out" / "epochs.csv").read_text() == "policy,epoch\n"


# ---- casa-stress ---------------------------------------------------------------------------


def _invalid_stress(cores: str, util: str, duration: str) -> bool:
    """True when the flags must be refused (so the case never starts a real stress). Parsed as
    typer parses them (pydantic's lax mode: "1.0" is the integer 1)."""
    try:
        c = TypeAdapter(int).validate_python(cores)
        u, d = (TypeAdapter(float).validate_python(v) for v in (util, duration))
    except ValidationError:
        return True
    return not (0 <= c <= len(os.sched_getaffinity(0)) and 0 <= u <= 1 and 0 < d <= 30 * 86_400)


@fuzz(300)
@given(cores=NASTY_NUMBERS, util=NASTY_NUMBERS, duration=NASTY_NUMBERS)
def test_casa_stress_refuses_bad_numbers_in_one_line(cores: str, util: str, duration: str) -> None:
    if not _invalid_stress(cores, util, duration):
        duration = "nan"  # keep the case a refusal: a valid one would load the CPU for `duration` s
    result = invoke(stress_main, ["--cores", cores, "--util", util, "--duration", duration, "--backend", "builtin"])
    assert result.exit_code == 2, (cores, util, duration, result.stdout)
    _one_line_failure(result, "casa-stress")


# ---- signal loaders ------------------------------------------------------------------------

CI_HEADER = "Datetime (UTC),Carbon intensity gCO₂eq/kWh (direct)"
PRICE_HEADER = "Datetime (UTC),Price (USD/MWh)"


@st.composite
def signal_csv(draw: st.DrawFn, header: str) -> bytes:
    """A CSV as exported, then corrupted: values, order, duplicates, columns, truncation, bytes."""
    hours = draw(st.integers(min_value=0, max_value=30))
    stamps = [f"2024-07-10 {h % 24:02d}:00:00" if h < 24 else f"2024-07-11 {h - 24:02d}:00:00" for h in range(hours)]
    values = draw(st.lists(st.one_of(NASTY_NUMBERS, st.floats(0, 900).map(str)), min_size=hours, max_size=hours))
    rows = [f"{t},{v}" for t, v in zip(stamps, values, strict=True)]
    mutation = draw(st.sampled_from(["none", "reverse", "duplicate", "drop-column", "other-header", "truncate",
                                     "binary", "empty", "offset", "half-hour"]))  # fmt: skip
    if mutation == "reverse":
        rows.reverse()
    elif mutation == "duplicate" and rows:
        rows.insert(draw(st.integers(0, len(rows) - 1)), rows[0])
    elif mutation == "drop-column":
        rows = [r.split(",")[0] for r in rows]
    elif mutation == "offset" and rows:
        rows[0] = rows[0].replace(":00:00,", ":00:00+02:00,", 1)
    elif mutation == "half-hour" and rows:
        rows[-1] = rows[-1].replace(":00:00,", ":30:00,", 1)
    head = "Datetime (UTC),watts" if mutation == "other-header" else header
    text = "\n".join([head, *rows]) + "\n"
    data = text.encode("utf-8")
    if mutation == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif mutation == "binary":
        data = draw(st.binary(min_size=1, max_size=200))
    elif mutation == "empty":
        data = b""
    return data


@fuzz(300)
@given(data=st.one_of(signal_csv(CI_HEADER), signal_csv(PRICE_HEADER)), carbon=st.booleans())
def test_signal_loaders_return_plausible_series_or_one_line_naming_the_file(data: bytes, carbon: bool) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "signal.csv"
        path.write_bytes(data)
        load: Callable[..., Any] = load_carbon_csv if carbon else load_price_csv
        try:
            series = load(path)
        except SignalFileError as exc:
            message = str(exc)
            assert message.startswith(str(path)), message
            assert "\n" not in message, message
            return
    values = series.values
    assert all(math.isfinite(v) for v in values)
    if carbon:
        assert all(0 <= v <= 2000 for v in values)  # gCO2eq/kWh, the loader's plausible bound
    else:
        assert all(abs(v) <= 20 for v in values)  # $/kWh: ±20000 USD/MWh ÷ 1000


# ---- casa-profiler fit ---------------------------------------------------------------------


@st.composite
def samples_csv(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(min_value=0, max_value=10))
    good = [(c, 100.0 + 10 * c - 0.2 * c * c) for c in range(n)]
    cells = [
        (str(c), draw(st.one_of(st.just(f"{p:.3f}"), NASTY_NUMBERS))) for c, p in good
    ]  # mostly plausible, some corrupted
    mutation = draw(
        st.sampled_from(["none", "reverse", "duplicate", "wrong-columns", "binary", "truncate", "header-only"])
    )
    if mutation == "reverse":
        cells.reverse()
    elif mutation == "duplicate" and cells:
        cells.append(cells[0])
    header = "busy,watts" if mutation == "wrong-columns" else "cores,power_w"
    text = "\n".join([header, *(f"{c},{p}" for c, p in ([] if mutation == "header-only" else cells))]) + "\n"
    data = text.encode()
    if mutation == "binary":
        return draw(st.binary(min_size=1, max_size=200))
    if mutation == "truncate":
        return data[: draw(st.integers(0, len(data)))]
    return data


@fuzz(300)
@given(data=samples_csv(), max_error=st.one_of(st.none(), NASTY_NUMBERS), cores=st.one_of(st.none(), NASTY_NUMBERS),
       plot=st.sampled_from([None, "fit.png", "fit.xyz", "fit"]))  # fmt: skip
def test_profiler_fit_succeeds_or_fails_in_one_line_keeping_the_previous_model(
    data: bytes, max_error: str | None, cores: str | None, plot: str | None
) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "s.csv").write_bytes(data)
        model = tmp / "model.json"
        model.write_text("previous model")
        argv = ["fit", "--input", str(tmp / "s.csv"), "--output", str(model)]
        argv += [] if max_error is None else ["--max-error-pct", max_error]
        argv += [] if cores is None else ["--cores", cores]
        argv += [] if plot is None else ["--plot", str(tmp / plot)]
        result = invoke(profiler_main, argv)
        _one_line_failure(result, "casa-profiler")
        if result.exit_code == 0:
            assert json.loads(model.read_text())["cores"] >= 1  # strict JSON, a whole model
        else:
            assert model.read_text() == "previous model"
            assert sorted(p.name for p in tmp.iterdir()) == ["model.json", "s.csv"]  # no plot, no temp file


# ---- casa simulate -------------------------------------------------------------------------

SIM_FLAGS = ["--intensity", "--laxity", "--cstr", "--nodes", "--seed", "--epochs", "--time-budget", "--utilisation",
             "--functions", "--start"]  # fmt: skip


@fuzz(100)
@given(
    flag=st.sampled_from(SIM_FLAGS), value=st.one_of(NASTY_NUMBERS, st.sampled_from(["9999-12-31T23:00", "garbage"]))
)
def test_casa_simulate_refuses_bad_flags_up_front_leaving_the_previous_outputs(flag: str, value: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "out"
        out.mkdir()
        for name in OUTPUT_FILES:
            (out / name).write_text("previous")
        # --epochs 1 and one cheap policy: a value that happens to be valid runs for a second or two
        argv = ["simulate", "--policies", "binpack", "--out", str(out), "--epochs", "1", flag, value]
        result = invoke(casa_main, argv)
        _one_line_failure(result, "casa simulate")
        if result.exit_code != 0:
            assert all((out / name).read_text() == "previous" for name in OUTPUT_FILES)
            assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)


@fuzz(40)
@given(data=signal_csv(CI_HEADER))
def test_casa_simulate_with_a_corrupted_carbon_csv_fails_in_one_line(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        ci = Path(d) / "ci.csv"
        ci.write_bytes(data)
        argv = [
            "simulate",
            "--policies",
            "binpack",
            "--out",
            str(Path(d) / "out"),
            "--epochs",
            "1",
            "--ci-csv",
            str(ci),
        ]
        result = invoke(casa_main, argv)
        _one_line_failure(result, "casa simulate")
        if result.exit_code != 0:
            assert not (Path(d) / "out" / "summary.json").exists()


# ---- casa dashboard render -------------------------------------------------------------------

TIMES = st.sampled_from(["2026-12-03T06:00", "2026-12-03T06:00+01:00", "0001-01-01T00:00+01:00", "9999-12-31T23:59",
                         "253402300799", "-62135596800", "1e308", "yesterday", "", "2026-13-40"])  # fmt: skip
DURATIONS = st.sampled_from(["6h", "1h30m", "0s", "90", "1.5h", "-1h", "5000y", "99999999999999999999d", "6 h", ""])


@fuzz(40)
@given(
    flag=st.sampled_from(["--start", "--end", "--range", "--step", "--prometheus"]),
    value=st.one_of(NASTY_NUMBERS, TIMES, DURATIONS, st.sampled_from(["http://", "http://[::1", "https://h:99999"])),
    extra=st.sampled_from([[], ["--range", "1h"], ["--start", "2026-12-03T06:00"]]),
)
def test_casa_dashboard_render_fails_in_one_line_and_writes_nothing(flag: str, value: str, extra: list[str]) -> None:
    """Every value either is refused up front (exit 2) or reaches the unreachable Prometheus
    (exit 1): one line, and --out keeps only what it held."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "out"
        out.mkdir()
        (out / "casa-sched.png").write_text("previous")
        argv = ["dashboard", "render", "--prometheus", "http://127.0.0.1:9", "--out", str(out), *extra, flag, value]
        result = invoke(casa_main, argv)
        _one_line_failure(result, "casa dashboard render")
        assert result.exit_code in (1, 2)
        assert [p.name for p in out.iterdir()] == ["casa-sched.png"]
        assert (out / "casa-sched.png").read_text() == "previous"
