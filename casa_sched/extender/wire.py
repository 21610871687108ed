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

**Limits on hostile input.** Everything the extender keeps beyond one request is keyed by text
from requests, so that text is checked before anything is cached: node names (``NodeNames[i]``,
``Nodes.items[i].metadata.name``) must be Kubernetes node names — DNS-1123 subdomains of at most
253 characters, which the API server enforces for every real Node — and the strings a pod's
assumed placement keeps are length-checked (name, ``spec.nodeName``: ≤ 253; namespace, function
label: ≤ 63, the Kubernetes limits; uid: ≤ 317, the length of namespace/name). A request naming more than ``max_nodes`` nodes is refused
(400), as is one whose body exceeds the byte limit (413, :mod:`casa_sched.extender.app`).
"""

from __future__ import annotations

import json
import json.encoder
import operator
import re
from dataclasses import dataclass
from typing import Any

from casa_sched.extender.memo import ByteBoundedMemo
from casa_sched.kube.objects import NodeInfo, ObjectError, PodInfo, json_type, parse_node, parse_pod
from casa_sched.kube.quantity import QUANTITY_PATTERN
from casa_sched.outputs import refuse_json_constant

_escape = json.encoder.encode_basestring_ascii  # C implementation: str → quoted, escaped JSON string

# Kubernetes' largest supported cluster is 5,000 nodes; three times that leaves room for growth
# and still bounds the work (and memory) one request can ask for.
DEFAULT_MAX_NODES = 15_000
MAX_NODE_NAME_CHARS = 253  # k8s.io/apimachinery validation.DNS1123SubdomainMaxLength
MAX_NAMESPACE_CHARS = 63  # a namespace is a DNS-1123 label
MAX_LABEL_VALUE_CHARS = 63  # validation.LabelValueMaxLength (the function label)
MAX_POD_KEY_CHARS = MAX_NAMESPACE_CHARS + 1 + MAX_NODE_NAME_CHARS  # a pod's key: its uid, else namespace/name
DNS1123_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_DNS1123_SUBDOMAIN = re.compile(DNS1123_SUBDOMAIN)
# Names, and whole node lists, seen valid, so that the check is a lookup on later calls.
NODE_NAMES_MEMO_BYTES = 4 * 2**20
NODE_LISTS_MEMO_BYTES = 4 * 2**20  # ~13 lists of 5,000 names of 60 characters


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


def _no_compute(key: str) -> bool:
    raise KeyError(key)  # _VALID_NODE_LISTS is filled with put() only


def _node_name_ok(name: str) -> bool:
    if len(name) > MAX_NODE_NAME_CHARS or _DNS1123_SUBDOMAIN.fullmatch(name) is None:
        raise ValueError(name)
    return True


_VALID_NODE_NAMES: ByteBoundedMemo[bool] = ByteBoundedMemo(_node_name_ok, NODE_NAMES_MEMO_BYTES)
_VALID_NODE_LISTS: ByteBoundedMemo[bool] = ByteBoundedMemo(_no_compute, NODE_LISTS_MEMO_BYTES)


def _node_name_error(path: str, name: str) -> BadRequestError:
    shown = repr(name[:40]) + ("..." if len(name) > 40 else "")
    return BadRequestError(
        f"{path}: {shown} ({len(name)} characters) is not a Kubernetes node name "
        f"(a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', at most {MAX_NODE_NAME_CHARS} characters)"
    )


def check_node_names(names: list[str], path: str) -> None:
    """Raise :class:`BadRequestError` unless every name is a Kubernetes node name.

    kube-scheduler sends the same node list on call after call, so a list seen valid is
    remembered whole (one join and one lookup instead of a lookup per name). The key — the count,
    NUL, the names joined by newlines — is the same for two lists only if they are equal or one
    holds a name with a newline or NUL, which no valid list does."""
    key = f"{len(names)}\x00" + "\n".join(names)
    if key in _VALID_NODE_LISTS:
        return
    try:
        all(map(_VALID_NODE_NAMES.__getitem__, names))  # C-speed when every name was seen before
    except ValueError:
        i, bad = next((i, n) for i, n in enumerate(names) if not _valid(n))
        raise _node_name_error(f"{path}[{i}]", bad) from None
    _VALID_NODE_LISTS.put(key, True)


def _valid(name: str) -> bool:
    try:
        return _node_name_ok(name)
    except ValueError:
        return False


def _check_pod(pod: PodInfo) -> None:
    """The strings an assumed placement keeps (for up to its TTL) have Kubernetes' lengths."""
    for field_path, value, limit in (
        ("metadata.name", pod.name, MAX_NODE_NAME_CHARS),
        ("metadata.namespace", pod.namespace, MAX_NAMESPACE_CHARS),
        ("metadata.uid", pod.key, MAX_POD_KEY_CHARS),
        ("spec.nodeName", pod.node_name or "", MAX_NODE_NAME_CHARS),
        ("metadata.labels (function)", pod.function or "", MAX_LABEL_VALUE_CHARS),
    ):
        if len(value) > limit:
            raise BadRequestError(f"ExtenderArgs.Pod.{field_path}: {len(value)} characters, at most {limit} allowed")


def parse_args(body: bytes, max_nodes: int = DEFAULT_MAX_NODES) -> ExtenderArgs:
    """Parse an ExtenderArgs body; raises :class:`BadRequestError` with the JSON path of the problem."""
    try:
        data = json.loads(body, parse_constant=refuse_json_constant)
    except RecursionError as exc:
        raise BadRequestError("request body is nested too deeply") from exc
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise BadRequestError(f"request body is not valid JSON: {str(exc)[:200]}") from exc
    if not isinstance(data, dict):
        raise BadRequestError(f"ExtenderArgs must be a JSON object, got {json_type(data)}")
    if "Pod" not in data:
        raise BadRequestError("ExtenderArgs.Pod: required")
    try:
        pod = parse_pod(data["Pod"], "ExtenderArgs.Pod")
    except ObjectError as exc:
        raise BadRequestError(str(exc)) from exc
    _check_pod(pod)

    raw_names = data.get("NodeNames")
    raw_nodes = data.get("Nodes")
    names_list: list[str] | None = None
    if raw_names is not None:
        if not isinstance(raw_names, list):
            raise BadRequestError(
                f"ExtenderArgs.NodeNames: expected an array of strings or null, got {json_type(raw_names)}"
            )
        if not set(map(type, raw_names)) <= _STR_ONLY:  # one C-speed pass; json yields exact str
            i, bad = next((i, n) for i, n in enumerate(raw_names) if type(n) is not str)
            raise BadRequestError(f"ExtenderArgs.NodeNames[{i}]: expected a string, got {json_type(bad)}")
        if len(raw_names) > max_nodes:
            raise BadRequestError(f"ExtenderArgs.NodeNames: {len(raw_names)} nodes, at most {max_nodes} allowed")
        check_node_names(raw_names, "ExtenderArgs.NodeNames")
        names_list = raw_names
    items: list[Any] | None = None
    infos: list[NodeInfo] | None = None
    envelope: dict[str, Any] | None = None
    if raw_nodes is not None:
        if not isinstance(raw_nodes, dict):
            raise BadRequestError(f"ExtenderArgs.Nodes: expected a NodeList object or null, got {json_type(raw_nodes)}")
        raw_items = raw_nodes.get("items")
        if raw_items is not None and not isinstance(raw_items, list):
            raise BadRequestError(f"ExtenderArgs.Nodes.items: expected an array or null, got {json_type(raw_items)}")
        items = raw_items or []
        if len(items) > max_nodes:
            raise BadRequestError(f"ExtenderArgs.Nodes.items: {len(items)} nodes, at most {max_nodes} allowed")
        try:
            infos = [parse_node(o, f"ExtenderArgs.Nodes.items[{i}]") for i, o in enumerate(items)]
        except ObjectError as exc:
            raise BadRequestError(str(exc)) from exc
        node_names = [n.name for n in infos]
        check_node_names(node_names, "ExtenderArgs.Nodes.items")  # path of the item; .metadata.name
        envelope = {k: v for k, v in raw_nodes.items() if k != "items"}

    if names_list is not None:  # nodeCacheCapable: names are authoritative, reply with names
        return ExtenderArgs(pod=pod, names=names_list, node_items=None, node_infos=None, nodelist_envelope=None)
    if items is not None and infos is not None:
        return ExtenderArgs(pod=pod, names=node_names, node_items=items, node_infos=infos, nodelist_envelope=envelope)
    return ExtenderArgs(pod=pod, names=[], node_items=None, node_infos=None, nodelist_envelope=None)


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


def _host_prefix(host: str) -> str:
    return '{"Host":' + _escape(host)


# node name → ``{"Host":"<escaped name>"`` (node names repeat on every call); 4 MiB holds the
# prefixes of ~20,000 names of 60 characters.
HOST_PREFIX_MEMO_BYTES = 4 * 2**20
_HOST_PREFIXES: ByteBoundedMemo[str] = ByteBoundedMemo(_host_prefix, HOST_PREFIX_MEMO_BYTES)


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


def openapi_components(max_nodes: int = DEFAULT_MAX_NODES) -> dict[str, Any]:
    """Schemas of the wire types: exactly the fields the parser checks; everything else is free."""
    string_map = {"type": "object", "additionalProperties": {"type": "string"}}
    node_name = {
        "type": "string",
        "description": "A Kubernetes node name: DNS-1123 subdomain.",
        "pattern": f"^{DNS1123_SUBDOMAIN}$",
        "maxLength": MAX_NODE_NAME_CHARS,
    }
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
        "NodeName": node_name,
        "Pod": {
            "type": "object",
            "description": "v1.Pod as kube-scheduler serialises it. Only these fields are read; all others are ignored.",
            "properties": {
                "metadata": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "maxLength": MAX_NODE_NAME_CHARS},
                        "namespace": {"type": "string", "maxLength": MAX_NAMESPACE_CHARS},
                        "uid": {"type": "string", "maxLength": MAX_POD_KEY_CHARS},
                        "labels": string_map,
                        "deletionTimestamp": {"type": ["string", "null"]},
                    },
                },
                "spec": {
                    "type": "object",
                    "properties": {
                        "nodeName": {"type": "string", "maxLength": MAX_NODE_NAME_CHARS},
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
                    "properties": {"name": _ref("NodeName"), "annotations": string_map},
                },
                "status": {"type": "object", "properties": {"allocatable": _ref("ResourceList")}},
            },
        },
        "NodeList": {
            "type": "object",
            "description": "v1.NodeList (nodeCacheCapable: false).",
            "properties": {
                "items": {"anyOf": [{"type": "array", "items": _ref("Node"), "maxItems": max_nodes}, {"type": "null"}]}
            },
        },
        "ExtenderArgs": {
            "type": "object",
            "description": "k8s.io/kube-scheduler/extender/v1.ExtenderArgs (Go field names, no json tags).",
            "required": ["Pod"],
            "properties": {
                "Pod": _ref("Pod"),
                "Nodes": {"anyOf": [_ref("NodeList"), {"type": "null"}]},
                "NodeNames": {
                    "anyOf": [{"type": "array", "items": _ref("NodeName"), "maxItems": max_nodes}, {"type": "null"}]
                },
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
