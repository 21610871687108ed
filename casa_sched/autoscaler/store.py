"""The plan store: ConfigMap ``casa-system/casa-plan``, key ``plan.json`` (what the extender watches).

Writes use optimistic concurrency: every update carries the resourceVersion it read, and on
409 Conflict the ConfigMap is read again and the change re-applied to what is there now (up to
``max_conflicts`` times). Annotations make a restart safe:

- ``casa.dev/plan-epoch`` and ``casa.dev/plan-hash``: the epoch and content hash of ``plan.json``;
- ``casa.dev/applied-epoch`` and ``casa.dev/applied-hash``: the plan the autoscaler finished
  applying. A restarted (or newly elected) autoscaler that finds the current epoch's plan
  stored and applied does not plan or apply that epoch again; one that finds it stored but not
  applied applies the stored plan instead of planning anew.

A second key, ``status.json``, records what could not be applied (a resize the node found
Infeasible, a workload that vanished) so it is visible without the autoscaler's logs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from casa_sched.autoscaler.adapters.base import AdapterError
from casa_sched.contract.plan import Plan, PlanError
from casa_sched.conventions import NAMESPACE, PLAN_CONFIGMAP_KEY, PLAN_CONFIGMAP_NAME

PLAN_EPOCH_ANNOTATION = "casa.dev/plan-epoch"
PLAN_HASH_ANNOTATION = "casa.dev/plan-hash"
APPLIED_EPOCH_ANNOTATION = "casa.dev/applied-epoch"
APPLIED_HASH_ANNOTATION = "casa.dev/applied-hash"
HELD_ANNOTATION = "casa.dev/held-functions"  # JSON list: functions kept as they were (no metrics)
STATUS_KEY = "status.json"


def plan_hash(plan_json: str) -> str:
    """Content hash of a plan document (sha256, first 16 hex digits)."""
    return hashlib.sha256(plan_json.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class StoredPlan:
    """What the ConfigMap holds: the plan (None when absent or unreadable) and its bookkeeping."""

    plan: Plan | None
    plan_hash: str | None
    applied_epoch: int | None
    applied_hash: str | None
    resource_version: str | None
    error: str | None = None  # why ``plan`` is None although a document is there
    held: tuple[str, ...] = ()  # functions the plan kept as they were, for lack of metrics

    @property
    def applied(self) -> bool:
        """The stored plan is the one last applied."""
        return self.plan is not None and self.applied_hash == self.plan_hash and self.applied_epoch == self.plan.epoch


def parse_configmap(obj: Mapping[str, Any] | None) -> StoredPlan:
    """Pure: a plan ConfigMap JSON object (or None: not found) → :class:`StoredPlan`."""
    if obj is None:
        return StoredPlan(None, None, None, None, None)
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    data = obj.get("data") or {}
    text = data.get(PLAN_CONFIGMAP_KEY)
    plan, error, digest = None, None, None
    if isinstance(text, str):
        digest = plan_hash(text)
        try:
            plan = Plan.from_json(text)
        except PlanError as exc:
            error = str(exc)
    applied_raw = annotations.get(APPLIED_EPOCH_ANNOTATION)
    try:
        applied_epoch = int(applied_raw) if applied_raw is not None else None
    except ValueError:
        applied_epoch = None
    try:
        held_raw = json.loads(annotations.get(HELD_ANNOTATION) or "[]")
        held = tuple(str(f) for f in held_raw) if isinstance(held_raw, list) else ()
    except json.JSONDecodeError:
        held = ()
    return StoredPlan(plan, digest, applied_epoch, annotations.get(APPLIED_HASH_ANNOTATION),
                      meta.get("resourceVersion"), error, held)  # fmt: skip


class PlanStore:
    """Reads and writes the plan ConfigMap through a (write-counting) ApiClient."""

    def __init__(
        self, api_client: Any, namespace: str = NAMESPACE, name: str = PLAN_CONFIGMAP_NAME, max_conflicts: int = 5
    ) -> None:
        self._api = api_client
        self.namespace = namespace
        self.name = name
        self.max_conflicts = max_conflicts
        self.conflicts = 0  # 409s seen (and retried) over this store's life

    @property
    def _path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/configmaps"

    def _get(self) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        from casa_sched.autoscaler.kubeapi import api_error, request_json

        try:
            return dict(request_json(self._api, "GET", f"{self._path}/{self.name}"))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise api_error(exc, f"read configmap {self.namespace}/{self.name}") from exc
        except Exception as exc:
            raise api_error(exc, f"read configmap {self.namespace}/{self.name}") from exc

    def read(self) -> StoredPlan:
        return parse_configmap(self._get())

    def _update(self, change: Mapping[str, Any]) -> StoredPlan:
        """Merge ``{"data": {...}, "annotations": {...}}`` into the ConfigMap (create it if absent),
        re-reading and re-applying on 409 Conflict; a no-op change makes no write."""
        from kubernetes.client.exceptions import ApiException

        from casa_sched.autoscaler.kubeapi import api_error, request_json

        what = f"configmap {self.namespace}/{self.name}"
        for _ in range(self.max_conflicts + 1):
            current = self._get()
            body = _merged(current, change, self.namespace, self.name)
            if current is not None and body == _comparable(current):
                return parse_configmap(current)
            try:
                if current is None:
                    written = request_json(self._api, "POST", self._path, body)
                else:
                    written = request_json(self._api, "PUT", f"{self._path}/{self.name}", body)
                return parse_configmap(written)
            except ApiException as exc:
                if exc.status == 409:  # someone wrote in between (or created it): read again
                    self.conflicts += 1
                    continue
                raise api_error(exc, f"write {what}") from exc
            except Exception as exc:
                raise api_error(exc, f"write {what}") from exc
        raise AdapterError(f"write {what}: still conflicting after {self.max_conflicts} re-reads", retryable=True)

    def store_plan(self, plan: Plan, held: tuple[str, ...] = ()) -> StoredPlan:
        """Write ``plan`` (and its epoch, hash and held functions); applied-* are left as they are."""
        text = plan.to_json()
        return self._update({
            "data": {PLAN_CONFIGMAP_KEY: text},
            "annotations": {PLAN_EPOCH_ANNOTATION: str(plan.epoch), PLAN_HASH_ANNOTATION: plan_hash(text),
                            HELD_ANNOTATION: json.dumps(sorted(held))},
        })  # fmt: skip

    def mark_applied(self, stored: StoredPlan, status: Mapping[str, Any]) -> StoredPlan:
        """Record that ``stored``'s plan is applied, with what was not (``status.json``)."""
        if stored.plan is None or stored.plan_hash is None:
            raise AdapterError("mark_applied: no stored plan", retryable=False)
        return self._update({
            "data": {STATUS_KEY: json.dumps(dict(status), sort_keys=True)},
            "annotations": {APPLIED_EPOCH_ANNOTATION: str(stored.plan.epoch),
                            APPLIED_HASH_ANNOTATION: stored.plan_hash},
        })  # fmt: skip


def _comparable(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = dict(obj.get("metadata") or {})
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {k: meta[k] for k in ("name", "namespace", "resourceVersion", "labels", "annotations") if k in meta},
        "data": dict(obj.get("data") or {}),
    }


def _merged(current: Mapping[str, Any] | None, change: Mapping[str, Any], namespace: str, name: str) -> dict[str, Any]:
    """The object to write: ``current`` (or a new ConfigMap) with ``change``'s keys set."""
    body: dict[str, Any] = _comparable(current) if current is not None else {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": {}}  # fmt: skip
    data: dict[str, Any] = dict(body["data"])
    data.update(change.get("data") or {})
    body["data"] = data
    meta: dict[str, Any] = dict(body["metadata"])
    annotations = dict(meta.get("annotations") or {})
    annotations.update(change.get("annotations") or {})
    meta["annotations"] = annotations
    body["metadata"] = meta
    return body
