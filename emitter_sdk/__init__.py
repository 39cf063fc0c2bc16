"""emitter_sdk: publish events from Core to event-gateway over ZeroMQ.

Depends on pyzmq, msgspec and the standard library only; never imports ``gateway``.

    from emitter_sdk import Emitter
    with Emitter() as em:
        em.task_progress("abc", 50, "half")
    emitter_sdk.emit("task.started", entity=("task", "abc"))
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Mapping
from typing import Any

from emitter_sdk.emitter import DEFAULT_INGEST, Emitter, EmitterStats, InvalidEvent
from emitter_sdk.validate import EntityArg
from emitter_sdk.wire import V1_TYPES, Entity, WireEvent

__all__ = [
    "DEFAULT_INGEST",
    "V1_TYPES",
    "Emitter",
    "EmitterStats",
    "Entity",
    "InvalidEvent",
    "WireEvent",
    "default_emitter",
    "emit",
]

_default: Emitter | None = None
_default_lock = threading.Lock()


def default_emitter() -> Emitter:
    """The process-wide emitter behind :func:`emit`, created on first use."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Emitter()
                atexit.register(_default.close)
    return _default


def emit(
    type: str,  # noqa: A002 - the protocol's field name
    *,
    entity: EntityArg = None,
    payload: Mapping[str, Any] | None = None,
    source: str | None = None,
) -> bool:
    """Emit through the module-level default emitter (see :class:`Emitter`)."""
    return default_emitter().emit(type, entity=entity, payload=payload, source=source)
