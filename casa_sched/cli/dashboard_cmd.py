"""``casa dashboard generate --out DIR``: write the Grafana dashboard JSON and its provisioning ConfigMap;
``casa dashboard render --prometheus URL --out DIR``: draw the same panels to PNG from Prometheus."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from casa_sched.cli.entry import command_app

dashboard_app = command_app(help="The Grafana dashboard of casa-sched's metrics.", no_args_is_help=True)


@dashboard_app.command("generate")
def generate(
    out: Annotated[Path, typer.Option(help="Directory for casa-sched.json and dashboard-configmap.yaml.")] = Path(
        "manifests/grafana"
    ),
) -> None:
    """Write the dashboard (Grafana JSON) and a ConfigMap labelled grafana_dashboard: "1"."""
    from casa_sched.accounting.dashboards import FILES, write
    from casa_sched.outputs import OutputError, check_output_dir, check_output_file

    try:
        check_output_dir("--out", out)
        for name in FILES:
            check_output_file("--out", out / name)
    except OutputError as exc:
        typer.echo(f"casa dashboard generate: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        paths = write(out)
    except OSError as exc:
        typer.echo(f"casa dashboard generate: cannot write --out {out}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo("wrote " + ", ".join(str(p) for p in paths))


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"casa dashboard render: {message}", err=True)
    return typer.Exit(code)


def _window_bounds(start: str | None, end: str | None, range_: str | None) -> tuple[datetime, datetime]:
    """``[start, end]`` from the flags: --start/--end, or --range ending at --end (default now); ValueError names the flag."""
    from casa_sched.accounting.dashboards import DEFAULT_RANGE
    from casa_sched.accounting.render import duration_s, timestamp

    if start is not None and range_ is not None:
        raise ValueError("give --start (with --end) or --range, not both")
    parsed: dict[str, datetime] = {}
    for flag, text in (("--start", start), ("--end", end)):
        if text is not None:
            try:
                parsed[flag] = timestamp(text)
            except ValueError as exc:
                raise ValueError(f"{flag}: {exc}") from None
    stop = parsed.get("--end", datetime.now(UTC))
    if "--start" in parsed:
        return parsed["--start"], stop
    try:
        span_s = duration_s(range_ if range_ is not None else DEFAULT_RANGE)
    except ValueError as exc:
        raise ValueError(f"--range: {exc}") from None
    try:
        return stop - timedelta(seconds=span_s), stop
    except OverflowError:
        raise ValueError(f"--range {range_}: reaches back before the year 1") from None


@dashboard_app.command("render")
def render(
    prometheus: Annotated[str, typer.Option(help="Prometheus base URL, e.g. http://127.0.0.1:9090.")],
    out: Annotated[Path, typer.Option(help="Directory for casa-sched.png (the dashboard) and one PNG per panel.")],
    start: Annotated[
        str | None, typer.Option(help="Start of the range: ISO 8601 (UTC unless an offset is given) or Unix seconds.")
    ] = None,
    end: Annotated[str | None, typer.Option(help="End of the range, as --start; unset: now.")] = None,
    range_: Annotated[
        str | None,
        typer.Option(
            "--range", help="Length of the range ending at --end, e.g. 30m, 6h, 1h30m; unset: 6h, as the dashboard."
        ),
    ] = None,
    step: Annotated[
        int | None,
        typer.Option(help="Seconds between points of every range query; unset: the range / 720, at least 1."),
    ] = None,
) -> None:
    """Draw every panel of the Grafana dashboard to PNG from Prometheus range queries (no Grafana needed)."""
    from casa_sched.accounting.dashboards import PANELS
    from casa_sched.accounting.render import Window, draw_dashboard, output_names
    from casa_sched.metricsources.base import MetricsUnavailable, PromClient
    from casa_sched.outputs import OutputError, check_output_dir, check_output_file, http_url

    if not http_url(prometheus):
        raise _fail(f"--prometheus must be an http(s) URL such as http://127.0.0.1:9090, got {prometheus!r}", 2)
    try:
        first, last = _window_bounds(start, end, range_)
        window = Window.of(first, last, step)
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    try:
        check_output_dir("--out", out)
        for name in output_names(PANELS):
            check_output_file("--out", out / name)
    except (OutputError, ValueError) as exc:
        raise _fail(str(exc), 2) from None
    client = PromClient(prometheus.rstrip("/"), timeout_s=10.0, retries=1)
    try:
        paths, missing = draw_dashboard(client, window, out)
    except MetricsUnavailable as exc:
        raise _fail(f"--prometheus {str(exc).splitlines()[0]}", 1) from None
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot write the outputs: {str(exc).splitlines()[0]}", 1) from None
    except KeyboardInterrupt:
        raise _fail("interrupted; no outputs written", 130) from None
    typer.echo(
        f"wrote {paths[0]} and {len(paths) - 1} panel PNGs in {out}"
        + (f"; no data: {', '.join(missing)}" if missing else "")
    )
