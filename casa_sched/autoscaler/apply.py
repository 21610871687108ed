"""Executes :mod:`casa_sched.autoscaler.actions` against the cluster, with backoff and resumption.

Every action is idempotent (it reads before it writes, or writes a value that is already its own
target), so a pass can be cut anywhere and resumed. A retryable failure (connection refused,
timeout, 409, 429, 5xx) backs off exponentially (``min_backoff_s`` doubling to ``max_backoff_s``)
and retries *the same action*, then carries on with the rest of the list; when the deadline
comes first the remaining actions are reported ``pending``, never dropped silently, and the loop
recomputes and retries them on its next pass. A workload or pod that was deleted meanwhile is
skipped with one log line. Other failures are reported ``failed`` with the API's answer.

Resizes go through a :class:`Resizer` (the ``pods/resize`` subresource); how each resize then
ends (applied, Deferred, Infeasible) is followed by :class:`ResizeTracker`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from casa_sched.autoscaler.actions import Action, DeletionCostAction, ResizeAction, ScaleAction
from casa_sched.autoscaler.adapters.base import AdapterError, PlatformAdapter, WorkloadGone
from casa_sched.conventions import POD_DELETION_COST_ANNOTATION
from casa_sched.metrics import CasaMetrics

log = logging.getLogger(__name__)

OutcomeKind = Literal["applied", "unchanged", "skipped", "failed", "pending"]


class Resizer(Protocol):
    """Asks the kubelet to resize one container of a pod in place (``PATCH pods/{name}/resize``)."""

    def resize(self, action: ResizeAction) -> None:
        """Raise :class:`AdapterError` (``WorkloadGone`` when the pod is gone) on failure."""
        ...


@dataclass(frozen=True)
class Outcome:
    action: Action
    outcome: OutcomeKind
    detail: str = ""

    def row(self) -> dict[str, Any]:
        return {**self.action.row(), "outcome": self.outcome, "detail": self.detail}


@dataclass
class Backoff:
    """Exponential backoff state: ``min_s``, doubling to ``max_s``; reset after a success."""

    min_s: float = 0.5
    max_s: float = 30.0
    current_s: float = field(default=0.0)

    def next_s(self) -> float:
        self.current_s = self.min_s if self.current_s == 0.0 else min(self.current_s * 2.0, self.max_s)
        return self.current_s

    def reset(self) -> None:
        self.current_s = 0.0


class Executor:
    """Runs actions in order; see the module docstring for the failure rules."""

    def __init__(
        self,
        api_client: Any,
        adapters: Mapping[str, PlatformAdapter],
        resizer: Resizer | None,
        metrics: CasaMetrics,
        *,
        dry_run: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        backoff: Backoff | None = None,
    ) -> None:
        self._api = api_client
        self._adapters = adapters
        self._resizer = resizer
        self._metrics = metrics
        self.dry_run = dry_run
        self._sleep = sleep
        self._clock = clock
        self.backoff = backoff or Backoff()

    def run(self, actions: Sequence[Action], deadline: float, phase: str = "apply") -> list[Outcome]:
        """Execute ``actions`` in order until done or ``deadline`` (on :attr:`clock`)."""
        out: list[Outcome] = []
        for i, action in enumerate(actions):
            while True:
                try:
                    outcome = self._one(action)
                    self.backoff.reset()
                    break
                except WorkloadGone as exc:
                    log.info("%s %s/%s skipped: %s", action.kind, action.function, _target(action), exc)
                    outcome = Outcome(action, "skipped", str(exc))
                    break
                except AdapterError as exc:
                    if not exc.retryable:
                        log.warning("%s %s failed: %s", action.kind, _target(action), exc)
                        outcome = Outcome(action, "failed", str(exc))
                        break
                    wait_s = self.backoff.next_s()
                    self._metrics.autoscaler_api_retries_total.labels(phase=phase).inc()
                    if self._clock() + wait_s > deadline:
                        log.warning("%s: %s; %d action(s) left pending for the next pass", phase, exc, len(actions) - i)
                        out.extend(Outcome(a, "pending", str(exc)) for a in actions[i:])
                        self._count(out[-(len(actions) - i) :])
                        return out
                    log.info("%s: %s; retrying in %.1f s", phase, exc, wait_s)
                    self._sleep(wait_s)
            out.append(outcome)
            self._count([outcome])
        return out

    def _count(self, outcomes: Sequence[Outcome]) -> None:
        for o in outcomes:
            self._metrics.autoscaler_actions_total.labels(kind=o.action.kind, outcome=o.outcome).inc()

    def _one(self, action: Action) -> Outcome:
        if isinstance(action, ScaleAction):
            adapter = self._adapters.get(action.workload.platform)
            if adapter is None:
                return Outcome(action, "failed", f"no adapter for platform {action.workload.platform}")
            wrote = adapter.scale(action.workload, action.replicas, dry_run=self.dry_run)
            return Outcome(action, "applied" if wrote else "unchanged")
        if self.dry_run:
            return Outcome(action, "applied", "dry run")
        if isinstance(action, DeletionCostAction):
            self._patch_pod(action.namespace, action.pod,
                            {"metadata": {"annotations": {POD_DELETION_COST_ANNOTATION: action.cost}}})  # fmt: skip
            return Outcome(action, "applied")
        if self._resizer is None:
            return Outcome(action, "failed", "in-place resize is not available")
        self._resizer.resize(action)
        return Outcome(action, "applied")

    def _patch_pod(self, namespace: str, name: str, body: Mapping[str, Any]) -> None:
        from casa_sched.autoscaler.kubeapi import MERGE_PATCH, api_error, request_json

        try:
            request_json(self._api, "PATCH", f"/api/v1/namespaces/{namespace}/pods/{name}", body,
                         content_type=MERGE_PATCH)  # fmt: skip
        except Exception as exc:
            raise api_error(exc, f"patch pod {namespace}/{name}") from exc

    def event(self, namespace: str, pod: str, uid: str | None, reason: str, message: str) -> None:
        """A Warning Event on the pod (best effort: a failure is logged, not raised)."""
        if self.dry_run:
            return
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{pod}.", "namespace": namespace},
            "involvedObject": {"kind": "Pod", "namespace": namespace, "name": pod, **({"uid": uid} if uid else {})},
            "reason": reason,
            "message": message[:1024],
            "type": "Warning",
            "source": {"component": "casa-autoscaler"},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        from casa_sched.autoscaler.kubeapi import request_json

        try:
            request_json(self._api, "POST", f"/api/v1/namespaces/{namespace}/events", body)
        except Exception as exc:
            log.warning("event %s on pod %s/%s not recorded: %s", reason, namespace, pod, exc)


def _target(action: Action) -> str:
    if isinstance(action, ScaleAction):
        return f"{action.workload.namespace}/{action.workload.name}"
    return f"{action.namespace}/{action.pod}"
