"""``casa dashboard render``: its bad input (one line on stderr, exit 2 for flags, 1 for an
unreachable or wrong server, nothing written), its outputs all-or-nothing, and the pure parts
(durations, times, legends, gaps). The drawing on a real Prometheus is in ``test_dashboards.py``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from casa_sched.accounting.dashboards import PANELS
from casa_sched.accounting.render import (
    MAX_POINTS,
    PanelData,
    Series,
    Window,
    _broken,
    duration_s,
    legend_text,
    output_names,
    render,
    timestamp,
)
from casa_sched.cli.main import main
from casa_sched.devcluster.controlplane import free_port

T0 = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["dashboard", "render", *args])
    code = exit_info.value.code
    return int(code) if isinstance(code, int) else 0, capsys.readouterr().err.strip()


@pytest.fixture
def not_prometheus() -> Iterator[str]:
    """A real HTTP server on loopback that is not Prometheus (answers 404 to everything)."""

    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--prometheus", "localhost:9090"], "--prometheus must be an http(s) URL", id="no-scheme"),
        pytest.param(["--prometheus", "ftp://h:1"], "--prometheus must be an http(s) URL", id="ftp"),
        pytest.param(["--range", "6 hours"], "--range: expected a duration such as 30m", id="range-words"),
        pytest.param(["--range", "0m"], "--range: expected a duration above zero", id="range-zero"),
        pytest.param(["--start", "yesterday"], "--start: expected an ISO 8601 time", id="start-words"),
        pytest.param(["--start", "2026-12-03T06:00", "--range", "1h"], "not both", id="start-and-range"),
        pytest.param(
            ["--start", "2026-12-03T07:00", "--end", "2026-12-03T06:00"], "must end after it starts", id="backwards"
        ),
        pytest.param(["--range", "7d", "--step", "1"], f"Prometheus allows {MAX_POINTS}", id="too-many-points"),
        pytest.param(["--range", "1h", "--step", "0"], "--step must be at least 1 s", id="step-zero"),
    ],
)
def test_bad_flags_are_one_line_exit_2_before_any_query(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    base = {"--prometheus": f"http://127.0.0.1:{free_port()}", "--out": str(tmp_path / "png")}
    given = dict(zip(args[::2], args[1::2], strict=True))
    flat = [x for k, v in {**base, **given}.items() for x in (k, v)]
    code, err = _run(capsys, *flat)
    assert code == 2
    assert message in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "png").exists()  # checked before --out is even created


def test_missing_required_flag_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(capsys, "--out", "x")
    assert code == 2
    assert "--prometheus" in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("where", ["a-file", "under-a-file", "a-name-taken-by-a-directory"])
def test_unwritable_out_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path, where: str) -> None:
    (tmp_path / "f").write_text("x")
    out = {"a-file": tmp_path / "f", "under-a-file": tmp_path / "f" / "png", "a-name-taken-by-a-directory": tmp_path}
    if where == "a-name-taken-by-a-directory":
        (tmp_path / output_names()[3]).mkdir()
    code, err = _run(capsys, "--prometheus", f"http://127.0.0.1:{free_port()}", "--out", str(out[where]))
    assert code == 2
    assert err.startswith("casa dashboard render: --out ")
    assert len(err.splitlines()) == 1


def test_unreachable_prometheus_is_one_line_exit_1_and_leaves_the_previous_pictures(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "png"
    out.mkdir()
    (out / output_names()[0]).write_bytes(b"the previous picture")
    code, err = _run(capsys, "--prometheus", f"http://127.0.0.1:{free_port()}", "--out", str(out))
    assert code == 1
    assert "--prometheus http://127.0.0.1:" in err
    assert "unreachable" in err
    assert len(err.splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == [output_names()[0]]
    assert (out / output_names()[0]).read_bytes() == b"the previous picture"


def test_a_server_that_is_not_prometheus_is_one_line_exit_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, not_prometheus: str
) -> None:
    code, err = _run(capsys, "--prometheus", not_prometheus, "--out", str(tmp_path / "png"))
    assert code == 1
    assert f"--prometheus {not_prometheus}" in err
    assert len(err.splitlines()) == 1
    assert list((tmp_path / "png").iterdir()) == []


def test_a_failed_write_leaves_no_file_of_the_set(tmp_path: Path) -> None:
    """All PNGs or none: when one file cannot be put in place (its name taken by a directory
    after the checks), no file of the set replaces the previous ones and no temporary file stays."""
    window = Window.of(T0, T0 + timedelta(hours=1))
    (tmp_path / output_names()[0]).write_bytes(b"the previous picture")
    (tmp_path / output_names()[5]).mkdir()
    with pytest.raises(OSError, match="is a directory"):
        render([PanelData(p, ()) for p in PANELS], window, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(output_names()[i] for i in (0, 5))
    assert (tmp_path / output_names()[0]).read_bytes() == b"the previous picture"


def test_durations_and_times() -> None:
    assert duration_s("90s") == 90.0
    assert duration_s("1h30m") == 5400.0
    assert duration_s("2d") == 172800.0
    for bad in ("", "6", "h", "6hours", "-1h", "1.5h"):
        with pytest.raises(ValueError, match="duration"):
            duration_s(bad)
    assert timestamp("2026-12-03T06:00") == T0  # no offset: UTC
    assert timestamp("2026-12-03T07:00+01:00") == T0
    assert timestamp(str(T0.timestamp())) == T0


def test_default_step_is_about_720_points() -> None:
    assert Window.of(T0, T0 + timedelta(hours=6)).step_s == 30
    assert Window.of(T0, T0 + timedelta(minutes=5)).step_s == 1


def test_legends_follow_grafana_templates() -> None:
    assert legend_text("{{node}} ({{source}})", {"node": "n1", "source": "rapl"}) == "n1 (rapl)"
    assert legend_text("p99 {{ verb }}", {"verb": "filter"}) == "p99 filter"
    assert legend_text("{{missing}}", {"a": "1"}) == '{a="1"}'  # empty legend: the labels, as Grafana


def test_a_gap_breaks_the_line() -> None:
    s = Series("x", np.array([0.0, 10.0, 20.0, 60.0, 70.0]), np.ones(5))
    t, v = _broken(s, 10)
    assert t.tolist() == [0.0, 10.0, 20.0, 30.0, 60.0, 70.0]
    assert np.isnan(v[3])
    assert np.isfinite(np.delete(v, 3)).all()
