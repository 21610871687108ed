"""Live actuation of node power states: cordon, evict, annotate, the power hook (README "Node power management").

:func:`apply_power_states` is what the epoch loop calls after applying a plan: it reads every Node
(one LIST; the pods come from the epoch's :class:`~casa_sched.autoscaler.snapshot.LiveState`),
takes :func:`~casa_sched.autoscaler.power.decide`'s steps for each node the plan knows, and
reports them. Writes go through the caller's API client (the autoscaler's
:class:`~casa_sched.autoscaler.kubeapi.CountingApiClient`), so a steady state makes none and a
dry run makes none at all (nor runs a hook).

- **cordon**: one merge patch, ``spec.unschedulable = true`` and ``casa.dev/power-state =
  draining`` (+ ``casa.dev/power-state-since``);
- **evict**: the Eviction API (``POST pods/{name}/eviction``) for each function pod, so
  PodDisruptionBudgets hold: a 429 (the budget allows no disruption now) is retried on the next
  pass; then up to ``autoscaler.power_drain_timeout_s`` waiting for the pods to be gone;
- **power off**: in ``hook`` mode the ``power_off_command`` argv (no shell; ``{node}`` and the
  annotation placeholders substituted per argument; killed after ``power_hook_timeout_s``), in
  ``cluster-autoscaler`` mode one patch that sets
  ``cluster-autoscaler.kubernetes.io/scale-down-disabled = "false"`` and removes
  ``karpenter.sh/do-not-disrupt`` so the node autoscaler removes the now empty node; then
  ``power-state = sleeping``. A failed hook (non-zero exit, timeout, missing annotation) is
  recorded and the node stays cordoned and ``draining``: the next pass retries it;
- **power on**: the ``power_on_command`` (or, in ``cluster-autoscaler`` mode, both protection
  annotations back to ``"true"``), ``power-state = waking``; once the Node is Ready, **uncordon**:
  ``spec.unschedulable`` removed and ``power-state = on``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import string
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from casa_sched.autoscaler.adapters.base import AdapterError, WorkloadGone
from casa_sched.autoscaler.kubeapi import MERGE_PATCH, api_error, request_json
from casa_sched.autoscaler.power import (
    POWER_STATES,
    NodeDecision,
    NodeView,
    PodView,
    PowerState,
    Step,
    decide,
    node_view,
)
from casa_sched.autoscaler.snapshot import LiveState
from casa_sched.contract.plan import Plan
from casa_sched.conventions import (
    CA_SCALE_DOWN_DISABLED_ANNOTATION,
    KARPENTER_DO_NOT_DISRUPT_ANNOTATION,
    POWER_STATE_ANNOTATION,
    POWER_STATE_SINCE_ANNOTATION,
)
from casa_sched.metrics import CasaMetrics
from casa_sched.settings import AutoscalerSettings, CasaSettings

log = logging.getLogger(__name__)

DRAIN_POLL_S = 1.0


class HookError(RuntimeError):
    """A power hook that could not be run or did not succeed; the message says why."""


# -- the hook ---------------------------------------------------------------------------------------
def placeholders(settings: AutoscalerSettings) -> dict[str, str]:
    """``{name: annotation}`` from ``power_hook_placeholders`` (validated by the settings)."""
    return dict(pair.partition("=")[::2] for pair in settings.power_hook_placeholders)


def render_argv(template: Sequence[str], node: str, annotations: Mapping[str, str],
                names: Mapping[str, str]) -> list[str]:  # fmt: skip
    """``template`` with ``{node}`` and each ``{NAME}`` (the node's annotation ``names[NAME]``)
    substituted *per argument*: a value can never become a second argument or reach a shell.

    A value that starts with ``-`` (it would read as an option) or holds a control character is
    refused, as is a missing annotation: :class:`HookError`.
    """
    values: dict[str, str] = {"node": node}
    out: list[str] = []
    for arg in template:
        for _, name, _, _ in string.Formatter().parse(arg):
            if name is None or name in values:
                continue
            key = names.get(name)
            if key is None:
                raise HookError(f"hook argument {arg!r}: unknown placeholder {{{name}}}")
            if key not in annotations:
                raise HookError(f"node {node} has no annotation {key} (hook placeholder {{{name}}})")
            values[name] = annotations[key]
        for name, value in values.items():
            if value.startswith("-") or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
                raise HookError(f"node {node}: value {value!r} of {{{name}}} is not a safe hook argument "
                                "(starts with '-' or holds a control character)")  # fmt: skip
        out.append(arg.format_map(values))
    return out


def run_hook(argv: Sequence[str], timeout_s: float) -> str:
    """Run ``argv`` (no shell), killed after ``timeout_s``; its stdout on success, else :class:`HookError`.

    The hook runs in a session of its own and the whole process group is killed at the timeout:
    a wrapper script's children (an ``ipmitool`` it started) must not outlive it or hold its
    output pipes open.
    """
    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)  # fmt: skip
    except OSError as exc:
        raise HookError(f"{argv[0]}: cannot run: {exc.strerror or exc}") from None
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise HookError(f"{argv[0]}: killed after the {timeout_s:g} s timeout") from None
    if proc.returncode != 0:
        tail = (err or out).strip().splitlines()[-1:] or [""]
        raise HookError(f"{argv[0]} exited {proc.returncode}: {tail[0][:300]}")
    return out


# -- the report -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PowerAction:
    node: str
    action: str  # cordon | evict | power_off | power_on | uncordon | blocked | wait
    result: str  # applied | failed | throttled | gone | dry_run | skipped | waiting
    detail: str = ""

    def row(self) -> dict[str, str]:
        return {"node": self.node, "action": self.action, "result": self.result, "detail": self.detail}


@dataclass(frozen=True)
class PowerReport:
    """What one call did, node by node; ``states`` the power state of each node afterwards."""

    mode: str
    actions: tuple[PowerAction, ...] = ()
    states: Mapping[str, str] = field(default_factory=dict)
    writes: int = 0

    @property
    def failed(self) -> tuple[PowerAction, ...]:
        return tuple(a for a in self.actions if a.result == "failed")

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "writes": self.writes, "states": dict(self.states),
                "actions": [a.row() for a in self.actions]}  # fmt: skip


# -- the runner -------------------------------------------------------------------------------------
class _Runner:
    def __init__(self, api: Any, settings: AutoscalerSettings, dry_run: bool, metrics: CasaMetrics | None,
                 sleep: Callable[[float], None], clock: Callable[[], float],
                 blocked: dict[str, tuple[str, ...]]) -> None:  # fmt: skip
        self.api, self.s, self.dry_run, self.metrics = api, settings, dry_run, metrics
        self.blocked = blocked
        self.sleep, self.clock = sleep, clock
        self.names = placeholders(settings)
        self.actions: list[PowerAction] = []
        self.states: dict[str, str] = {}
        self.step = Step.CORDON  # the step under way, named when the API refuses it

    def record(self, node: str, action: str, result: str, detail: str = "") -> None:
        self.actions.append(PowerAction(node, action, result, detail))
        if self.metrics is not None and action != "wait":
            self.metrics.node_power_actions_total.labels(action=action, result=result).inc()

    def patch_node(self, node: str, spec: Mapping[str, Any] | None, annotations: Mapping[str, str | None]) -> None:
        body: dict[str, Any] = {"metadata": {"annotations": dict(annotations)}}
        if spec is not None:
            body["spec"] = dict(spec)
        try:
            request_json(self.api, "PATCH", f"/api/v1/nodes/{node}", body, content_type=MERGE_PATCH)
        except Exception as exc:
            raise api_error(exc, f"patch node {node}") from exc

    def state_patch(self, state: PowerState) -> dict[str, str | None]:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {POWER_STATE_ANNOTATION: state.value, POWER_STATE_SINCE_ANNOTATION: now}

    def node_pods(self, node: str) -> list[Any]:
        try:
            got = request_json(self.api, "GET", "/api/v1/pods", query={
                "fieldSelector": f"spec.nodeName={node},status.phase!=Succeeded,status.phase!=Failed"})
        except Exception as exc:
            raise api_error(exc, f"list pods on node {node}") from exc
        return list(got.get("items") or [])

    def get_node(self, node: str) -> Any:
        try:
            return request_json(self.api, "GET", f"/api/v1/nodes/{node}")
        except Exception as exc:
            raise api_error(exc, f"get node {node}") from exc

    # -- one node ---------------------------------------------------------------------------------
    def run(self, view: NodeView, want_sleep: bool) -> None:
        d = decide(view, want_sleep)
        if view.state_error:
            log.warning("node %s: %s", view.name, view.state_error)
        self.states[view.name] = (view.state or PowerState.ON).value
        if d.blocked and self.blocked.get(view.name) != d.blocked:
            self.blocked[view.name] = d.blocked
            log.warning("node %s is planned to sleep but runs %d pod(s) that are not function pods (%s): it is not "
                        "powered down", view.name, len(d.blocked), ", ".join(d.blocked[:5]))  # fmt: skip
            self.record(view.name, "blocked", "skipped", ", ".join(d.blocked[:5]))
        elif not d.blocked:
            self.blocked.pop(view.name, None)
        if not d.steps:
            if d.wait:
                self.record(view.name, "wait", "waiting", d.wait)
            return
        if self.dry_run:
            for step in d.steps:
                detail = ", ".join(f"{p.namespace}/{p.name}" for p in d.evict) if step is Step.EVICT else ""
                self.record(view.name, step.value, "dry_run", detail)
            return
        try:
            self.steps(view, d)
        except AdapterError as exc:
            log.warning("node %s: %s; retried on the next pass", view.name, exc)
            self.record(view.name, self.step.value, "failed", str(exc))

    def steps(self, view: NodeView, d: NodeDecision) -> None:
        node = view.name
        for step in d.steps:
            self.step = step
            if step is Step.CORDON:
                self.patch_node(node, {"unschedulable": True}, self.state_patch(PowerState.DRAINING))
                self.states[node] = PowerState.DRAINING.value
                self.record(node, "cordon", "applied")
            elif step is Step.EVICT:
                if not self.evict_all(node, d.evict):
                    return
                self.step = Step.POWER_OFF
                view = self.drained(view)
                again = decide(view, True)
                if again.blocked or Step.POWER_OFF not in again.steps:
                    self.record(node, "wait", "waiting", again.wait or "pods appeared; resumed next pass")
                    if again.blocked:
                        self.run(view, True)  # gives the node back, with its warning
                    return
                self.power_off(node, view)
            elif step is Step.POWER_OFF:
                self.power_off(node, view)
            elif step is Step.POWER_ON:
                if not self.power_on(node, view):
                    return
                self.step = Step.UNCORDON
                fresh = node_view(self.get_node(node), ())
                if fresh.ready:
                    self.uncordon(node)
                else:
                    self.record(node, "wait", "waiting", "node not Ready yet")
            elif step is Step.UNCORDON:
                self.uncordon(node)

    def uncordon(self, node: str) -> None:
        self.patch_node(node, {"unschedulable": None}, self.state_patch(PowerState.ON))
        self.states[node] = PowerState.ON.value
        self.record(node, "uncordon", "applied")

    def evict_all(self, node: str, pods: Sequence[PodView]) -> bool:
        """Evict ``pods``; False when one was refused (the node stays draining)."""
        ok = True
        for p in pods:
            body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": p.name, "namespace": p.namespace}}
            try:
                request_json(self.api, "POST", f"/api/v1/namespaces/{p.namespace}/pods/{p.name}/eviction", body)
                self.record(node, "evict", "applied", f"{p.namespace}/{p.name}")
            except Exception as exc:
                err = api_error(exc, f"evict pod {p.namespace}/{p.name}")
                if isinstance(err, WorkloadGone):
                    self.record(node, "evict", "gone", f"{p.namespace}/{p.name}")
                elif "HTTP 429" in str(err):
                    # a PodDisruptionBudget allows no disruption now: the next pass asks again
                    log.info("node %s: eviction of %s/%s refused by its disruption budget; retried next pass",
                             node, p.namespace, p.name)  # fmt: skip
                    self.record(node, "evict", "throttled", f"{p.namespace}/{p.name}")
                    ok = False
                else:
                    log.warning("node %s: %s", node, err)
                    self.record(node, "evict", "failed", str(err))
                    ok = False
        return ok

    def drained(self, view: NodeView) -> NodeView:
        """The node's view once its function pods are gone or the drain timeout passed."""
        deadline = self.clock() + self.s.power_drain_timeout_s
        while True:
            fresh = node_view(self.get_node(view.name), self.node_pods(view.name))
            if not fresh.function_pods or self.clock() + DRAIN_POLL_S > deadline:
                return fresh
            self.sleep(DRAIN_POLL_S)

    def power_off(self, node: str, view: NodeView) -> None:
        try:
            if self.s.power_mode == "hook":
                run_hook(render_argv(self.s.power_off_command, node, view.annotations, self.names),
                         self.s.power_hook_timeout_s)  # fmt: skip
                self.patch_node(node, None, self.state_patch(PowerState.SLEEPING))
            else:  # cluster-autoscaler: lift the protection; the node autoscaler removes the empty node
                self.patch_node(node, None, {**self.state_patch(PowerState.SLEEPING),
                                             CA_SCALE_DOWN_DISABLED_ANNOTATION: "false",
                                             KARPENTER_DO_NOT_DISRUPT_ANNOTATION: None})  # fmt: skip
        except HookError as exc:
            log.warning("node %s: power-off hook failed (%s); it stays cordoned and is retried next pass", node, exc)
            self.record(node, "power_off", "failed", str(exc))
            return
        self.states[node] = PowerState.SLEEPING.value
        self.record(node, "power_off", "applied")

    def power_on(self, node: str, view: NodeView) -> bool:
        try:
            if self.s.power_mode == "hook":
                run_hook(render_argv(self.s.power_on_command, node, view.annotations, self.names),
                         self.s.power_hook_timeout_s)  # fmt: skip
                self.patch_node(node, None, self.state_patch(PowerState.WAKING))
            else:
                self.patch_node(node, None, {**self.state_patch(PowerState.WAKING),
                                             CA_SCALE_DOWN_DISABLED_ANNOTATION: "true",
                                             KARPENTER_DO_NOT_DISRUPT_ANNOTATION: "true"})  # fmt: skip
        except HookError as exc:
            log.warning("node %s: power-on hook failed (%s); retried next pass", node, exc)
            self.record(node, "power_on", "failed", str(exc))
            return False
        self.states[node] = PowerState.WAKING.value
        self.record(node, "power_on", "applied")
        return True


def apply_power_states(
    api: Any,
    plan: Plan,
    snapshot: LiveState,
    settings: CasaSettings,
    dry_run: bool,
    *,
    metrics: CasaMetrics | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    blocked: dict[str, tuple[str, ...]] | None = None,
) -> PowerReport:
    """Bring every node the plan knows to its planned power state (module docstring).

    The plan knows the nodes of ``snapshot`` (the planner's nodes, sleeping ones included), the
    nodes it places containers on and its ``sleeping_nodes``; the others are left alone. With
    ``autoscaler.power_mode = none`` nothing is done. Raises :class:`AdapterError` only when the
    Nodes cannot be listed; a failure on one node is logged and reported, and the rest go on.
    ``blocked`` is the caller's memory of the nodes found blocked by non-function pods (node →
    those pods): a node is warned about and counted once while its blocking pods stay the same.
    """
    a = settings.autoscaler
    if a.power_mode == "none":
        return PowerReport("none")
    writes0 = int(getattr(api, "write_count", 0))
    try:
        items = request_json(api, "GET", "/api/v1/nodes").get("items") or []
    except Exception as exc:
        raise api_error(exc, "list nodes") from exc
    sleeping = set(plan.sleeping_nodes)
    known = {n.name for n in snapshot.nodes} | set(plan.nodes()) | sleeping
    pods_by_node: dict[str, list[Any]] = {}
    for p in snapshot.pods:
        if p.node is not None:
            pods_by_node.setdefault(p.node, []).append(p.raw)
    runner = _Runner(api, a, dry_run, metrics, sleep, clock, {} if blocked is None else blocked)
    for obj in sorted(items, key=lambda o: str((o.get("metadata") or {}).get("name"))):
        view = node_view(obj, pods_by_node.get(str((obj.get("metadata") or {}).get("name")), []))
        if view.name in known:
            runner.run(view, view.name in sleeping)
    if metrics is not None:
        for node, state in runner.states.items():
            for s in POWER_STATES:
                metrics.node_power_state.labels(node=node, state=s).set(1.0 if s == state else 0.0)
    return PowerReport(a.power_mode, tuple(runner.actions), dict(sorted(runner.states.items())),
                       int(getattr(api, "write_count", 0)) - writes0)  # fmt: skip
