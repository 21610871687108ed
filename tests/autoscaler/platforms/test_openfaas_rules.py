"""OpenFaaS adapter, pure parts: the gateway's JSON, CE clamping, label warnings, error classes.

The JSON shapes are faas-provider's ``FunctionStatus`` (``replicas`` and ``availableReplicas``
are ``omitempty``, ``labels``/``annotations`` are the pod template's); the clamps are those of
the CE gateway (``MakeHorizontalScalingHandler``: < 1 → 1, > 5 → 5) and faas-netes CE (0 → 400).
"""

from __future__ import annotations

from typing import Any

import pytest

from casa_sched.autoscaler.adapters.base import AdapterError, WorkloadGone
from casa_sched.autoscaler.adapters.openfaas import (
    FunctionListError,
    FunctionStatus,
    clamp_replicas,
    parse_function_list,
    scaling_label_warnings,
    status_error,
    workload_of,
)


@pytest.mark.parametrize(("body", "expected"), [
    pytest.param(None, [], id="null-list-is-empty"),
    pytest.param([], [], id="empty-list"),
    pytest.param([{"name": "resize", "replicas": 3, "availableReplicas": 2, "namespace": "openfaas-fn",
                   "labels": {"faas_function": "resize", "com.openfaas.scale.max": "4"}}],
                 [("resize", "openfaas-fn", 3, 2, {"faas_function": "resize", "com.openfaas.scale.max": "4"})],
                 id="full-record"),
    # replicas omitted (omitempty at 0); namespace omitted -> the adapter's namespace
    pytest.param([{"name": "idle"}], [("idle", "openfaas-fn", 0, 0, {})], id="omitempty-fields"),
])
def test_function_list_parses(body: Any, expected: list[tuple[str, str, int, int, dict[str, str]]]) -> None:
    got = parse_function_list(body, "openfaas-fn")
    assert [(f.name, f.namespace, f.replicas, f.available_replicas, dict(f.labels)) for f in got] == expected


@pytest.mark.parametrize(("body", "path"), [
    pytest.param({"name": "x"}, "functions: expected an array", id="object-not-array"),
    pytest.param([{"replicas": 1}], "functions[0].name", id="no-name"),
    pytest.param([{"name": "a"}, {"name": "b", "replicas": -1}], "functions[1].replicas", id="negative-replicas"),
    pytest.param([{"name": "a", "replicas": "2"}], "functions[0].replicas", id="string-replicas"),
    pytest.param([{"name": "a", "labels": {"k": 1}}], "functions[0].labels", id="non-string-label"),
])
def test_function_list_rejects_malformed_json_naming_the_path(body: Any, path: str) -> None:
    with pytest.raises(FunctionListError, match=path.replace("[", r"\[").replace("]", r"\]")):
        parse_function_list(body, "openfaas-fn")


@pytest.mark.parametrize(("asked", "edition", "expected", "warned"), [
    pytest.param(0, "ce", 1, True, id="ce-zero-refused-keep-one"),
    pytest.param(1, "ce", 1, False, id="ce-one"),
    pytest.param(5, "ce", 5, False, id="ce-five-is-the-cap"),
    pytest.param(9, "ce", 5, True, id="ce-above-five-capped"),
    pytest.param(0, "pro", 0, False, id="pro-scales-to-zero"),
    pytest.param(9, "pro", 9, False, id="pro-no-cap"),
])
def test_clamp_follows_the_edition(asked: int, edition: Any, expected: int, warned: bool) -> None:
    value, why = clamp_replicas(asked, edition)
    assert value == expected
    assert (why is not None) == warned


def test_workload_names_the_function_deployment_container_and_ce_ceiling() -> None:
    w = workload_of(FunctionStatus("resize", "openfaas-fn", 2, 2), "ce")
    # faas-netes: Deployment and its container are named after the function; pods carry faas_function
    assert (w.function, w.name, w.container, dict(w.pod_selector)) == ("resize", "resize", "resize",
                                                                         {"faas_function": "resize"})
    assert (w.replicas, w.max_replicas) == (2, 5)
    assert workload_of(FunctionStatus("resize", "openfaas-fn", 2, 2), "pro").max_replicas is None


@pytest.mark.parametrize(("labels", "expected"), [
    pytest.param({}, [], id="no-labels"),
    pytest.param({"com.openfaas.scale.factor": "20"}, [], id="factor-in-range"),
    pytest.param({"com.openfaas.scale.factor": "0"}, ["outside 1..100"], id="factor-zero-breaks-invocations"),
    pytest.param({"com.openfaas.scale.factor": "101"}, ["outside 1..100"], id="factor-above-100"),
    pytest.param({"com.openfaas.scale.factor": "abc"}, [], id="factor-not-integer-gateway-uses-default"),
    pytest.param({"com.openfaas.scale.min": "2", "com.openfaas.scale.max": "2"}, ["pull replicas back to 2"],
                 id="min-equals-max-pins"),
    pytest.param({"com.openfaas.scale.min": "1", "com.openfaas.scale.max": "4"}, [], id="range"),
])
def test_scaling_label_warnings(labels: dict[str, str], expected: list[str]) -> None:
    got = scaling_label_warnings(FunctionStatus("f", "openfaas-fn", 1, 1, labels))
    assert len(got) == len(expected)
    for message, fragment in zip(got, expected, strict=True):
        assert fragment in message


@pytest.mark.parametrize(("status", "gone_on_404", "kind", "retryable"), [
    pytest.param(404, True, WorkloadGone, False, id="404-function-gone"),
    pytest.param(404, False, AdapterError, False, id="404-on-list-is-a-wrong-url"),
    pytest.param(401, True, AdapterError, False, id="401-credentials"),
    pytest.param(403, True, AdapterError, False, id="403-credentials"),
    pytest.param(400, True, AdapterError, False, id="400-bad-request"),
    pytest.param(429, True, AdapterError, True, id="429-throttled"),
    pytest.param(500, True, AdapterError, True, id="500"),
    pytest.param(503, True, AdapterError, True, id="503"),
])
def test_status_errors_are_typed(status: int, gone_on_404: bool, kind: type[AdapterError], retryable: bool) -> None:
    url = "http://gw:8080/system/function/f"
    err = status_error("GET", url, status, "some\n body", gone_on_404=gone_on_404)
    assert type(err) is kind
    assert err.retryable is retryable
    assert url in str(err)
    assert f"HTTP {status}" in str(err)
    assert "some body" in str(err)
