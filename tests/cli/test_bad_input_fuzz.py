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

import atexit
import contextlib
import functools
import io
import json
import math
import os
import re
import socket
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
from casa_sched.experiments.forecast_backtest import BACKTEST_FILES
from casa_sched.experiments.report import OUTPUT_FILES
from casa_sched.outputs import InputError, OutputSet, json_text, parse_json
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


# ---- the long-running commands: casa accounting, casa autoscaler, casa extender ------------------
#
# A case whose flags are all valid must still end: the commands' ports are taken (a socket of this
# module listens on 0.0.0.0 there, so every IPv4 bind fails: exit 1) and the autoscaler's cluster
# does not answer (127.0.0.1:1: exit 1). Hosts are drawn from a list without IPv6 or `localhost`
# (which could bind beside the taken IPv4 port).


@functools.cache
def _taken_port() -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("0.0.0.0", 0))
    sock.listen()
    atexit.register(sock.close)
    return int(sock.getsockname()[1])


HOSTS = st.sampled_from(["", "999.1.1.1", "nosuch.invalid", "0.0.0.0", "127.0.0.1", "a b", "x" * 300, "127.0.0.1:80"])
LOG_LEVELS = st.one_of(st.sampled_from(["info", "DEBUG", "nosuch", "", "10", " warning "]), st.text(max_size=12))
WORDS = st.one_of(st.sampled_from(["", ",", "casa", "deployment,knative", "nosuch", "a/b", "a b", "é", "\x00"]),
                  st.text(max_size=20))  # fmt: skip


UNREACHABLE_KUBECONFIG = b"""apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]
users: [{name: u, user: {}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


@functools.cache
def _unreachable_kubeconfig() -> Path:
    path = Path(tempfile.mkdtemp(prefix="casa-fuzz-")) / "unreachable.kubeconfig"
    path.write_bytes(UNREACHABLE_KUBECONFIG)
    return path


def _port_or_taken(value: str) -> str:
    """A port that would bind (a valid number) becomes the taken one, so the case ends."""
    with contextlib.suppress(ValidationError):
        if 1 <= TypeAdapter(int).validate_python(value) <= 65535:
            return str(_taken_port())
    return value


ACCOUNTING_FLAGS = {"--port": NASTY_NUMBERS, "--interval-s": NASTY_NUMBERS, "--laxity": NASTY_NUMBERS,
                    "--utilisation": WORDS, "--prometheus": st.sampled_from(["http://", "ftp://x", "http://[::1",
                    "http://127.0.0.1:99999", "http://127.0.0.1:1", "nosuch", ""]), "--host": HOSTS,
                    "--log-level": LOG_LEVELS}  # fmt: skip


AUTOSCALER_FLAGS = {"--epoch-s": NASTY_NUMBERS, "--intra-interval-s": NASTY_NUMBERS, "--time-budget": NASTY_NUMBERS,
                    "--metrics-port": NASTY_NUMBERS, "--policy": WORDS, "--platforms": WORDS, "--identity": WORDS,
                    "--log-level": LOG_LEVELS}  # fmt: skip


@fuzz(150)
@given(data=st.data(), flag=st.sampled_from(sorted(AUTOSCALER_FLAGS)))
def test_casa_autoscaler_refuses_bad_flags_in_one_line(data: st.DataObject, flag: str) -> None:
    value = data.draw(AUTOSCALER_FLAGS[flag], label=flag)
    argv = ["autoscaler", "--dry-run", "--once", "--kubeconfig", str(_unreachable_kubeconfig()), flag, value]
    result = invoke(casa_main, argv)
    assert result.exit_code != 0, (flag, value)  # the cluster never answers
    _one_line_failure(result, "casa autoscaler")


EXTENDER_FLAGS = {"--port": NASTY_NUMBERS, "--host": HOSTS, "--assume-ttl-s": NASTY_NUMBERS,
                  "--max-body-bytes": NASTY_NUMBERS, "--max-nodes": NASTY_NUMBERS, "--url-prefix": WORDS,
                  "--filter-verb": WORDS, "--prioritize-verb": WORDS, "--log-level": LOG_LEVELS}  # fmt: skip


SERVER_FLAGS = {"accounting": ACCOUNTING_FLAGS, "extender": EXTENDER_FLAGS}


@pytest.mark.parametrize("command", sorted(SERVER_FLAGS))
@fuzz(150)
@given(data=st.data())
def test_casa_accounting_and_extender_refuse_bad_flags_in_one_line(command: str, data: st.DataObject) -> None:
    flag = data.draw(st.sampled_from(sorted(SERVER_FLAGS[command])), label="flag")
    value = data.draw(SERVER_FLAGS[command][flag], label=flag)
    value = _port_or_taken(value) if flag == "--port" else value
    result = invoke(casa_main, [command, "--host", "127.0.0.1", "--port", str(_taken_port()), flag, value])
    assert result.exit_code != 0, (flag, value)  # never serves: the port is taken
    _one_line_failure(result, f"casa {command}")


# ---- corrupted input files of every command that reads one -------------------------------------


def _power_model() -> dict[str, Any]:
    from casa_sched.models.power import default_node_fit

    return default_node_fit().curve.to_dict()


#: A valid document per kind of input file, which the strategy below corrupts.
FILE_BASES: dict[str, Callable[[], bytes]] = {
    "power-models": lambda: json.dumps({"node-1": _power_model()}).encode(),
    "power-model": lambda: json.dumps(_power_model()).encode(),
    "t-ave": lambda: b'{"fn-a": 0.25, "fn-b": 1.5}',
    "metrics": lambda: b'{"functions": {"fn-a": {"requests_per_minute": [120, 130.5], "t_ave_s": 0.2, "in_flight": 3}},'
    b' "pods": {"default/fn-a-1": {"cpu_cores": 0.5}}}',
    "settings": lambda: b"slo:\n  laxity: 12\n  cstr: 0.05\ncluster:\n  nodes: 4\n",
    "kubeconfig": lambda: UNREACHABLE_KUBECONFIG,
    "pem": lambda: b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUe\n-----END CERTIFICATE-----\n",
}

MUTATIONS = ["none", "empty", "truncate", "binary", "nan", "infinity", "huge", "negative", "list", "deep", "nul",
             "latin1", "bom", "crlf", "duplicate-key", "string"]  # fmt: skip


@st.composite
def corrupted(draw: st.DrawFn, base: bytes) -> bytes:
    """``base`` as written, or corrupted in one of the ways files get corrupted."""
    mutation = draw(st.sampled_from(MUTATIONS))
    numbers = [m.span() for m in re.finditer(rb"(?<![\w.])\d+(\.\d+)?(?![\w.])", base)]
    if mutation in ("nan", "infinity", "huge", "negative") and numbers:
        lo, hi = numbers[draw(st.integers(0, len(numbers) - 1))]
        token = {"nan": b"NaN", "infinity": b"Infinity", "huge": b"1e999", "negative": b"-1"}[mutation]
        return base[:lo] + token + base[hi:]
    return {
        "empty": b"",
        "truncate": base[: draw(st.integers(0, max(0, len(base) - 1)))],
        "binary": draw(st.binary(min_size=1, max_size=300)),
        "list": b"[" + base + b"]",
        "deep": b"[" * draw(st.sampled_from([100, 5_000, 200_000])),
        "nul": base[: len(base) // 2] + b"\x00" + base[len(base) // 2 :],
        "latin1": base.replace(b"a", b"\xe9", 1),
        "bom": b"\xef\xbb\xbf" + base,
        "crlf": base.replace(b"\n", b"\r\n"),
        "duplicate-key": base.replace(b"{", b'{"x": 1, "x": [], ', 1),
        "string": b'"' + base.replace(b'"', b"'").replace(b"\n", b" ") + b'"',
    }.get(mutation, base)


PATH_KINDS = ["file"] * 6 + ["directory", "fifo", "dangling-symlink", "missing", "symlink"]


def _materialize(tmp: Path, kind: str, data: bytes) -> Path:
    """An input path of ``kind`` holding ``data`` where it is a file."""
    path = tmp / "input"
    if kind in ("file", "symlink"):
        target = tmp / "target" if kind == "symlink" else path
        target.write_bytes(data)
        if kind == "symlink":
            path.symlink_to(target)
    elif kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dangling-symlink":
        path.symlink_to(tmp / "nowhere")
    return path


def _taken() -> list[str]:
    return ["--host", "127.0.0.1", "--port", str(_taken_port())]


def _unreachable() -> list[str]:
    return ["--kubeconfig", str(_unreachable_kubeconfig())]


# (base document, console script, argv for the input path, the stderr prefix)
FILE_TARGETS: dict[str, tuple[str, Callable[[Sequence[str] | None], None], Callable[[str], list[str]], str]] = {
    "accounting --power-models": ("power-models", casa_main, lambda p: ["accounting", *_taken(), "--power-models", p],
                                  "casa accounting"),
    "accounting --t-ave": ("t-ave", casa_main, lambda p: ["accounting", *_taken(), "--t-ave", p], "casa accounting"),
    "accounting --config": ("settings", casa_main, lambda p: ["accounting", *_taken(), "--config", p],
                            "casa accounting"),
    "autoscaler --metrics-file": ("metrics", casa_main, lambda p: ["autoscaler", "--dry-run", "--once",
                                  *_unreachable(), "--metrics-file", p], "casa autoscaler"),
    "autoscaler --config": ("settings", casa_main, lambda p: ["autoscaler", "--dry-run", "--once", *_unreachable(),
                            "--config", p], "casa autoscaler"),
    "autoscaler --kubeconfig": ("kubeconfig", casa_main, lambda p: ["autoscaler", "--dry-run", "--once",
                                "--kubeconfig", p], "casa autoscaler"),
    "extender --config": ("settings", casa_main, lambda p: ["extender", *_taken(), "--config", p], "casa extender"),
    "extender --kubeconfig": ("kubeconfig", casa_main, lambda p: ["extender", *_taken(), "--kubeconfig", p],
                              "casa extender"),
    "extender --plan-file": ("power-model", casa_main, lambda p: ["extender", *_taken(), "--plan-file", p],
                             "casa extender"),
    "extender --tls-cert-file": ("pem", casa_main, lambda p: ["extender", *_taken(), "--tls-cert-file", p,
                                 "--tls-key-file", p], "casa extender"),
    "config show --config": ("settings", casa_main, lambda p: ["config", "show", "--config", p], "casa config show"),
    "casa-profiler publish --model": ("power-model", profiler_main, lambda p: ["publish", "--node", "n1", "--model", p,
                                      *_unreachable()], "casa-profiler"),
    "casa-profiler show --kubeconfig": ("kubeconfig", profiler_main, lambda p: ["show", "--node", "n1",
                                        "--kubeconfig", p], "casa-profiler"),
}  # fmt: skip


@pytest.mark.timeout(300)  # a FIFO read by mistake would block: fail rather than hang
@fuzz(300)
@given(data=st.data(), target=st.sampled_from(sorted(FILE_TARGETS)), kind=st.sampled_from(PATH_KINDS))
def test_every_input_file_is_read_or_refused_in_one_line(data: st.DataObject, target: str, kind: str) -> None:
    base, main, argv, prefix = FILE_TARGETS[target]
    content = data.draw(corrupted(FILE_BASES[base]()), label="content")
    with tempfile.TemporaryDirectory() as d:
        path = _materialize(Path(d), kind, content)
        result = invoke(main, argv(str(path)))
    if not target.startswith("config show"):  # the others end at a taken port or a cluster that never answers
        assert result.exit_code != 0, (target, kind)
    _one_line_failure(result, prefix)


@fuzz(300)
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=200), st.sampled_from(
    ["NaN", "[Infinity]", '{"a": -Infinity}', "1e999", "[-1e400]", "[" * 100_000, '{"a": 1e308}', "0", '"x"'])))  # fmt: skip
def test_strict_json_parses_finite_documents_or_says_why_in_one_line(text: str | bytes) -> None:
    try:
        doc = parse_json("--x f.json", text)
    except InputError as exc:
        message = str(exc)
    else:
        assert json.loads(json_text(doc)) == doc  # strict JSON round-trips: no NaN or infinity inside
        return
    assert message.startswith("--x f.json: ")
    assert "\n" not in message


# ---- casa dashboard generate ------------------------------------------------------------------

@pytest.mark.parametrize("where", ["a-file", "under-a-file", "name-taken-by-a-directory", "symlinked-name"])
def test_casa_dashboard_generate_checks_out_and_writes_one_set(tmp_path: Path, where: str) -> None:
    out = tmp_path / "out"
    if where == "a-file":
        out.write_text("not a directory")
    elif where == "under-a-file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "out"
    elif where == "name-taken-by-a-directory":
        (out / "dashboard-configmap.yaml").mkdir(parents=True)
    else:
        out.mkdir()
        (tmp_path / "precious").write_text("keep me")
        (out / "casa-sched.json").symlink_to(tmp_path / "precious")
    result = invoke(casa_main, ["dashboard", "generate", "--out", str(out)])
    _one_line_failure(result, "casa dashboard generate")
    if where == "symlinked-name":
        assert result.exit_code == 0
        assert (tmp_path / "precious").read_text() == "keep me"
        assert json.loads((out / "casa-sched.json").read_text())["title"]
    else:
        assert result.exit_code == 2
        assert not (out / "casa-sched.json").exists()


# ---- casa forecast backtest --------------------------------------------------------------------


@fuzz(25)
@given(
    flag=st.sampled_from(SIM_FLAGS), value=st.one_of(NASTY_NUMBERS, st.sampled_from(["9999-12-31T23:00", "garbage"]))
)
def test_casa_forecast_backtest_refuses_bad_flags_up_front_leaving_the_previous_outputs(flag: str, value: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "out"
        out.mkdir()
        for name in BACKTEST_FILES:
            (out / name).write_text("previous")
        argv = ["forecast", "backtest", "--forecasters", "oracle,last", "--policy", "binpack", "--out", str(out),
                "--epochs", "1", flag, value]  # fmt: skip
        result = invoke(casa_main, argv)
        _one_line_failure(result, "casa forecast backtest")
        if result.exit_code != 0:
            assert all((out / name).read_text() == "previous" for name in BACKTEST_FILES)
        else:
            assert json.loads((out / "forecast-backtest.json").read_text())["policy"] == "binpack"
        assert sorted(p.name for p in out.iterdir()) == sorted(BACKTEST_FILES)  # no temporary file left
