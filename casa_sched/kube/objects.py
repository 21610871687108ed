"""The few fields casa-sched reads from Kubernetes objects, parsed from their JSON form. Pure.

Objects arrive as the Go API types serialise them (from the API server's list/watch, or inside
kube-scheduler's extender calls): lowerCamelCase keys, quantities as strings, absent optional
fields omitted, ``creationTimestamp: null`` and so on. Only the fields below are read and
type-checked; every other field is tolerated and ignored. A field of the wrong type raises
:class:`ObjectError` naming its JSON path, so that a malformed request becomes an HTTP 400.

The checks here are exactly the JSON Schema published for these objects in the extender's
OpenAPI document (:func:`casa_sched.extender.wire.openapi_components`), so that a body the schema
accepts is accepted here, and the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from casa_sched.conventions import function_of
from casa_sched.kube.quantity import QuantityError, parse_quantity

TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
_MAX_REQUEST = 1e18


class ObjectError(ValueError):
    """A Kubernetes object whose field has the wrong type; ``path`` is its JSON path."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


@dataclass(frozen=True, slots=True)
class PodInfo:
    """What the extender and the autoscaler need to know about one pod."""

    key: str  # metadata.uid, else namespace/name (pods in extender calls always carry a uid)
    namespace: str
    name: str
    function: str | None
    node_name: str | None  # spec.nodeName: the node it is bound to, None while pending
    cpu_cores: float  # effective request (containers vs init containers, plus overhead), cores
    memory_bytes: float  # effective request, bytes
    terminal: bool  # phase Succeeded or Failed: holds no resources any more
    terminating: bool  # deletionTimestamp set: going away, its slot is being freed


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node's name, allocatable resources (None when not reported) and power-model annotation."""

    name: str
    allocatable_cpu_cores: float | None
    allocatable_memory_bytes: float | None
    power_model: str | None  # raw JSON of the casa.dev/power-model annotation


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type (object, array, string, number, boolean, null)."""
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(value), type(value).__name__
    )


def _obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ObjectError(path, f"expected an object, got {json_type(value)}")
    return value


def _opt_obj(parent: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    value = parent.get(key)
    if value is None and key not in parent:
        return {}
    return _obj(value, f"{path}.{key}")


def _opt_str(parent: dict[str, Any], key: str, path: str) -> str | None:
    if key not in parent:
        return None
    value = parent[key]
    if not isinstance(value, str):
        raise ObjectError(f"{path}.{key}", f"expected a string, got {json_type(value)}")
    return value


def _str_map(parent: dict[str, Any], key: str, path: str) -> dict[str, str]:
    m = _opt_obj(parent, key, path)
    for k, v in m.items():
        if not isinstance(v, str):
            raise ObjectError(f"{path}.{key}.{k}", f"expected a string, got {json_type(v)}")
    return m


def _resources(parent: dict[str, Any], key: str, path: str) -> tuple[float, float]:
    """(cpu cores, memory bytes) of a ResourceList; every value must be a quantity string."""
    rl = _str_map(parent, key, path)
    values: dict[str, float] = {}
    for name, text in rl.items():
        try:
            values[name] = parse_quantity(text)
        except QuantityError as exc:
            raise ObjectError(f"{path}.{key}.{name}", str(exc)) from exc
    return values.get("cpu", 0.0), values.get("memory", 0.0)


def _containers_requests(spec: dict[str, Any], key: str, path: str) -> list[tuple[float, float]]:
    if key not in spec:
        return []
    containers = spec[key]
    if not isinstance(containers, list):
        raise ObjectError(f"{path}.{key}", f"expected an array, got {json_type(containers)}")
    out = []
    for i, raw in enumerate(containers):
        cpath = f"{path}.{key}[{i}]"
        res = _opt_obj(_obj(raw, cpath), "resources", cpath)
        out.append(_resources(res, "requests", f"{cpath}.resources"))
    return out


def _clamp(value: float) -> float:
    """``value`` limited to [0, 1e18]; NaN (inf − inf) becomes 0."""
    if value > _MAX_REQUEST:
        return _MAX_REQUEST
    return value if value >= 0.0 else 0.0


def parse_pod(value: Any, path: str = "Pod") -> PodInfo:
    """Parse a v1.Pod JSON object; raises :class:`ObjectError` on a wrongly typed field we read.

    The effective request follows the scheduler's rule: max(sum of containers, largest init
    container) per resource, plus the pod overhead. Missing requests count as 0.
    """
    pod = _obj(value, path)
    meta = _opt_obj(pod, "metadata", path)
    mpath = f"{path}.metadata"
    name = _opt_str(meta, "name", mpath) or ""
    namespace = _opt_str(meta, "namespace", mpath) or ""
    uid = _opt_str(meta, "uid", mpath)
    labels = _str_map(meta, "labels", mpath)
    deletion = meta.get("deletionTimestamp")
    if deletion is not None and not isinstance(deletion, str):
        raise ObjectError(f"{mpath}.deletionTimestamp", f"expected a string or null, got {json_type(deletion)}")

    spec = _opt_obj(pod, "spec", path)
    spath = f"{path}.spec"
    node_name = _opt_str(spec, "nodeName", spath) or None
    main = _containers_requests(spec, "containers", spath)
    init = _containers_requests(spec, "initContainers", spath)
    over_cpu, over_mem = _resources(spec, "overhead", spath)
    cpu = max(sum(c for c, _ in main), max((c for c, _ in init), default=0.0)) + over_cpu
    mem = max(sum(m for _, m in main), max((m for _, m in init), default=0.0)) + over_mem

    # Requests are kept in [0, 1e18]: a hostile or absurd quantity (negative, 1e400) must not turn
    # per-node sums into inf/NaN for every later decision.
    cpu = _clamp(cpu)
    mem = _clamp(mem)

    status = _opt_obj(pod, "status", path)
    phase = _opt_str(status, "phase", f"{path}.status")
    return PodInfo(
        key=uid or f"{namespace}/{name}",
        namespace=namespace,
        name=name,
        function=function_of(labels),
        node_name=node_name,
        cpu_cores=cpu,
        memory_bytes=mem,
        terminal=phase in TERMINAL_PHASES,
        terminating=deletion is not None,
    )


def parse_node(value: Any, path: str = "Node") -> NodeInfo:
    """Parse a v1.Node JSON object: metadata.name (required), the power-model annotation, allocatable."""
    from casa_sched.conventions import POWER_MODEL_ANNOTATION

    node = _obj(value, path)
    if "metadata" not in node:
        raise ObjectError(f"{path}.metadata", "required")
    meta = _obj(node["metadata"], f"{path}.metadata")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise ObjectError(f"{path}.metadata.name", "required: a non-empty string")
    annotations = _str_map(meta, "annotations", f"{path}.metadata")
    status = _opt_obj(node, "status", path)
    alloc = _str_map(status, "allocatable", f"{path}.status")
    cpu, mem = _resources(status, "allocatable", f"{path}.status")
    return NodeInfo(
        name=name,
        allocatable_cpu_cores=cpu if "cpu" in alloc else None,
        allocatable_memory_bytes=mem if "memory" in alloc else None,
        power_model=annotations.get(POWER_MODEL_ANNOTATION),
    )
