"""``casa-profiler fit``: real SPECpower curves reproduced, bad samples and bad fits refused in one line."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from casa_profiler.cli import app
from casa_profiler.fit import MAX_DIP_W, FitRejectedError, fit, max_dip_w, read_samples
from typer.testing import CliRunner

from casa_sched.models.power import PowerCurve

KEYS = ["w_active_idle"] + [f"w_{p}pct" for p in range(10, 101, 10)]
runner = CliRunner()


def _write(tmp_path: Path, rows: Sequence[Sequence[object]], header: Sequence[str] = ("cores", "power_w")) -> Path:
    path = tmp_path / "samples.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([*header, "note"])
        for r in rows:
            w.writerow([*r, "extra columns are allowed"])
    return path


def _specpower(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize(
    ("system", "max_error_pct"),
    [
        # worst point of the 4th-degree fit, measured: the steep idle→10 % step dominates
        pytest.param("HPE ProLiant DL345 Gen10 Plus", 6.5, id="DL345-1x7763"),  # 6.41 % (6.7 W at 10 %)
        pytest.param("Dell PowerEdge R7525", 8.8, id="R7525-2x7702"),  # 8.73 % (15.7 W at 10 %)
        pytest.param("Dell PowerEdge R6515", 7.9, id="R6515-1x7702P"),  # 7.86 %
        pytest.param("Dell PowerEdge R7515", 1.7, id="R7515-1x7742"),  # 1.61 %
        pytest.param("HPE ProLiant DL380 Gen10 Plus", 3.7, id="DL380-2x8380"),  # 3.64 %
    ],
)
def test_fit_reproduces_real_specpower_curves(
    specpower_csv: Path, tmp_path: Path, system: str, max_error_pct: float
) -> None:
    (row,) = [r for r in _specpower(specpower_csv) if r["system"] == system]
    cores = int(row["cores"])
    # SPECpower's load levels read as shares of the cores: 0, 10 %, ..., 100 % → U = cores·i/10
    points = [(cores * i / 10, float(row[k])) for i, k in enumerate(KEYS)]
    out, png = tmp_path / "model.json", tmp_path / "fit.png"
    result = runner.invoke(app, ["fit", "--input", str(_write(tmp_path, points)), "--output", str(out),
                                 "--cores", str(cores), "--plot", str(png)])  # fmt: skip
    assert result.exit_code == 0, result.output
    model = json.loads(out.read_text())
    curve = PowerCurve.from_dict(model)
    assert curve.cores == cores
    assert max_dip_w(curve, 0, cores) <= MAX_DIP_W  # rising, up to fitting noise below a watt
    for u, w in points:
        assert abs(curve.power_w(u) - w) / w * 100 <= max_error_pct, (u, w, curve.power_w(u))
    # the report: R², RMSE, the cross-validated error, and one residual line per measured point
    assert model["fit"]["max_abs_error_pct"] <= max_error_pct
    assert model["fit"]["r2"] > 0.99
    assert model["fit"]["loo_rmse_w"] > model["fit"]["rmse_w"]  # held-out points are predicted worse
    assert len(model["fit"]["points"]) == 11
    assert "leave-one-out RMSE" in result.output
    assert sum("residual" in line for line in result.output.splitlines()) == 11
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_threshold_below_the_real_error_refuses_the_curve(specpower_csv: Path, tmp_path: Path) -> None:
    (row,) = [r for r in _specpower(specpower_csv) if r["system"] == "Dell PowerEdge R7525"]
    points = [(128 * i / 10, float(row[k])) for i, k in enumerate(KEYS)]
    result = runner.invoke(app, ["fit", "--input", str(_write(tmp_path, points)), "--output", str(tmp_path / "m.json"),
                                 "--max-error-pct", "5"])  # fmt: skip
    # its worst point is 8.7 % off > 5 %
    assert result.exit_code == 1
    assert "fit error 8.7 % at the worst point exceeds 5 %" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "m.json").exists()


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        pytest.param([(0, 100), (1, 120)], ("cores", "watts"), "missing column(s) power_w", id="missing-column"),
        pytest.param([(0, 100), (1, 120)], ("busy", "watts"), "missing column(s) cores, power_w", id="no-columns"),
        # the header is line 1, so the second data row is line 3
        pytest.param([(0, 100), ("two", 120)], ("cores", "power_w"), ":3: column 'cores': expected a number in [0, 4096], got 'two'", id="non-numeric-cores"),
        pytest.param([(0, 100), (1, "")], ("cores", "power_w"), ":3: column 'power_w': expected a number in [0, 20000], got ''", id="empty-cell"),
        pytest.param([(0, 100), (1, "1e308")], ("cores", "power_w"), "got '1e308'", id="implausible-power"),
        pytest.param([(0, 100), (1, "inf")], ("cores", "power_w"), "got 'inf'", id="infinite-power"),
        pytest.param([(0, 100), (-1, 90)], ("cores", "power_w"), ":3: column 'cores'", id="negative-cores"),
        pytest.param([], ("cores", "power_w"), "no data rows below the header", id="header-only"),
        pytest.param([(0, 100), (1, 120), (2, 130)], ("cores", "power_w"), "distinct core counts", id="too-few-levels"),
        # rises then falls: P = 100 + 40c − 5c² peaks at c = 4 and drops 80 W by c = 8
        pytest.param([(c, 100 + 40 * c - 5 * c * c) for c in range(9)], ("cores", "power_w"), "decreases", id="not-increasing"),
    ],
)  # fmt: skip
def test_bad_samples_are_refused_with_one_line(tmp_path, rows, header, message):
    result = runner.invoke(
        app, ["fit", "--input", str(_write(tmp_path, rows, header)), "--output", str(tmp_path / "m.json")]
    )
    assert result.exit_code == 1
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(None, "no such file", id="missing-file"),
        pytest.param("", "not a readable CSV", id="empty-file"),
    ],
)
def test_unreadable_input(tmp_path, content, message):
    path = tmp_path / "s.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(FitRejectedError, match=message):
        read_samples(path)


@pytest.mark.parametrize(
    ("zigzag_w", "threshold_pct", "refused"),
    [
        # P = 100 + 10c ± z (alternating): the quartic cannot follow the zig-zag, residuals ≈ z,
        # worst near P(1) = 110 W, so the error is about z / 110
        pytest.param(15.0, 5.0, True, id="15W-zigzag-vs-5pct"),  # ≈ 13 % > 5 %
        pytest.param(1.0, 5.0, False, id="1W-zigzag-vs-5pct"),  # ≈ 1 % < 5 %
    ],
)
def test_error_threshold(zigzag_w, threshold_pct, refused):
    cores = np.arange(0, 9, dtype=float)
    power = 100 + 10 * cores + np.where(cores % 2 == 0, zigzag_w, -zigzag_w)
    if refused:
        with pytest.raises(FitRejectedError, match=f"exceeds {threshold_pct:g} %"):
            fit(cores, power, 8, threshold_pct, source="t")
    else:
        assert fit(cores, power, 8, threshold_pct, source="t").report.max_abs_error_pct < threshold_pct


@pytest.mark.parametrize(
    ("n_points", "has_cv"),
    [
        pytest.param(5, False, id="5-points-no-spare"),  # five coefficients need all five points
        pytest.param(6, True, id="6-points-loo"),
    ],
)
def test_leave_one_out_needs_a_spare_point(n_points, has_cv):
    cores = np.linspace(0, 8, n_points)
    result = fit(cores, 50 + 5 * cores, 8, 10.0, source="t")
    assert (result.cv_rmse_w is not None) is has_cv
    if has_cv:
        # a straight line is inside the quartic family: every held-out point is predicted exactly
        assert result.cv_rmse_w == pytest.approx(0.0, abs=1e-6)
