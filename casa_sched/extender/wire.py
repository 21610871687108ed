"""kube-scheduler's extender wire format (k8s.io/kube-scheduler/extender/v1), parsed by hand.

The Go structs carry no json tags, so keys are the Go field names::

    ExtenderArgs         {"Pod": v1.Pod, "Nodes": v1.NodeList | null, "NodeNames": [string] | null}
    ExtenderFilterResult {"Nodes", "NodeNames", "FailedNodes": {node: reason},
                          "FailedAndUnresolvableNodes": {node: reason}, "Error": string}
    HostPriorityList     [{"Host": string, "Score": int 0..10}]

With ``nodeCacheCapable: true`` the scheduler sends ``NodeNames`` (``Nodes`` null) and reads
``NodeNames``; otherwise it sends the full ``Nodes`` list and reads ``Nodes.items``. We answer in
the mode we were asked in.

The hot path does not validate whole Pods and Nodes with pydantic: it ``json.loads`` the body
and checks only the fields it reads (:mod:`casa_sched.kube.objects`). :func:`openapi_components`
publishes exactly those checks as JSON Schema, so the OpenAPI document describes what is
accepted: every other field is allowed and ignored.
"""

from __future__ import annotations

import json
import json.encoder
import operator
from dataclasses import dataclass
from typing import Any

from casa_sched.kube.objects import NodeInfo, ObjectError, PodInfo, parse_node, parse_pod
from casa_sched.kube.quantity import QUANTITY_PATTERN

_escape = json.encoder.encode_basestring_ascii  # C implementation: str → quoted, escaped JSON string


class BadRequestError(ValueError):
    """A request the extender cannot parse; becomes HTTP ``status`` with ``{"error": message}``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class ExtenderArgs:
    pod: PodInfo
    names: list[str]
    node_items: list[Any] | None  # the request's Nodes.items (NodeList mode), else None
    node_infos: list[NodeInfo] | None
    nodelist_envelope: dict[str, Any] | None  # the NodeList minus items, echoed back

    @property
    def node_cache_capable(self) -> bool:
        return self.node_items is None


def parse_args(body: bytes) -> ExtenderArgs:
    """Parse an ExtenderArgs body; raises :class:`BadRequestError` with the JSON path of the problem."""
    try:
        data = json.loads(body)
    except RecursionError as exc:
        raise BadRequestError("request body is nested too deeply") from exc
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise BadRequestError(f"request body is not valid JSON: {str(exc)[:200]}") from exc
    if not isinstance(data, dict):
        raise BadRequestError(f"ExtenderArgs must be a JSON object, got {_jtype(data)}")
    if "Pod" not in data:
        raise BadRequestError("ExtenderArgs.Pod: required")
    try:
        pod = parse_pod(data["Pod"], "ExtenderArgs.Pod")
    except ObjectError as exc:
        raise BadRequestError(str(exc)) from exc

    raw_names = data.get("NodeNames")
    raw_nodes = data.get("Nodes")
    names_list: list[str] | None = None
    if raw_names is not None:
        if not isinstance(raw_names, list):
            raise BadRequestError(
                f"ExtenderArgs.NodeNames: expected an array of strings or null, got {_jtype(raw_names)}"
            )
        if not set(map(type, raw_names)) <= _STR_ONLY:  # one C-speed pass; json yields exact str
            i, bad = next((i, n) for i, n in enumerate(raw_names) if type(n) is not str)
            raise BadRequestError(f"ExtenderArgs.NodeNames[{i}]: expected a string, got {_jtype(bad)}")
        names_list = raw_names
    items: list[Any] | None = None
    infos: list[NodeInfo] | None = None
    envelope: dict[str, Any] | None = None
    if raw_nodes is not None:
        if not isinstance(raw_nodes, dict):
            raise BadRequestError(f"ExtenderArgs.Nodes: expected a NodeList object or null, got {_jtype(raw_nodes)}")
        raw_items = raw_nodes.get("items")
        if raw_items is not None and not isinstance(raw_items, list):
            raise BadRequestError(f"ExtenderArgs.Nodes.items: expected an array or null, got {_jtype(raw_items)}")
        items = raw_items or []
        try:
            infos = [parse_node(o, f"ExtenderArgs.Nodes.items[{i}]") for i, o in enumerate(items)]
        except ObjectError as exc:
            raise BadRequestError(str(exc)) from exc
        envelope = {k: v for k, v in raw_nodes.items() if k != "items"}

    if names_list is not None:  # nodeCacheCapable: names are authoritative, reply with names
        return ExtenderArgs(pod=pod, names=names_list, node_items=None, node_infos=None, nodelist_envelope=None)
    if items is not None and infos is not None:
        return ExtenderArgs(
            pod=pod, names=[n.name for n in infos], node_items=items, node_infos=infos, nodelist_envelope=envelope
        )
    return ExtenderArgs(pod=pod, names=[], node_items=None, node_infos=None, nodelist_envelope=None)


def _jtype(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(value), type(value).__name__
    )


def encode_filter(
    args: ExtenderArgs, kept: list[int], failed: dict[str, str], unresolvable: dict[str, str], error: str = ""
) -> bytes:
    if args.node_items is not None:
        nodes: dict[str, Any] | None = dict(args.nodelist_envelope or {})
        assert nodes is not None
        nodes["items"] = [args.node_items[i] for i in kept]
        names: list[str] | None = None
    else:
        nodes = None
        names = [args.names[i] for i in kept]
    return json.dumps(
        {
            "Nodes": nodes,
            "NodeNames": names,
            "FailedNodes": failed,
            "FailedAndUnresolvableNodes": unresolvable,
            "Error": error,
        },
        separators=(",", ":"),
    ).encode()


_SCORE_TAIL = tuple(f',"Score":{s}}}' for s in range(11))
_STR_ONLY = frozenset({str})


class _HostPrefixes(dict[str, str]):
    """node name → ``{"Host":"<escaped name>"``, memoised (node names repeat on every call)."""

    def __missing__(self, host: str) -> str:
        if len(self) > 200_000:  # bound the memo; node names are few, but hostile input is not
            self.clear()
        prefix = self[host] = '{"Host":' + _escape(host)
        return prefix


_HOST_PREFIXES = _HostPrefixes()


def encode_prioritize(scores: dict[str, int]) -> bytes:
    """``[{"Host": h, "Score": s}, ...]`` for the listed hosts, assembled from memoised pieces
    with C-level map/join (json.dumps of many small dicts costs more than the decision)."""
    body = ",".join(
        map(operator.add, map(_HOST_PREFIXES.__getitem__, scores), map(_SCORE_TAIL.__getitem__, scores.values()))
    )
    return ("[" + body + "]").encode()


def encode_error(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


# -- OpenAPI (JSON Schema 2020-12, as OpenAPI 3.1 uses) ------------------------------------------
def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def openapi_components() -> dict[str, Any]:
    """Schemas of the wire types: exactly the fields the parser checks; everything else is free."""
    string_map = {"type": "object", "additionalProperties": {"type": "string"}}
    resource_list = {
        "type": "object",
        "description": "v1.ResourceList: resource name → Kubernetes quantity string.",
        "additionalProperties": {"type": "string", "pattern": QUANTITY_PATTERN},
    }
    container = {
        "type": "object",
        "properties": {"resources": {"type": "object", "properties": {"requests": _ref("ResourceList")}}},
    }
    return {
        "ResourceList": resource_list,
        "Pod": {
            "type": "object",
            "description": "v1.Pod as kube-scheduler serialises it. Only these fields are read; all others are ignored.",
            "properties": {
                "metadata": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "namespace": {"type": "string"},
                        "uid": {"type": "string"},
                        "labels": string_map,
                        "deletionTimestamp": {"type": ["string", "null"]},
                    },
                },
                "spec": {
                    "type": "object",
                    "properties": {
                        "nodeName": {"type": "string"},
                        "containers": {"type": "array", "items": container},
                        "initContainers": {"type": "array", "items": container},
                        "overhead": _ref("ResourceList"),
                    },
                },
                "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
            },
        },
        "Node": {
            "type": "object",
            "description": "v1.Node. Only name, annotations (casa.dev/power-model) and allocatable are read.",
            "required": ["metadata"],
            "properties": {
                "metadata": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string", "minLength": 1}, "annotations": string_map},
                },
                "status": {"type": "object", "properties": {"allocatable": _ref("ResourceList")}},
            },
        },
        "NodeList": {
            "type": "object",
            "description": "v1.NodeList (nodeCacheCapable: false).",
            "properties": {"items": {"anyOf": [{"type": "array", "items": _ref("Node")}, {"type": "null"}]}},
        },
        "ExtenderArgs": {
            "type": "object",
            "description": "k8s.io/kube-scheduler/extender/v1.ExtenderArgs (Go field names, no json tags).",
            "required": ["Pod"],
            "properties": {
                "Pod": _ref("Pod"),
                "Nodes": {"anyOf": [_ref("NodeList"), {"type": "null"}]},
                "NodeNames": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
            },
        },
        "ExtenderFilterResult": {
            "type": "object",
            "required": ["Nodes", "NodeNames", "FailedNodes", "FailedAndUnresolvableNodes", "Error"],
            "additionalProperties": False,
            "properties": {
                "Nodes": {"anyOf": [_ref("NodeList"), {"type": "null"}]},
                "NodeNames": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
                "FailedNodes": string_map,
                "FailedAndUnresolvableNodes": string_map,
                "Error": {"type": "string"},
            },
        },
        "HostPriority": {
            "type": "object",
            "required": ["Host", "Score"],
            "additionalProperties": False,
            "properties": {"Host": {"type": "string"}, "Score": {"type": "integer", "minimum": 0, "maximum": 10}},
        },
        "HostPriorityList": {"type": "array", "items": _ref("HostPriority")},
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}},
        },
    }
