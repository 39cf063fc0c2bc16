"""Typed factories for the seed protocol's v1 event types (``emitter_sdk.wire.V1_TYPES``).

Each factory is one :meth:`V1Factories.emit` call with the type, the entity and the
payload fields the seed report defines; extra keyword arguments join the payload.
They add nothing to ``emit()``'s guarantees or cost beyond building a small dict.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from emitter_sdk.validate import EntityArg


class V1Factories(ABC):
    """Mixin: one method per v1 type, each returning what ``emit()`` returns."""

    @abstractmethod
    def emit(
        self,
        type: str,  # noqa: A002 - the protocol's field name
        *,
        entity: EntityArg = None,
        payload: Mapping[str, Any] | None = None,
        source: str | None = None,
    ) -> bool:
        """Queue one event (see :meth:`emitter_sdk.Emitter.emit`)."""

    def task_started(self, task_id: str, **payload: Any) -> bool:
        return self.emit("task.started", entity=("task", task_id), payload=payload)

    def task_progress(self, task_id: str, progress: int, message: str = "", **extra: Any) -> bool:
        payload = {"progress": progress, "message": message, **extra}
        return self.emit("task.progress", entity=("task", task_id), payload=payload)

    def task_completed(self, task_id: str, **payload: Any) -> bool:
        return self.emit("task.completed", entity=("task", task_id), payload=payload)

    def task_failed(self, task_id: str, error: str, **extra: Any) -> bool:
        payload = {"error": error, **extra}
        return self.emit("task.failed", entity=("task", task_id), payload=payload)

    def provider_status_changed(self, provider_id: str, state: str, **details: Any) -> bool:
        payload = {"state": state, **details}
        return self.emit("provider.status_changed", entity=("provider", provider_id), payload=payload)

    def selfcheck_started(self, check_id: str, **payload: Any) -> bool:
        return self.emit("selfcheck.started", entity=("selfcheck", check_id), payload=payload)

    def selfcheck_progress(self, check_id: str, progress: int, message: str = "", **extra: Any) -> bool:
        payload = {"progress": progress, "message": message, **extra}
        return self.emit("selfcheck.progress", entity=("selfcheck", check_id), payload=payload)

    def selfcheck_completed(self, check_id: str, **payload: Any) -> bool:
        return self.emit("selfcheck.completed", entity=("selfcheck", check_id), payload=payload)

    def selfcheck_failed(self, check_id: str, error: str, **extra: Any) -> bool:
        payload = {"error": error, **extra}
        return self.emit("selfcheck.failed", entity=("selfcheck", check_id), payload=payload)
