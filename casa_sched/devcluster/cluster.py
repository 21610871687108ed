"""``casa dev-cluster up|down|status``: the whole local stack as detached processes.

:func:`up` starts, all on 127.0.0.1 and in this order: etcd, kube-apiserver,
kube-controller-manager (:mod:`casa_sched.devcluster.controlplane`), ``casa extender`` watching
that API server (the real extender, as a subprocess), kube-scheduler with the extender attached
as in ``manifests/scheduler`` (``ignorable``, weight 5), KWOK and N KWOK nodes with the default
node's capacity (``cluster.cores_per_node``, ``cluster.memory_mb_per_node``) and its power curve
in ``casa.dev/power-model`` (architecture, "Models"), and a real Prometheus
(:mod:`casa_sched.devcluster.prometheus`) scraping the extender and every target registered with
:func:`register_target`. Then it writes the state file ``DIR/dev-cluster.json`` and returns; the
processes run on in their own sessions.

The state file records, for every process, its pid, its start time in clock ticks since boot
(``/proc/PID/stat`` field 22), its command line and the boot id. :func:`down` signals a pid only
while all three still match, so a pid the kernel has since given to another program is never
touched; :func:`status` reports each process up or down by the same test.

Every check that can fail is made before anything starts (:func:`preflight`): the node count,
a writable directory, no live cluster in it already, every binary present. Binaries come from
the caches ``make k8s-bins kwok-bin`` fill (``KUBEBUILDER_ASSETS``, ``CASA_KWOK_BIN`` honoured)
and are never built here.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from casa_sched.conventions import POWER_MODEL_ANNOTATION
from casa_sched.devcluster.controlplane import (
    ControlPlane,
    ExtenderSpec,
    HarnessError,
    Pki,
    Process,
    find_binaries,
    free_port,
    http_ok,
)
from casa_sched.devcluster.kwok import find_kwok
from casa_sched.devcluster.prometheus import PrometheusServer, find_tool
from casa_sched.models.power import DEFAULT_NODE_CURVE
from casa_sched.settings import CasaSettings

STATE_FILE = "dev-cluster.json"
STATE_VERSION = 1
NODE_PREFIX = "casa-node-"
MAX_NODES = 1000
EXTENDER_JOB = "casa-extender"


class DevClusterError(HarnessError):
    """A dev-cluster command cannot proceed; ``exit_code`` 2 for bad input, 1 otherwise."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def default_dir() -> Path:
    """``$XDG_STATE_HOME/casa-sched/dev-cluster`` (``~/.local/state/...`` when unset)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "casa-sched" / "dev-cluster"


# -- process identity ---------------------------------------------------------------------------


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def proc_identity(pid: int) -> tuple[int, tuple[str, ...]] | None:
    """``(start ticks, cmdline)`` of a live (not zombie) process ``pid``, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": field 3 (state) onwards
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19]), tuple(a.decode(errors="replace") for a in raw.split(b"\0")[:-1])


@dataclass(frozen=True)
class ProcessRecord:
    """One process ``up`` started, as the state file keeps it."""

    name: str
    pid: int
    start_ticks: int
    cmdline: tuple[str, ...]
    started_at: str
    log: str

    @classmethod
    def of(cls, proc: Process) -> ProcessRecord:
        ident = proc_identity(proc.pid)
        if ident is None:
            raise DevClusterError(f"{proc.name} (pid {proc.pid}) exited at start:\n{proc.log_tail()}")
        return cls(proc.name, proc.pid, ident[0], ident[1], datetime.now(UTC).isoformat(timespec="seconds"),
                   str(proc.log_path))

    def alive(self, boot: str, current_boot: str) -> bool:
        """True while pid ``pid`` is still the very process that was started (same boot, same
        start time, same command line)."""
        if boot != current_boot:
            return False
        return proc_identity(self.pid) == (self.start_ticks, self.cmdline)


@dataclass(frozen=True)
class DevClusterState:
    """What ``DIR/dev-cluster.json`` holds."""

    dir: str
    boot_id: str
    created_at: str
    kubeconfig: str
    api_server: str
    prometheus_url: str
    extender_url: str
    nodes: tuple[str, ...]
    processes: tuple[ProcessRecord, ...]
    version: int = STATE_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DevClusterState:
        procs = tuple(ProcessRecord(**{**p, "cmdline": tuple(p["cmdline"])}) for p in data["processes"])
        fields = {k: v for k, v in data.items() if k != "processes"}
        return cls(**{**fields, "nodes": tuple(fields["nodes"]), "processes": procs})

    def alive(self) -> dict[str, bool]:
        now = boot_id()
        return {p.name: p.alive(self.boot_id, now) for p in self.processes}


def state_path(directory: Path) -> Path:
    return directory / STATE_FILE


def load_state(directory: Path) -> DevClusterState | None:
    """The state file of ``directory``, None when there is none; raises on a corrupt one."""
    path = state_path(directory)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DevClusterError(f"cannot read {path}: {exc}") from None
    try:
        data = json.loads(text)
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"version {data.get('version')!r}, expected {STATE_VERSION}")
        return DevClusterState.from_dict(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise DevClusterError(f"{path} is not a dev-cluster state file ({exc})") from None


def _save_state(state: DevClusterState, directory: Path) -> Path:
    path = state_path(directory)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(state.to_json())
    tmp.replace(path)
    return path


# -- up -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Binaries:
    k8s_dir: Path
    kwok: Path
    prometheus: Path
    casa: Path


def _casa_executable() -> Path:
    sibling = Path(sys.executable).parent / "casa"
    if os.access(sibling, os.X_OK):
        return sibling
    found = shutil.which("casa")
    if found is None:
        raise DevClusterError("the `casa` console script is not installed beside this Python nor on PATH "
                              "(pip install 'casa-sched[extender]')")
    return Path(found)


def preflight(directory: Path, nodes: int) -> Binaries:
    """Every check of ``up`` that needs nothing started; raises :class:`DevClusterError`."""
    if not 1 <= nodes <= MAX_NODES:
        raise DevClusterError(f"--nodes {nodes}: expected an integer from 1 to {MAX_NODES}", 2)
    if directory.exists() and not directory.is_dir():
        raise DevClusterError(f"--dir {directory}: exists and is not a directory", 2)
    try:
        bins = Binaries(find_binaries(build=False), find_kwok(build=False), find_tool("prometheus"),
                        _casa_executable())
    except HarnessError as exc:
        raise DevClusterError(str(exc)) from None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise DevClusterError(f"--dir {directory}: not writable ({exc.strerror or exc})", 2) from None
    state = load_state(directory)
    if state is not None:
        running = [name for name, up in state.alive().items() if up]
        if running:
            raise DevClusterError(f"a dev cluster is already up in {directory} ({', '.join(running)} running); "
                                  f"`casa dev-cluster down --dir {directory}` first")
    return bins


def _clear_previous(directory: Path) -> None:
    """Remove what a previous (stopped) cluster in ``directory`` left: its etcd data (else its
    nodes would still exist), certificates, logs and Prometheus data."""
    for sub in ("etcd", "pki", "logs", "prometheus", "apiserver-certs", "kcm-certs", "kube-scheduler-certs"):
        path = directory / sub
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)


def up(
    directory: Path,
    nodes: int,
    *,
    settings: CasaSettings | None = None,
    progress: Callable[[str], None] = lambda _msg: None,
    timeout_s: float = 120.0,
    scrape_interval_s: float = 5.0,
) -> DevClusterState:
    """Start the dev cluster in ``directory`` with ``nodes`` KWOK nodes; returns its state (also
    written to the state file). Its Prometheus scrapes (and re-reads the targets of
    :func:`register_target`) every ``scrape_interval_s`` wall-clock seconds. On any failure
    every process started so far is stopped."""
    directory = directory.absolute()
    bins = preflight(directory, nodes)
    settings = settings or CasaSettings()
    _clear_previous(directory)
    state_path(directory).unlink(missing_ok=True)
    prom = PrometheusServer(directory / "prometheus", scrape_interval_s=scrape_interval_s, retention="15d", detach=True)
    progress("etcd, kube-apiserver, kube-controller-manager")
    cp = ControlPlane.start(directory, bin_dir=bins.k8s_dir, scheduler=False, timeout_s=timeout_s,
                            token=secrets.token_hex(24), detach=True)
    try:
        ext_port = free_port()
        progress("casa extender")
        ext = cp.spawn("casa-extender", [
            str(bins.casa), "extender", "--host", "127.0.0.1", "--port", str(ext_port),
            "--kubeconfig", str(cp.kubeconfig), "--log-level", "WARNING",
        ], env=cp.env())  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while not http_ok(f"http://127.0.0.1:{ext_port}/readyz"):
            if not ext.alive() or time.monotonic() > deadline:
                raise DevClusterError(f"casa extender did not become ready on port {ext_port}:\n{ext.log_tail()}")
            time.sleep(0.2)
        extender_url = f"http://127.0.0.1:{ext_port}"
        progress("kube-scheduler (with the extender)")
        cp.start_scheduler(ExtenderSpec(extender_url), timeout_s=timeout_s)
        progress(f"kwok and {nodes} node(s)")
        cp.start_kwok(bins.kwok, timeout_s=timeout_s)
        cluster = settings.cluster
        names = tuple(f"{NODE_PREFIX}{i}" for i in range(nodes))
        for name in names:
            cp.create_kwok_node(
                name, cpu=str(cluster.cores_per_node), memory=f"{round(cluster.memory_mb_per_node)}Mi",
                annotations={POWER_MODEL_ANNOTATION: DEFAULT_NODE_CURVE.to_json()}, timeout_s=timeout_s,
            )  # fmt: skip
        progress("prometheus")
        prom.scrape_targets = {EXTENDER_JOB: f"127.0.0.1:{ext_port}"}
        prom.start(timeout_s)
        assert prom.process is not None
        procs = [*cp.processes.values(), prom.process]
        _DETACHED.extend(procs)  # they outlive these handles; down/stop_process end them by their records
        state = DevClusterState(
            dir=str(directory), boot_id=boot_id(), created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            kubeconfig=str(cp.kubeconfig), api_server=cp.server, prometheus_url=prom.url, extender_url=extender_url,
            nodes=names, processes=tuple(ProcessRecord.of(p) for p in procs),
        )  # fmt: skip
        _save_state(state, directory)
    except BaseException:
        prom.stop()
        cp.stop()
        raise
    return state


# -- down, status, register ---------------------------------------------------------------------


def _signal_if_same(record: ProcessRecord, boot: str, sig: int) -> bool:
    if not record.alive(boot, boot_id()):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(record.pid, sig)
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):  # only our own children can be reaped
        os.waitpid(pid, os.WNOHANG)


def _stop_record(record: ProcessRecord, boot: str, sig: int, timeout_s: float) -> bool:
    """Signal ``record``'s process while it is still that process; SIGKILL after ``timeout_s``.
    False when it was down already."""
    if not _signal_if_same(record, boot, sig):
        return False
    deadline = time.monotonic() + timeout_s
    while record.alive(boot, boot_id()):
        _reap(record.pid)
        if time.monotonic() > deadline:
            _signal_if_same(record, boot, signal.SIGKILL)
            deadline = time.monotonic() + 5.0
        time.sleep(0.05)
    _reap(record.pid)
    return True


def down(directory: Path, *, timeout_s: float = 15.0) -> list[tuple[str, str]]:
    """Stop every process the state file of ``directory`` records, newest first: SIGTERM, then
    SIGKILL after ``timeout_s``; only while its identity still matches. Returns ``[(name,
    "stopped" | "was down")]``. Raises when there is no state file."""
    directory = directory.absolute()
    state = load_state(directory)
    if state is None:
        raise DevClusterError(f"no dev cluster in {directory} (no {STATE_FILE})")
    out: list[tuple[str, str]] = []
    for record in reversed(state.processes):
        stopped = _stop_record(record, state.boot_id, signal.SIGTERM, timeout_s)
        out.append((record.name, "stopped" if stopped else "was down"))
    # handles this Python process holds on them (an in-process `up`): a child of ours cannot have
    # had its pid reused before it was reaped, so closing the handle signals nothing else
    pids = {r.pid for r in state.processes}
    for proc in [p for p in _DETACHED if p.pid in pids]:
        proc.stop(timeout_s=1.0)
        _DETACHED.remove(proc)
    return out


def status(directory: Path) -> tuple[DevClusterState, dict[str, bool]]:
    """The state of ``directory`` and ``{process: up}``; raises when there is no state file."""
    directory = directory.absolute()
    state = load_state(directory)
    if state is None:
        raise DevClusterError(f"no dev cluster in {directory} (no {STATE_FILE})")
    return state, state.alive()


def _record(state: DevClusterState, name: str) -> ProcessRecord:
    for p in state.processes:
        if p.name == name:
            return p
    raise DevClusterError(f"{name!r} is not a process of this cluster; its processes: "
                          f"{', '.join(p.name for p in state.processes)}", 2)


def stop_process(directory: Path, name: str, *, timeout_s: float = 15.0, sig: int = signal.SIGTERM) -> bool:
    """Stop one recorded process (a fault drill: the extender, the API server, Prometheus ...),
    by its pid only while its identity matches; ``sig`` SIGKILL kills it without a grace period.
    Returns False when it was down already."""
    state = status(directory)[0]
    record = _record(state, name)
    return _stop_record(record, state.boot_id, sig, timeout_s)


def _ready_url(state: DevClusterState, name: str) -> str | None:
    return {"kube-apiserver": f"{state.api_server}/readyz", "casa-extender": f"{state.extender_url}/readyz",
            "prometheus": f"{state.prometheus_url}/-/ready"}.get(name)


def _probe(url: str) -> bool:
    if not url.startswith("https://"):
        return http_ok(url)
    ctx = ssl.create_default_context()  # the apiserver's own certificate on loopback; /readyz is public
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


_DETACHED: list[Process] = []


def start_process(directory: Path, name: str, *, timeout_s: float = 120.0) -> ProcessRecord:
    """Start a stopped recorded process again with its recorded command line (same ports, same
    data), wait until it answers where it has a readiness endpoint (the API server, the extender,
    Prometheus), and record its new pid in the state file."""
    state = status(directory)[0]
    record = _record(state, name)
    if record.alive(state.boot_id, boot_id()):
        raise DevClusterError(f"{name} is running (pid {record.pid})")
    env = dict(os.environ)
    env["KUBECONFIG"] = state.kubeconfig
    proc = Process(name, record.cmdline, Path(record.log).parent, env=env, detach=True)
    url = _ready_url(state, name)
    deadline = time.monotonic() + timeout_s
    while url is not None and not _probe(url):
        if not proc.alive() or time.monotonic() > deadline:
            tail = proc.log_tail(1500)
            proc.stop()
            raise DevClusterError(f"{name} did not become ready at {url}:\n{tail}")
        time.sleep(0.2)
    new = ProcessRecord.of(proc)
    _DETACHED.append(proc)  # it outlives this handle; down/stop_process end it by its record
    fresh = status(directory)[0]
    _save_state(replace(fresh, processes=tuple(new if p.name == name else p for p in fresh.processes)),
                Path(fresh.dir))
    return new


def attach(directory: Path) -> ControlPlane:
    """A :class:`ControlPlane` handle on the running cluster of ``directory`` for API calls,
    kubectl and the object helpers; it owns no process (its :meth:`~ControlPlane.stop` stops
    nothing)."""
    state = status(directory)[0]
    d = Path(state.dir)
    pki = Pki(*(d / "pki" / f for f in ("ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "sa.key", "sa.pub")))
    try:
        token = str(yaml.safe_load(Path(state.kubeconfig).read_text())["users"][0]["user"]["token"])
        bins = find_binaries(build=False)
    except (OSError, KeyError, IndexError, TypeError, yaml.YAMLError) as exc:
        raise DevClusterError(f"cannot attach to the cluster in {d}: {exc}") from None
    return ControlPlane(workdir=d, bin_dir=bins, token=token, api_port=urlsplit(state.api_server).port or 0, pki=pki)


def register_target(directory: Path, job: str, target: str, labels: dict[str, str] | None = None) -> Path:
    """Have the dev cluster's Prometheus scrape ``target`` (``host:port``, ``/metrics``) as ``job``."""
    state = load_state(directory.absolute())
    if state is None:
        raise DevClusterError(f"no dev cluster in {directory} (no {STATE_FILE})")
    return PrometheusServer(Path(state.dir) / "prometheus").write_target(job, target, labels)
