"""``casa-profiler run`` driven by hypothesis: generated flag values and output paths, on a fake
powercap tree (:mod:`tests.profiler.fake_rapl`) so that a valid case profiles for real, briefly
(the idle level alone, no settling, two 50 ms reads).

Asserted for every case: no traceback; exit 0, 1 or 2; a bad flag, setting or output path is
exit 2 with one line on stderr, found *before* the sweep (no "profiling" banner); a failure
leaves the previous model as it was and adds no file but, after a sweep, the samples CSV (kept
on purpose: the evidence of a refused fit).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from casa_profiler.cli import main as profiler_main
from hypothesis import event, given
from hypothesis import strategies as st

from tests.cli.test_bad_input_fuzz import FILE_BASES, corrupted, fuzz, invoke
from tests.profiler.fake_rapl import FakeRapl, constant

CASES = 60
PREVIOUS = "previous model"

# Each case breaks one thing (or nothing) and draws it from bad values; everything else is valid.
# The valid --levels is the idle level alone: its sweep starts no stress worker (two 50 ms
# reads), and its fit is then refused for too few levels (exit 1 after the sweep, samples kept).
# A whole profile that fits is test_run.py's end-to-end test: stress workers take seconds to
# start on a loaded box.
VALID = {"--levels": "0", "--settle": "0", "--interval": "0.05", "--samples": "2"}
BAD_FLAGS: dict[str, st.SearchStrategy[str]] = {
    "--levels": st.sampled_from(["0,99", "nan", ",,,", "-1", "", "a,b", "0,inf", "1e999"]),
    "--settle": st.sampled_from(["-1", "-0.001", "nan", "3601", "inf", "-inf", "1e308", "abc", ""]),
    "--interval": st.sampled_from(["0", "-1", "nan", "inf", "1e9", "abc", "3601"]),
    "--samples": st.sampled_from(["1", "0", "-5", "100001", "1e9", "abc", ""]),
    "--steps": st.sampled_from(["0", "-1", "10001", "99999999999999999999", "x"]),
    "--max-error-pct": st.sampled_from(["0", "-1", "nan", "inf", "101", "abc"]),
    "--max-power-w": st.sampled_from(["0", "-1", "nan", "inf", "1e7", "abc"]),
    "--backend": st.sampled_from(["burn", "", "BUILTIN"]),
    "--meter": st.sampled_from(["wattmeter", "", "RAPL"]),
    "--prometheus-url": st.sampled_from(["http://", "http://[::1", "nosuch", "ftp://x", "http://h:99999"]),
}

# Output paths. The model is --output; the samples CSV (default beside it) and the plot may be
# placed on another output or where no file can go.
GOOD_OUTPUT = ["fresh", "existing", "symlink", "new-subdir"]
BAD_OUTPUT = ["directory", "under-a-file", "empty", "dot"]
GOOD_SAMPLES = ["none", "fresh"]
BAD_SAMPLES = ["same-as-output", "directory", "under-a-file"]
GOOD_PLOT = ["none", "fresh.png", "fresh.svg"]
BAD_PLOT = ["fresh.xyz", "no-suffix", "same-as-samples", "directory"]
BROKEN = ["nothing"] * 4 + sorted(BAD_FLAGS) + ["output", "samples-csv", "plot", "config"]


@pytest.fixture(scope="module")
def rapl() -> Iterator[FakeRapl]:
    with tempfile.TemporaryDirectory(prefix="casa-fuzz-rapl-") as d, FakeRapl(
        Path(d) / "powercap", constant(50.0), constant(5.0), range_j=1e6
    ) as fake:
        yield fake


def _path(tmp: Path, kind: str, name: str, output: Path | None = None) -> Path | None:
    if kind == "none":
        return None
    if kind == "same-as-output":
        return output
    if kind == "directory":
        (tmp / f"{name}-dir").mkdir(exist_ok=True)
        return tmp / f"{name}-dir"
    if kind == "under-a-file":
        return tmp / "model.json" / name  # model.json is a file: nothing can go under it
    if kind == "empty":
        return Path("")
    if kind == "dot":
        return Path(".")
    if kind == "new-subdir":
        return tmp / "new" / name
    if kind == "symlink":
        (tmp / "precious").write_text("keep me")
        (tmp / name).symlink_to(tmp / "precious")
        return tmp / name
    if kind == "existing":
        return tmp / "model.json"
    return tmp / name  # fresh


def _default_csv(output: Path) -> Path | None:
    return output.with_name(output.stem + ".samples.csv") if output.name else None


def _plot_path(tmp: Path, kind: str, samples: Path | None) -> Path | None:
    if kind == "none":
        return None
    if kind == "same-as-samples":
        return samples
    if kind == "directory":
        (tmp / "plot-dir").mkdir()
        return tmp / "plot-dir"
    if kind == "no-suffix":
        return tmp / "fit"
    return tmp / ("fit" + Path(kind).suffix)  # fresh.png, fresh.svg, fresh.xyz


def _bad_output(tmp: Path, output: Path, samples: Path | None, plot: Path | None) -> bool:
    """True when the paths must be refused up front (exit 2)."""
    csv = samples if samples is not None else _default_csv(output)
    named = [p for p in (output, csv, plot) if p is not None]
    if any(p == Path("") or p.is_dir() or tmp / "model.json" in p.parents for p in named):
        return True
    if plot is not None and plot.suffix.lower() not in (".png", ".svg"):
        return True
    resolved = [p.absolute().resolve() for p in named]
    return len(set(resolved)) != len(resolved)


@pytest.mark.timeout(300)  # a valid case that slept its way through a long sweep would fail, not hang CI
@fuzz(CASES)
@given(data=st.data(), broken=st.sampled_from(BROKEN))
def test_profiler_run_checks_every_output_before_the_sweep(rapl: FakeRapl, data: st.DataObject, broken: str) -> None:
    def kind(name: str, good: list[str], bad: list[str]) -> str:
        return data.draw(st.sampled_from(bad if broken == name else good), label=name)

    output_kind = kind("output", GOOD_OUTPUT, BAD_OUTPUT)
    samples_kind = kind("samples-csv", GOOD_SAMPLES, BAD_SAMPLES)
    plot_kind = kind("plot", GOOD_PLOT, BAD_PLOT)
    flags = dict(VALID)
    if broken in BAD_FLAGS:
        flags[broken] = data.draw(BAD_FLAGS[broken], label=broken)
        if broken == "--prometheus-url":
            flags["--meter"] = "prometheus"
    config = data.draw(corrupted(FILE_BASES["settings"]()), label="config") if broken == "config" else None
    with tempfile.TemporaryDirectory(prefix="casa-fuzz-run-") as d:
        tmp = Path(d)
        cwd = os.getcwd()
        os.chdir(tmp)  # "" and "." name the case's own directory
        try:
            (tmp / "model.json").write_text(PREVIOUS)
            output = _path(tmp, output_kind, "out.json")
            assert output is not None
            samples = _path(tmp, samples_kind, "samples.csv", output=output)
            plot = _plot_path(tmp, plot_kind, samples or _default_csv(output))
            argv = ["run", "--output", str(output), "--powercap-root", str(rapl.root), "--dram"]
            argv += [] if samples is None else ["--samples-csv", str(samples)]
            argv += [] if plot is None else ["--plot", str(plot)]
            if config is not None:
                (tmp / "casa.yaml").write_bytes(config)
                argv += ["--config", str(tmp / "casa.yaml")]
            for flag, value in flags.items():
                argv += [flag, value]
            before = {p.name: p.read_bytes() for p in tmp.iterdir() if p.is_file()}
            bad_paths = _bad_output(tmp, output, samples, plot)
            result = invoke(profiler_main, argv)
        finally:
            os.chdir(cwd)
        assert "Traceback" not in result.stdout + result.stderr
        assert result.exit_code in (0, 1, 2), (result.exit_code, result.stderr)
        swept = "profiling " in result.stderr
        lines = result.stderr.strip().splitlines()
        event(f"exit {result.exit_code}" + (" after a sweep" if swept else " before any sweep"))
        if broken == "nothing":
            assert swept, result.stderr
            assert result.exit_code == 1, result.stderr  # the idle level alone: the fit is refused
            assert "samples kept in" in lines[-1], result.stderr
        if bad_paths or broken in BAD_FLAGS:
            assert result.exit_code == 2, (argv, result.stderr)
        if result.exit_code == 2 or (result.exit_code == 1 and not swept):
            assert not swept, result.stderr  # refused before the sweep
            assert len(lines) == 1, result.stderr
            assert lines[0].startswith("casa-profiler"), result.stderr
        # Never 0: the only valid --levels is the idle level, whose fit is refused (see VALID).
        assert result.exit_code != 0, result.stdout
        assert lines[-1].startswith("casa-profiler"), result.stderr
        assert (tmp / "model.json").read_text() == PREVIOUS
        if output_kind == "symlink":
            assert (tmp / "precious").read_text() == "keep me"  # never written through
        after = {p.name for p in tmp.iterdir() if p.is_file()} - set(before) - {"casa.yaml", "precious"}
        kept = {s.name for s in [samples or _default_csv(output)] if swept and s is not None}
        assert after <= kept, (after, result.stderr)
        assert not any(p.name.startswith(".") for p in tmp.rglob("*")), "a temporary file was left behind"
