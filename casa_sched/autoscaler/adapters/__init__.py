"""Platform adapters: one module per serverless platform behind :class:`~.base.PlatformAdapter`.

Adapters are found by name (``deployment``, ``openfaas``, ``knative``), the names
``autoscaler.platforms`` lists. A module registers its adapter in :data:`ADAPTERS` (the project's :class:`~casa_sched.registry.Registry`);
:func:`create_adapter` imports ``casa_sched.autoscaler.adapters.<name>`` on first use, so a
platform's client code is loaded only when that platform is configured.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from casa_sched.autoscaler.adapters.base import AdapterError, PlatformAdapter, Workload, WorkloadGone
from casa_sched.registry import Registry
from casa_sched.settings import CasaSettings

__all__ = [
    "ADAPTERS",
    "AdapterContext",
    "AdapterError",
    "AdapterFactory",
    "PlatformAdapter",
    "UnknownPlatformError",
    "Workload",
    "WorkloadGone",
    "adapter_names",
    "create_adapter",
    "register_adapter",
]


class UnknownPlatformError(ValueError):
    """A platform name no adapter module provides."""


@dataclass(frozen=True)
class AdapterContext:
    """What an adapter is built from: the (write-counting) Kubernetes ApiClient and the settings."""

    api_client: Any  # kubernetes.client.ApiClient
    settings: CasaSettings


AdapterFactory = Callable[[AdapterContext], PlatformAdapter]
# The explicit list of adapter modules; each registers its factory in ADAPTERS when imported.
KNOWN_PLATFORMS = ("deployment", "openfaas", "knative")
ADAPTERS: Registry[AdapterFactory] = Registry("platform", UnknownPlatformError)
register_adapter = ADAPTERS.register


def _load(name: str) -> None:
    if name in ADAPTERS or not name.isidentifier():
        return
    try:
        importlib.import_module(f"casa_sched.autoscaler.adapters.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"casa_sched.autoscaler.adapters.{name}":
            raise  # the module exists but one of its own imports is missing


def create_adapter(name: str, context: AdapterContext) -> PlatformAdapter:
    """A fresh adapter for platform ``name``; :class:`UnknownPlatformError` lists the known ones."""
    _load(name)
    if name not in ADAPTERS:
        adapter_names()  # so the error lists every platform of this build
    return ADAPTERS.get(name)(context)


def adapter_names() -> tuple[str, ...]:
    """Every platform with an adapter module in this build."""
    for name in KNOWN_PLATFORMS:
        _load(name)
    return ADAPTERS.names()
