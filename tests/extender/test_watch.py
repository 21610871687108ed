"""List/watch bookkeeping (resourceVersion, 410 Gone re-list), the pod/node stores, and the plan
sources (ConfigMap through a fake API, file polling)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from casa_sched.contract.plan import Plan
from casa_sched.devcluster.payloads import plan_doc, real_pod
from casa_sched.extender.state import ExtenderState, PodStore
from casa_sched.kube.client import _iter_lines
from casa_sched.kube.plan_source import ConfigMapPlanStore, FilePlanSource
from casa_sched.kube.reflector import GoneError, ListResult, Reflector


def status(state: ExtenderState) -> str:
    """The plan status, read through a call (mypy would otherwise narrow it across mutations)."""
    return state.plan_status


def with_rv(obj: dict[str, Any], rv: str) -> dict[str, Any]:
    obj["metadata"]["resourceVersion"] = rv
    return obj


def pod(name: str, node: str, rv: str) -> dict[str, Any]:
    return with_rv(real_pod(name=name, uid=f"uid-{name}", node_name=node), rv)


class FakeAPI:
    """Scripted LIST results and WATCH streams; a watch script item may be an exception."""

    def __init__(self, lists: list[ListResult], watches: list[list[dict[str, Any]] | Exception]) -> None:
        self.lists = lists
        self.watches = watches
        self.list_calls = 0
        self.watch_rvs: list[str] = []
        self.reflector: Reflector | None = None

    def list(self) -> ListResult:
        self.list_calls += 1
        return self.lists.pop(0)

    def watch(self, rv: str) -> Iterator[dict[str, Any]]:
        self.watch_rvs.append(rv)
        script = self.watches.pop(0)
        last = not self.watches
        if isinstance(script, Exception):
            self._stop_if(last)
            raise script
        yield from script
        self._stop_if(last)  # last script: end the loop after it

    def _stop_if(self, last: bool) -> None:
        if last and self.reflector is not None:
            self.reflector._stop.set()


def run(api: FakeAPI, store: Any) -> tuple[Reflector, list[str]]:
    restarts: list[str] = []
    r = Reflector(
        "pods", api.list, api.watch, store, on_restart=lambda _res, why: restarts.append(why), min_backoff_s=0.001
    )
    api.reflector = r
    r.run()
    return r, restarts


def test_reflector_follows_resource_versions_and_relists_on_410() -> None:
    state = ExtenderState()
    api = FakeAPI(
        lists=[
            ListResult([pod("a", "n1", "10")], "10"),
            # after 410: a was deleted while we were away, c appeared
            ListResult([pod("b", "n2", "11"), pod("c", "n3", "30")], "31"),
        ],
        watches=[
            [
                {"type": "ADDED", "object": pod("b", "n2", "11")},
                {"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {"resourceVersion": "15"}}},
            ],  # ends: server-side timeout
            [{"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}}],
            [{"type": "MODIFIED", "object": pod("c", "n1", "32")}],
        ],
    )
    r, restarts = run(api, PodStore(state))
    assert api.list_calls == 2
    assert api.watch_rvs == ["10", "15", "31"]  # bookmark advanced the rv; re-list reset it
    assert restarts == ["timeout", "gone", "timeout"]
    assert r.resource_version == "32"
    assert r.synced.is_set()
    assert {k: p.node_name for k, p in state.pods.items()} == {"uid-b": "n2", "uid-c": "n1"}
    assert set(state.usage["n1"].functions.items()) == {("thumbnail", 1)}


def test_reflector_relists_when_the_watch_request_itself_is_gone_and_backs_off_on_errors() -> None:
    state = ExtenderState()
    api = FakeAPI(
        lists=[ListResult([pod("a", "n1", "5")], "5"), ListResult([], "40")],
        watches=[ConnectionResetError("reset"), GoneError("410"), []],
    )
    _, restarts = run(api, PodStore(state))
    assert restarts == ["error", "gone", "timeout"]
    assert api.watch_rvs == ["5", "5", "40"]  # an error keeps the rv; 410 forces a LIST
    assert state.pods == {}


def test_reflector_runs_in_a_thread_and_stops() -> None:
    started = threading.Event()

    def watcher(rv: str) -> Iterator[dict[str, Any]]:
        started.set()
        time.sleep(0.01)
        return iter(())

    r = Reflector("nodes", lambda: ListResult([], "1"), watcher, PodStore(ExtenderState())).start()
    assert started.wait(5)
    r.stop()
    assert r.stopped


def test_iter_lines_reassembles_events_split_across_chunks() -> None:
    class Resp:
        def stream(self, amt: Any = None, decode_content: Any = None) -> Iterator[bytes]:
            yield b'{"type":"ADDED","obj'
            yield b'ect":{}}\n{"type":"DEL'
            yield b'ETED","object":{}}\n\n{"type":"MODIFIED","object":{}}'

    assert [json.loads(x)["type"] for x in _iter_lines(Resp())] == ["ADDED", "DELETED", "MODIFIED"]


def configmap(data: dict[str, str] | None, rv: str, name: str = "casa-plan") -> dict[str, Any]:
    cm: dict[str, Any] = {"metadata": {"name": name, "namespace": "casa-system", "resourceVersion": rv}}
    if data is not None:
        cm["data"] = data
    return cm


def test_plan_configmap_watch_drives_the_extender_plan() -> None:
    state = ExtenderState()
    seen: list[str] = []

    def sink(plan: Plan | None, outcome: Any, detail: str) -> None:
        seen.append(outcome)
        state.set_plan(plan, outcome, detail)

    good = plan_doc({"thumbnail": ["n1"]})
    api = FakeAPI(
        lists=[ListResult([], "1")],  # no ConfigMap yet
        watches=[
            [
                {"type": "ADDED", "object": configmap({"plan.json": good}, "2")},
                {"type": "ADDED", "object": configmap({"plan.json": "x"}, "3", name="other")},  # not ours
                {"type": "MODIFIED", "object": configmap({"plan.json": "{broken"}, "4")},
                {"type": "MODIFIED", "object": configmap({"other-key": good}, "5")},
                {"type": "MODIFIED", "object": configmap({"plan.json": good.replace('"epoch": 7', '"epoch": 8')}, "6")},
            ]
        ],
    )
    run(api, ConfigMapPlanStore(sink))
    assert seen == ["missing", "ok", "invalid", "missing", "ok"]
    assert status(state) == "ok"
    assert state.plan_view is not None
    assert state.plan_view.plan.epoch == 8
    assert state.plan_view.slots == {"thumbnail": {"n1": 1}}


def test_plan_configmap_deleted_means_missing() -> None:
    state = ExtenderState()
    store = ConfigMapPlanStore(state.set_plan)
    store.replace([configmap({"plan.json": plan_doc({"f": ["n1"]})}, "1")])
    assert status(state) == "ok"
    store.apply("DELETED", configmap(None, "2"))
    assert status(state) == "missing"
    assert state.plan_view is None


def test_plan_file_is_reloaded_on_change(tmp_path: Path) -> None:
    state = ExtenderState()
    path = tmp_path / "plan.json"
    src = FilePlanSource(path, state.set_plan, poll_s=0.02)
    src.check()
    assert status(state) == "missing"
    path.write_text(plan_doc({"f": ["n1"]}))
    src.start()
    try:
        assert status(state) == "ok"
        path.write_text(plan_doc({"f": ["n1", "n2", "n2"]}))
        deadline = time.monotonic() + 5
        while (v := state.plan_view) is None or v.slots["f"] != {"n1": 1, "n2": 2}:
            assert time.monotonic() < deadline, "plan file change not picked up"
            time.sleep(0.02)
        path.write_text("{not json")
        deadline = time.monotonic() + 5
        while status(state) != "invalid":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert "plan is not valid JSON" in state.plan_detail
        path.unlink()
        deadline = time.monotonic() + 5
        while status(state) != "missing":
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        src.stop()


@pytest.mark.parametrize(
    ("event", "expected_nodes"),
    [
        pytest.param("ADDED", {"n1": 1}, id="bound-pod-counts"),
        pytest.param("DELETED", {}, id="deleted-pod-frees"),
    ],
)
def test_pod_events_update_counts(event: str, expected_nodes: dict[str, int]) -> None:
    state = ExtenderState()
    state.apply_pod("ADDED", pod("a", "n1", "1"))
    state.apply_pod(event, pod("a", "n1", "2"))
    assert {n: u.functions.get("thumbnail", 0) for n, u in state.usage.items() if u.functions} == expected_nodes


def test_listed_and_watched_objects_lose_managed_fields() -> None:
    from casa_sched.kube.client import RawListWatch

    class Resp:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def stream(self, amt: Any = None, decode_content: Any = None) -> Iterator[bytes]:
            yield self.data

        def release_conn(self) -> None:
            pass

    p = real_pod()
    assert p["metadata"]["managedFields"]

    def list_fn(**kwargs: Any) -> Resp:
        if kwargs.get("watch"):
            return Resp(json.dumps({"type": "ADDED", "object": p}).encode() + b"\n")
        return Resp(json.dumps({"metadata": {"resourceVersion": "9"}, "items": [p]}).encode())

    lw = RawListWatch(list_fn)
    listed = lw.list()
    assert listed.resource_version == "9"
    assert "managedFields" not in listed.items[0]["metadata"]
    (event,) = list(lw.watch("9"))
    assert "managedFields" not in event["object"]["metadata"]
