"""One active autoscaler: leader election on a ``coordination.k8s.io/v1`` Lease.

The same protocol as client-go's ``tools/leaderelection`` (which kube-scheduler and
kube-controller-manager use), on a Lease in ``casa-system`` (name from
``settings.autoscaler.lease_name``):

- The Lease's ``spec`` is the record: ``holderIdentity``, ``leaseDurationSeconds``,
  ``acquireTime``, ``renewTime`` (RFC 3339 micro-times) and ``leaseTransitions`` (how many
  times the holder changed).
- Every write is a PUT carrying the ``resourceVersion`` that was read (optimistic
  concurrency): of two candidates racing for an expired lease, the API server accepts one and
  answers the other 409 Conflict, so two leaders never hold the same lease version.
- A candidate may take the lease when it has no holder (``holderIdentity`` empty: released),
  or when the record has not changed for ``leaseDurationSeconds`` *as measured by the
  candidate's own monotonic clock since it observed the current record* — not by comparing
  ``renewTime`` with its wall clock, so clock skew between machines does not matter.
- The leader renews (``renewTime`` = now) every ``retry_period_s``. If it cannot renew for
  ``renew_deadline_s`` (< lease duration), or it finds another holder, it stops being leader
  and calls ``on_stopped_leading`` once. ``renew_deadline_s < lease_duration_s`` makes the old
  leader stop acting before any standby may take over.
- :meth:`LeaderElector.release` (call it on SIGTERM; :func:`release_on_signals` installs that)
  writes an empty ``holderIdentity`` with ``leaseDurationSeconds: 1``, as client-go's
  ``ReleaseOnCancel`` does, so a standby takes over at its next retry instead of waiting out
  the lease. A leader killed with SIGKILL cannot release: a standby takes over once the lease
  has not been renewed for ``leaseDurationSeconds`` (plus up to one retry period).

Pure parts (:class:`LeaseRecord`, :func:`next_record`) are separated from the I/O
(:class:`LeaderElector`), which uses the kubernetes client's ``CoordinationV1Api``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from casa_sched.conventions import NAMESPACE

log = logging.getLogger(__name__)

_MICROTIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_microtime(t: datetime) -> str:
    """A ``metav1.MicroTime`` as the API server writes it (UTC, microseconds, ``Z``)."""
    return t.astimezone(UTC).strftime(_MICROTIME)


def parse_microtime(text: Any) -> datetime | None:
    """``metav1.MicroTime`` or ``metav1.Time`` text → aware UTC datetime; ``None`` if absent/invalid."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """The election record in a Lease's ``spec`` (plus the object's ``resourceVersion``)."""

    holder: str  # "" when nobody holds it (released)
    lease_duration_s: int
    acquire_time: datetime | None
    renew_time: datetime | None
    transitions: int
    resource_version: str = ""

    @classmethod
    def from_lease(cls, lease: Mapping[str, Any]) -> LeaseRecord:
        """From a Lease object's JSON (absent fields: no holder, duration 0, 0 transitions)."""
        spec = lease.get("spec") or {}
        duration = spec.get("leaseDurationSeconds")
        transitions = spec.get("leaseTransitions")
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            lease_duration_s=duration if isinstance(duration, int) else 0,
            acquire_time=parse_microtime(spec.get("acquireTime")),
            renew_time=parse_microtime(spec.get("renewTime")),
            transitions=transitions if isinstance(transitions, int) else 0,
            resource_version=str((lease.get("metadata") or {}).get("resourceVersion") or ""),
        )

    def spec(self) -> dict[str, Any]:
        """The Lease ``spec`` that stores this record."""
        out: dict[str, Any] = {"holderIdentity": self.holder, "leaseDurationSeconds": self.lease_duration_s,
                               "leaseTransitions": self.transitions}
        if self.acquire_time is not None:
            out["acquireTime"] = format_microtime(self.acquire_time)
        if self.renew_time is not None:
            out["renewTime"] = format_microtime(self.renew_time)
        return out

    def same_record(self, other: LeaseRecord | None) -> bool:
        """Whether ``other`` is the same election state (ignoring resourceVersion)."""
        return other is not None and replace(self, resource_version="") == replace(other, resource_version="")


def next_record(current: LeaseRecord | None, *, identity: str, lease_duration_s: int, now: datetime,
                expired: bool) -> LeaseRecord | None:
    """The record to write to acquire or renew the lease, or ``None`` when we must not (pure).

    ``expired``: the candidate has seen ``current`` unchanged for its lease duration (by its own
    monotonic clock). A holder other than ``identity`` whose lease is not expired keeps it.

    >>> t = datetime(2030, 1, 1, tzinfo=UTC)
    >>> held = LeaseRecord("a", 15, t, t, 3)
    >>> next_record(held, identity="b", lease_duration_s=15, now=t, expired=False) is None
    True
    >>> next_record(held, identity="b", lease_duration_s=15, now=t, expired=True).transitions
    4
    """
    if current is None:
        return LeaseRecord(identity, lease_duration_s, now, now, 0)
    if current.holder == identity:  # renew: same holder, same acquireTime, same count
        return LeaseRecord(identity, lease_duration_s, current.acquire_time or now, now, current.transitions,
                           current.resource_version)
    if current.holder and not expired:
        return None
    return LeaseRecord(identity, lease_duration_s, now, now, current.transitions + 1, current.resource_version)


def released_record(current: LeaseRecord, *, now: datetime) -> LeaseRecord:
    """What :meth:`LeaderElector.release` writes: no holder, a 1 s duration (client-go's rule)."""
    return LeaseRecord("", 1, current.acquire_time, now, current.transitions, current.resource_version)


class LeaseError(RuntimeError):
    """The Lease could not be read or written (API server unreachable, forbidden, ...)."""


class LeaderElector:
    """Acquire, renew and release one Lease; ``is_leader()`` says whether we may act.

    Either call :meth:`try_acquire_or_renew` from the loop once per ``retry_period_s``, or
    :meth:`start` a background thread that does it. Times are seconds; the defaults (15 s lease,
    10 s renew deadline, 2 s retry) are client-go's, which kube-scheduler and
    kube-controller-manager use. The Lease's namespace must exist; RBAC needs ``get``,
    ``create`` and ``update`` on ``leases`` in it.
    """

    def __init__(
        self,
        api_client: Any,
        identity: str,
        *,
        name: str = "casa-autoscaler",
        namespace: str = NAMESPACE,
        lease_duration_s: int = 15,
        renew_deadline_s: float = 10.0,
        retry_period_s: float = 2.0,
        on_started_leading: Callable[[], None] | None = None,
        on_stopped_leading: Callable[[], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not identity:
            raise ValueError("identity must be non-empty (e.g. the pod name)")
        if lease_duration_s < 1:
            raise ValueError(f"lease_duration_s must be >= 1 s, got {lease_duration_s}")
        if not 0 < retry_period_s < renew_deadline_s < lease_duration_s:
            raise ValueError(
                "need 0 < retry_period_s < renew_deadline_s < lease_duration_s, got "
                f"{retry_period_s} s, {renew_deadline_s} s, {lease_duration_s} s")
        self.api_client = api_client
        self.identity = identity
        self.name = name
        self.namespace = namespace
        self.lease_duration_s = lease_duration_s
        self.renew_deadline_s = renew_deadline_s
        self.retry_period_s = retry_period_s
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self._monotonic = monotonic
        self._wall = wall_clock
        self._lock = threading.RLock()
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0  # monotonic time when _observed last changed
        self._leader = False
        self._last_renew = -float("inf")  # monotonic time of our last successful write as leader
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- state --------------------------------------------------------------------------------
    def is_leader(self) -> bool:
        """True while we hold the lease and renewed it less than ``renew_deadline_s`` ago."""
        with self._lock:
            if self._leader and self._monotonic() - self._last_renew >= self.renew_deadline_s:
                self._lose("renew deadline passed")
            return self._leader

    @property
    def observed(self) -> LeaseRecord | None:
        """The last Lease record read or written."""
        with self._lock:
            return self._observed

    def _lose(self, why: str) -> None:
        if self._leader:
            self._leader = False
            log.warning("lease %s/%s: %s is no longer leader: %s", self.namespace, self.name, self.identity, why)
            if self.on_stopped_leading is not None:
                self.on_stopped_leading()

    def _observe(self, record: LeaseRecord | None) -> None:
        if record is None or not record.same_record(self._observed):
            self._observed_at = self._monotonic()
        self._observed = record

    # -- I/O ----------------------------------------------------------------------------------
    def _api(self) -> Any:
        from kubernetes import client

        api: Any = client.CoordinationV1Api(self.api_client)  # Any: raw JSON (_preload_content=False)
        return api

    def _read(self) -> LeaseRecord | None:
        from kubernetes.client.exceptions import ApiException

        try:
            resp = self._api().read_namespaced_lease(self.name, self.namespace, _preload_content=False,
                                                     _request_timeout=self.retry_period_s * 2)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return LeaseRecord.from_lease(json.loads(resp.data))

    def _write(self, record: LeaseRecord, *, create: bool) -> LeaseRecord:
        body: dict[str, Any] = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                "metadata": {"name": self.name, "namespace": self.namespace},
                                "spec": record.spec()}
        api = self._api()
        kwargs: dict[str, Any] = {"_preload_content": False, "_request_timeout": self.retry_period_s * 2}
        if create:
            resp = api.create_namespaced_lease(self.namespace, body, **kwargs)
        else:
            body["metadata"]["resourceVersion"] = record.resource_version  # optimistic concurrency
            resp = api.replace_namespaced_lease(self.name, self.namespace, body, **kwargs)
        return LeaseRecord.from_lease(json.loads(resp.data))

    def try_acquire_or_renew(self) -> bool:
        """One election round (read, then acquire or renew if allowed); returns :meth:`is_leader`.

        API errors and conflicts count as a failed round: a leader keeps leading until its renew
        deadline passes, then calls ``on_stopped_leading``.
        """
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        with self._lock:
            started = False
            try:
                current = self._read()
                self._observe(current)
                expired = (current is not None
                           and self._monotonic() - self._observed_at >= current.lease_duration_s)
                want = next_record(current, identity=self.identity, lease_duration_s=self.lease_duration_s,
                                   now=self._wall(), expired=expired)
                if want is None:
                    self._lose(f"lease held by {current.holder if current else '?'}")
                    return False
                written = self._write(want, create=current is None)
                self._observe(written)
                self._last_renew = self._monotonic()
                if not self._leader:
                    self._leader = started = True
                    log.info("lease %s/%s: %s became leader (transitions %d)", self.namespace, self.name,
                             self.identity, written.transitions)
            except (ApiException, HTTPError, OSError) as exc:
                status = getattr(exc, "status", None)
                why = "conflict (another candidate wrote first)" if status == 409 else f"{type(exc).__name__}: {exc}"
                log.debug("lease %s/%s: round failed: %s", self.namespace, self.name, why)
                if status == 409:
                    # someone else wrote: if it was a takeover, we are not leader any more
                    with contextlib.suppress(ApiException, HTTPError, OSError):
                        self._observe(self._read())
                        if self._observed is not None and self._observed.holder != self.identity:
                            self._lose(f"lease taken by {self._observed.holder}")
            leader = self.is_leader()
        if started and self.on_started_leading is not None:
            self.on_started_leading()
        return leader

    def release(self) -> bool:
        """Give the lease up at once if we hold it (empty holder); ``True`` iff we wrote.

        A standby then acquires at its next round instead of waiting ``lease_duration_s``.
        """
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        self._stop.set()
        with self._lock:
            if not self._leader or self._observed is None:
                return False
            try:
                written = self._write(released_record(self._observed, now=self._wall()), create=False)
            except (ApiException, HTTPError, OSError) as exc:
                log.warning("lease %s/%s: release failed (%s); standbys take over after %d s", self.namespace,
                            self.name, exc, self.lease_duration_s)
                self._lose("released (write failed)")
                return False
            self._observe(written)
            self._lose("released")
            return True

    # -- background renewal ---------------------------------------------------------------------
    def start(self) -> None:
        """Run :meth:`try_acquire_or_renew` every ``retry_period_s`` in a daemon thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"lease-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.try_acquire_or_renew()
            except Exception:  # a callback's bug must not end renewal silently
                log.exception("lease %s/%s: election round raised", self.namespace, self.name)
            self._stop.wait(self.retry_period_s)

    def stop(self, *, release: bool = True) -> None:
        """Stop the background thread; with ``release`` give the lease up."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.retry_period_s * 3)
            self._thread = None
        if release:
            self.release()


def release_on_signals(elector: LeaderElector,
                       signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT)) -> None:
    """On each of ``signals``: release the lease, then do what the previous handler did (for the
    defaults: exit with 128 + signal number, as an uncaught SIGTERM would). Main thread only."""
    for sig in signals:
        previous = signal.getsignal(sig)

        def handler(signum: int, frame: FrameType | None, _previous: Any = previous) -> None:
            elector.stop(release=True)
            if callable(_previous):
                _previous(signum, frame)
            elif _previous != signal.SIG_IGN:
                raise SystemExit(128 + signum)

        signal.signal(sig, handler)
