"""``casa forecast backtest`` end to end on a tiny synthetic input, and its refusals."""

from __future__ import annotations

import json

import pytest

from casa_sched.cli.main import main


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(exit_.value.code or 0), out, err


def test_backtest_writes_a_table_a_json_and_a_plot(capsys, tmp_path):
    code, out, err = run_main(capsys,
        "forecast", "backtest", "--trace", "synthetic", "--functions", "12", "--epochs", "3", "--intensity", "2",
        "--forecasters", "oracle,last,ewma", "--time-budget", "0.2", "--out", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    assert "| last |" in out
    data = json.loads((tmp_path / "forecast-backtest.json").read_text())
    rows = {r["forecaster"]: r for r in data["rows"]}
    assert list(rows) == ["oracle", "last", "ewma"]
    # errors are measured on epochs 1..2 only; the oracle has none by definition
    assert rows["oracle"]["accuracy"]["pairs"] == 0
    assert rows["last"]["accuracy"]["pairs"] > 0
    assert rows["last"]["outcome"]["requests"] == rows["oracle"]["outcome"]["requests"]  # same true requests
    assert (tmp_path / "forecast-backtest.png").stat().st_size > 0
    assert "| last |" in (tmp_path / "forecast-backtest.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--forecasters", "oracle,psychic"], "--forecasters: unknown psychic", id="unknown-forecaster"),
        pytest.param(["--policy", "nope"], "unknown policy 'nope'", id="unknown-policy"),
        pytest.param(["--trace-dir", "/nonexistent"], "'--trace-dir'", id="missing-trace-dir"),
    ],
)
def test_backtest_refuses_bad_flags_with_one_line(capsys, args, message):
    code, out, err = run_main(capsys, "forecast", "backtest", *args)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert message in err
