"""Type and entity checks for ``emit()``, with bounded caches of their verdicts.  Pure.

Invariants:
- A type verdict and a coerced ``(kind, id)`` tuple entity are cached process-wide,
  at most :data:`CACHE_MAX` of each; a full cache is emptied and refilled by what
  comes next, so memory is bounded whatever strings Core passes.
- Only hashable values are looked up; anything else is judged afresh (and refused
  if it is not a valid type or entity).
- Nothing here blocks or does I/O.  The caches are plain dicts shared by all threads:
  a lost update under a race only costs a recomputation of the same verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emitter_sdk.wire import Entity, is_valid_type

#: What ``emit(entity=...)`` takes: a ``(kind, id)`` tuple, a ``{"kind", "id"}`` mapping, an Entity, or None.
EntityArg = tuple[str, str] | Mapping[str, str] | Entity | None

#: Bound of each verdict cache.
CACHE_MAX = 4096
#: The caches, read directly by ``emit()``'s fast path (a hit costs one dict look-up).
TYPE_VERDICTS: dict[str, bool] = {}
ENTITIES: dict[tuple[str, str], Entity | None] = {}


def valid_type(event_type: object) -> bool:
    """True for a well-formed, non-reserved event type string (cached)."""
    try:
        ok: bool | None = TYPE_VERDICTS.get(event_type)  # type: ignore[call-overload]
    except TypeError:  # unhashable: not a type string
        return False
    if ok is None:
        ok = isinstance(event_type, str) and is_valid_type(event_type)
        _remember(TYPE_VERDICTS, event_type, ok)
    return ok


def coerce_entity(entity: EntityArg) -> Entity | None:
    """The wire :class:`Entity` for ``entity``; raises TypeError/ValueError for a malformed one.

    Tuples (the common, hashable form) are cached.
    """
    if entity is None:
        return None
    if entity.__class__ is tuple:
        ent = ENTITIES.get(entity)
        if ent is None:
            ent = _entity(entity)
            _remember(ENTITIES, entity, ent)
        return ent
    return _entity(entity)


def _entity(entity: EntityArg) -> Entity | None:
    if entity is None or isinstance(entity, Entity):
        return entity
    if isinstance(entity, tuple):
        kind, ident = entity
    else:
        kind, ident = entity["kind"], entity["id"]
    if not isinstance(kind, str) or not isinstance(ident, str) or not kind or not ident:
        raise ValueError(f"entity must be (kind, id) strings, got {entity!r}")
    return Entity(kind, ident)


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    """Remember ``value`` for ``key``, emptying a full cache first."""
    if len(cache) >= CACHE_MAX:
        cache.clear()
    cache[key] = value
