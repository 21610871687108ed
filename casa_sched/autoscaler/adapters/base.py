"""What every platform adapter offers the autoscaler: find function workloads, set replicas.

A *workload* is the object that owns a function's pods and whose replica count the autoscaler
sets each epoch: a Deployment, an OpenFaaS function (itself a Deployment, scaled through the
gateway) or a Knative Revision (scaled through min-scale/max-scale). The plan names functions,
the adapter names objects; :class:`Workload` joins the two.

Adapters report whether they wrote, so that re-applying a plan can be checked to make no
write calls, and raise typed errors so the loop can tell "gone" (skip, one log line) from
"try again" (back off, resume the epoch's remaining actions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar, Protocol


class AdapterError(RuntimeError):
    """A platform call that failed; ``retryable`` for timeouts, 409, 429 and 5xx answers."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class WorkloadGone(AdapterError):  # noqa: N818 - reads as a state, like FileNotFoundError's cousins
    """The workload was deleted since it was discovered: skip it this epoch."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


@dataclass(frozen=True)
class Workload:
    """One function's workload as its platform exposes it."""

    function: str  # the function id the plan uses (casa.dev/function, Knative service, faas_function)
    platform: str  # the adapter's ``platform`` name
    namespace: str
    name: str  # the object the adapter scales: Deployment, OpenFaaS function or Knative Revision
    container: str  # the function's own container (resize target; never a sidecar like queue-proxy)
    pod_selector: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    replicas: int | None = None  # desired replicas when discovered (None: platform does not say)
    max_replicas: int | None = None  # a platform limit the plan cannot exceed (e.g. OpenFaaS CE: 5)


class PlatformAdapter(Protocol):
    """One serverless platform."""

    platform: ClassVar[str]

    def discover(self) -> Sequence[Workload]:
        """Every function workload of this platform in the cluster (raises :class:`AdapterError`)."""
        ...

    def scale(self, workload: Workload, replicas: int, *, dry_run: bool = False) -> bool:
        """Make ``replicas`` the workload's desired count; ``True`` iff a write call was made.

        Reads the current count first and writes nothing when it already matches (idempotent).
        With ``dry_run`` it reads but never writes, and returns whether it *would* write.
        Raises :class:`WorkloadGone` when the object no longer exists and :class:`AdapterError`
        for other failures.
        """
        ...
