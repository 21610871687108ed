"""Platform adapters: one module per serverless platform behind :class:`~.base.PlatformAdapter`.

Adapters are found by name (``deployment``, ``openfaas``, ``knative``), the names
``autoscaler.platforms`` lists. A module registers its adapter with :func:`register_adapter`;
:func:`create_adapter` imports ``casa_sched.autoscaler.adapters.<name>`` on first use, so a
platform's client code is loaded only when that platform is configured.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from casa_sched.autoscaler.adapters.base import AdapterError, PlatformAdapter, Workload, WorkloadGone
from casa_sched.settings import CasaSettings

__all__ = [
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
_REGISTRY: dict[str, AdapterFactory] = {}
KNOWN_PLATFORMS = ("deployment", "openfaas", "knative")


def register_adapter(name: str) -> Callable[[AdapterFactory], AdapterFactory]:
    """Class or factory decorator: make an adapter available as ``name``."""

    def deco(factory: AdapterFactory) -> AdapterFactory:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise UnknownPlatformError(f"platform adapter {name!r} registered twice")
        _REGISTRY[name] = factory
        return factory

    return deco


def _load(name: str) -> None:
    if name in _REGISTRY or not name.isidentifier():
        return
    try:
        importlib.import_module(f"casa_sched.autoscaler.adapters.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"casa_sched.autoscaler.adapters.{name}":
            raise  # the module exists but one of its own imports is missing


def create_adapter(name: str, context: AdapterContext) -> PlatformAdapter:
    """A fresh adapter for platform ``name``; :class:`UnknownPlatformError` lists the known ones."""
    _load(name)
    factory = _REGISTRY.get(name)
    if factory is None:
        raise UnknownPlatformError(f"unknown platform {name!r}; known: {', '.join(adapter_names())}")
    return factory(context)


def adapter_names() -> tuple[str, ...]:
    """Every platform with an adapter module in this build."""
    for name in KNOWN_PLATFORMS:
        _load(name)
    return tuple(sorted(_REGISTRY))
