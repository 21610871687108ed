"""``casa accounting`` refuses bad flags and files with one line naming them, exit 2, before it listens."""

from __future__ import annotations

from pathlib import Path

import pytest

from casa_sched.cli.main import main


@pytest.mark.parametrize(
    ("args", "content", "message"),
    [
        pytest.param(["--port", "0"], None, "--port must be 1..65535, got 0", id="port-zero"),
        pytest.param(["--interval-s", "0"], None, "--interval-s must be a finite number in [1, 86400], got 0", id="interval-zero"),
        pytest.param(["--interval-s", "1e-300"], None, "--interval-s must be a finite number in [1, 86400]", id="interval-tiny"),
        pytest.param(["--prometheus", "prom:9090"], None, "--prometheus must be an http(s) URL", id="url-no-scheme"),
        pytest.param(["--power-models"], "[1]", "expected a JSON object {node: power model}", id="models-not-object"),
        pytest.param(["--power-models"], '{"n1": {"cores": 4}}', "missing or non-numeric field", id="models-no-coeffs"),
        pytest.param(["--power-models"], "{", "--power-models", id="models-not-json"),
        pytest.param(["--t-ave"], '{"f": -1}', "expected a JSON object {function: seconds in (0, 86400]}", id="t-ave-negative"),
        pytest.param(["--utilisation", "some"], None, "--utilisation", id="utilisation-unknown"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], content: str | None, message: str
) -> None:
    if content is not None:
        path = tmp_path / "in.json"
        path.write_text(content)
        args = [*args, str(path)]
    with pytest.raises(SystemExit) as exit_info:
        main(["accounting", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1
