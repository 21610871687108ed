"""Leader election on a real coordination.k8s.io/v1 Lease (casa_sched.autoscaler.lease).

Short timings (lease 3 s, renew deadline 2 s, retry 0.5 s) keep the tests quick; the
assertions are on the Lease record and on who leads, never on how fast something happened:
the takeover after SIGKILL is checked against the protocol's lower bound (no standby may
acquire before the lease has gone unrenewed for its duration) and printed.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from casa_sched.autoscaler.lease import LeaderElector, LeaseRecord
from casa_sched.devcluster.controlplane import ControlPlane

pytestmark = pytest.mark.k8s

DURATION_S, RENEW_S, RETRY_S = 3, 2.0, 0.5
CHILD = Path(__file__).with_name("lease_child.py")


def _elector(api: Any, identity: str, namespace: str, **kwargs: Any) -> LeaderElector:
    return LeaderElector(api, identity, name="casa-autoscaler", namespace=namespace,
                         lease_duration_s=DURATION_S, renew_deadline_s=RENEW_S, retry_period_s=RETRY_S, **kwargs)


def _lease(cp: ControlPlane, namespace: str) -> LeaseRecord:
    return LeaseRecord.from_lease(cp.request(
        "GET", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/casa-autoscaler"))


@contextlib.contextmanager
def _child(cp: ControlPlane, identity: str, namespace: str, log_path: Path) -> Iterator[subprocess.Popen[str]]:
    """The child elector; its log (stderr) goes to ``log_path``, its protocol lines to stdout."""
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(CHILD), str(cp.kubeconfig), identity, "casa-autoscaler", namespace,
             str(DURATION_S), str(RENEW_S), str(RETRY_S)],
            stdout=subprocess.PIPE, stderr=log, text=True, cwd=Path(__file__).resolve().parents[2])
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()  # by its own pid
            proc.wait(10)
            assert proc.stdout is not None
            proc.stdout.close()


def _await_line(proc: subprocess.Popen[str], want: str, log_path: Path) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()  # blocks until the child prints (or exits: "")
    assert line == want, f"child printed {line!r} (exit {proc.poll()}); log:\n{log_path.read_text()[-2000:]}"


def test_one_leader_and_release_hands_over_at_once(k8s_control_plane: ControlPlane, k8s_api,
                                                   k8s_namespace) -> None:
    cp = k8s_control_plane
    a = _elector(k8s_api, "a", k8s_namespace)
    b = _elector(k8s_api, "b", k8s_namespace)
    assert a.try_acquire_or_renew() is True  # no Lease yet: a creates it
    assert b.try_acquire_or_renew() is False  # held and fresh
    first = _lease(cp, k8s_namespace)
    assert (first.holder, first.lease_duration_s, first.transitions) == ("a", DURATION_S, 0)
    assert first.acquire_time is not None
    assert first.renew_time == first.acquire_time

    assert a.try_acquire_or_renew() is True  # renew: renewTime moves, acquireTime stays
    renewed = _lease(cp, k8s_namespace)
    assert renewed.acquire_time == first.acquire_time
    assert renewed.renew_time is not None
    assert first.renew_time is not None
    assert renewed.renew_time >= first.renew_time
    assert int(renewed.resource_version) > int(first.resource_version)

    assert a.release() is True
    assert a.is_leader() is False
    gone = _lease(cp, k8s_namespace)
    assert (gone.holder, gone.lease_duration_s) == ("", 1)  # client-go's release record
    # The very next round of b acquires: no waiting for the 3 s lease to run out.
    assert b.try_acquire_or_renew() is True
    taken = _lease(cp, k8s_namespace)
    assert (taken.holder, taken.transitions) == ("b", 1)  # holder changed once: a -> b
    assert a.try_acquire_or_renew() is False


def test_losing_the_lease_calls_back_once(k8s_control_plane: ControlPlane, k8s_api, k8s_namespace) -> None:
    lost: list[str] = []
    a = _elector(k8s_api, "a", k8s_namespace, on_stopped_leading=lambda: lost.append("a"))
    assert a.try_acquire_or_renew() is True
    # Another writer takes the lease over (e.g. an operator, or a standby after a long pause of a).
    cp = k8s_control_plane
    path = f"/apis/coordination.k8s.io/v1/namespaces/{k8s_namespace}/leases/casa-autoscaler"
    lease = cp.request("GET", path)
    lease["spec"]["holderIdentity"] = "intruder"
    lease["spec"]["renewTime"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    cp.request("PUT", path, lease)
    assert a.try_acquire_or_renew() is False
    assert a.try_acquire_or_renew() is False
    assert lost == ["a"]


def test_stale_write_is_refused_by_resource_version(k8s_control_plane: ControlPlane, k8s_api,
                                                    k8s_namespace) -> None:
    """Two candidates read the same released lease; only the first write wins (HTTP 409 for the other)."""
    a = _elector(k8s_api, "a", k8s_namespace)
    b = _elector(k8s_api, "b", k8s_namespace)
    assert a.try_acquire_or_renew() is True
    assert a.release() is True
    stale = _lease(k8s_control_plane, k8s_namespace)  # b's view before a's next write
    assert a.try_acquire_or_renew() is True  # a takes it back first
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    body: Any = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "casa-autoscaler", "namespace": k8s_namespace,
                         "resourceVersion": stale.resource_version},
            "spec": LeaseRecord("b", DURATION_S, None, None, stale.transitions + 1).spec()}
    with pytest.raises(ApiException) as err:
        client.CoordinationV1Api(k8s_api).replace_namespaced_lease("casa-autoscaler", k8s_namespace, body)
    assert err.value.status == 409
    assert b.try_acquire_or_renew() is False  # and b's own round sees a's fresh lease
    assert _lease(k8s_control_plane, k8s_namespace).holder == "a"


def test_leader_that_cannot_renew_stops_leading_at_the_deadline(k8s_api, k8s_namespace) -> None:
    now = [1000.0]
    lost: list[bool] = []
    a = _elector(k8s_api, "a", k8s_namespace, monotonic=lambda: now[0], on_stopped_leading=lambda: lost.append(True))
    assert a.try_acquire_or_renew() is True
    now[0] += RENEW_S - 0.1  # 1.9 s since the last renew: still within the 2 s deadline
    assert a.is_leader() is True
    now[0] += 0.2  # 2.1 s: past the deadline (and 0.9 s before any standby may take over)
    assert a.is_leader() is False
    assert lost == [True]


def test_sigterm_releases_and_a_standby_takes_over(k8s_control_plane: ControlPlane, k8s_api,
                                                   k8s_namespace, tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    with _child(k8s_control_plane, "child", k8s_namespace, log) as child:
        _await_line(child, "leader", log)
        b = _elector(k8s_api, "b", k8s_namespace)
        assert b.try_acquire_or_renew() is False
        child.terminate()  # SIGTERM, to its own pid
        _await_line(child, "released", log)
        assert child.wait(30) == 128 + 15
        released = _lease(k8s_control_plane, k8s_namespace)
        assert released.holder == ""
        assert b.try_acquire_or_renew() is True  # at once: the first round after the release


def test_sigkilled_leader_is_replaced_after_the_lease_duration(k8s_control_plane: ControlPlane, k8s_api,
                                                               k8s_namespace, tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    b = _elector(k8s_api, "b", k8s_namespace)
    try:
        with _child(k8s_control_plane, "child", k8s_namespace, log) as child:
            _await_line(child, "leader", log)
            b.start()
            time.sleep(RETRY_S * 3)  # let b observe the child renewing for a few rounds
            assert not b.is_leader()
            child.kill()  # SIGKILL, to its own pid: no release
            child.wait(10)
            last = _lease(k8s_control_plane, k8s_namespace)
            assert last.holder == "child"
            deadline = time.monotonic() + DURATION_S + 60  # generous: a bound on waiting, not a speed check
            while not b.is_leader() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert b.is_leader(), f"b did not take over the lease of a SIGKILLed leader: {_lease(k8s_control_plane, k8s_namespace)}"
            taken = _lease(k8s_control_plane, k8s_namespace)
            assert (taken.holder, taken.transitions) == ("b", last.transitions + 1)
            assert last.renew_time is not None
            assert taken.acquire_time is not None
            # Safety: b waited out the full lease after the child's last renewal (same machine clock).
            lag = taken.acquire_time - last.renew_time
            assert lag >= timedelta(seconds=DURATION_S) - timedelta(milliseconds=50)
            print(f"takeover {lag.total_seconds():.2f} s after the last renewal "
                  f"(lease {DURATION_S} s + retry {RETRY_S} s = {DURATION_S + RETRY_S} s expected)")
    finally:
        b.stop(release=True)
