"""``casa dev-cluster up|down|status|register|stop|start``: a local control plane, the casa extender, KWOK
nodes and Prometheus on loopback (:mod:`casa_sched.devcluster.cluster`).

Exit codes: 0 done; 1 runtime failure (a binary missing, a cluster already up, a component that
did not start); 2 bad input; ``status`` exits 3 when any recorded process is down.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from casa_sched.cli.entry import command_app

devcluster_app = command_app(
    help="A local Kubernetes control plane with the casa extender, KWOK nodes and Prometheus, on loopback.",
    no_args_is_help=True,
)

DirFlag = Annotated[
    Path | None,
    typer.Option("--dir", help="Directory of the cluster's state file, kubeconfig, data and logs; "
                 "default $XDG_STATE_HOME/casa-sched/dev-cluster."),
]  # fmt: skip
STATUS_DOWN = 3
JOB_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$")
TARGET = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")


@contextmanager
def _errors(command: str) -> Iterator[None]:
    from casa_sched.devcluster.cluster import DevClusterError
    from casa_sched.devcluster.controlplane import HarnessError

    try:
        yield
    except DevClusterError as exc:
        typer.echo(f"casa dev-cluster {command}: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except (HarnessError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        typer.echo(f"casa dev-cluster {command}: {first}", err=True)
        raise typer.Exit(1) from None


def _dir(directory: Path | None) -> Path:
    from casa_sched.devcluster.cluster import default_dir

    return directory if directory is not None else default_dir()


@devcluster_app.command("up")
def up_command(
    nodes: Annotated[int, typer.Option("--nodes", help="KWOK nodes with the default node's capacity (1-1000).")] = 3,
    directory: DirFlag = None,
) -> None:
    """Start the cluster, print its kubeconfig path and Prometheus URL, and return (it keeps running)."""
    from casa_sched.devcluster import cluster

    where = _dir(directory)
    with _errors("up"):
        # cluster.up checks every input before it starts anything (bad input: one line, exit 2)
        state = cluster.up(where, nodes, progress=lambda msg: typer.echo(f"starting {msg}", err=True))
    typer.echo(f"kubeconfig: {state.kubeconfig}")
    typer.echo(f"prometheus: {state.prometheus_url}")
    typer.echo(f"extender: {state.extender_url}")
    typer.echo(f"export KUBECONFIG={state.kubeconfig}", err=True)


@devcluster_app.command("down")
def down_command(directory: DirFlag = None) -> None:
    """Stop exactly the processes `up` started (checked by pid, start time and command line)."""
    from casa_sched.devcluster import cluster

    with _errors("down"):
        for name, outcome in cluster.down(_dir(directory)):
            typer.echo(f"{name}: {outcome}")


@devcluster_app.command("status")
def status_command(
    directory: DirFlag = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document instead of lines.")] = False,
) -> None:
    """Each recorded process up or down; exit 3 when any is down."""
    from casa_sched.devcluster import cluster

    with _errors("status"):
        state, alive = cluster.status(_dir(directory))
    if as_json:
        typer.echo(json.dumps({
            "dir": state.dir, "kubeconfig": state.kubeconfig, "api_server": state.api_server,
            "prometheus_url": state.prometheus_url, "extender_url": state.extender_url, "nodes": list(state.nodes),
            "up": all(alive.values()),
            "processes": [{"name": p.name, "pid": p.pid, "up": alive[p.name], "started_at": p.started_at,
                           "log": p.log} for p in state.processes],
        }, indent=1))  # fmt: skip
    else:
        for p in state.processes:
            typer.echo(f"{p.name:<24} pid {p.pid:<8} {'up' if alive[p.name] else 'down'}")
        typer.echo(f"kubeconfig: {state.kubeconfig}")
        typer.echo(f"prometheus: {state.prometheus_url}")
    if not all(alive.values()):
        raise typer.Exit(STATUS_DOWN)


@devcluster_app.command("register")
def register_command(
    job: Annotated[str, typer.Argument(help="Prometheus job name of the target.")],
    target: Annotated[str, typer.Argument(help="host:port serving /metrics.")],
    directory: DirFlag = None,
) -> None:
    """Have the cluster's Prometheus scrape another exporter (picked up within a scrape interval)."""
    from casa_sched.devcluster import cluster

    if not JOB_NAME.match(job):
        typer.echo(f"casa dev-cluster register: JOB {job!r}: expected a name of letters, digits, _ and -", err=True)
        raise typer.Exit(2)
    if not TARGET.match(target) or not 1 <= int(target.rsplit(":", 1)[1]) <= 65535:
        typer.echo(f"casa dev-cluster register: TARGET {target!r}: expected host:port", err=True)
        raise typer.Exit(2)
    with _errors("register"):
        path = cluster.register_target(_dir(directory), job, target)
    typer.echo(f"wrote {path}")


@devcluster_app.command("stop")
def stop_command(
    name: Annotated[str, typer.Argument(help="Recorded process, e.g. casa-extender, kube-apiserver, prometheus.")],
    directory: DirFlag = None,
    kill: Annotated[bool, typer.Option("--kill", help="SIGKILL instead of SIGTERM.")] = False,
) -> None:
    """Stop one process of the cluster (a fault drill); `start NAME` brings it back."""
    import signal

    from casa_sched.devcluster import cluster

    with _errors("stop"):
        stopped = cluster.stop_process(_dir(directory), name, sig=signal.SIGKILL if kill else signal.SIGTERM)
    typer.echo(f"{name}: {'stopped' if stopped else 'was down'}")


@devcluster_app.command("start")
def start_command(
    name: Annotated[str, typer.Argument(help="Recorded process to start again with its recorded command line.")],
    directory: DirFlag = None,
) -> None:
    """Start a stopped process of the cluster again (same ports, same data)."""
    from casa_sched.devcluster import cluster

    with _errors("start"):
        record = cluster.start_process(_dir(directory), name)
    typer.echo(f"{name}: started (pid {record.pid})")
