"""Subscription filters: type globs and ``kind:id`` entity selectors.  Pure.

A :class:`Filter` matches an event when its type matches one of the type globs
(none = every type) and its entity matches one of the entity selectors (none =
every event, with or without entity).  An event without entity never matches a
non-empty entity selector.  :meth:`Filter.intersect` narrows a client's filter
by what its credentials allow (auth), so the result is never wider than either.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.core.cache import BoundedCache

MAX_PATTERN_LEN = 200
_TYPE_GLOB_RE = re.compile(r"[a-z0-9_.*?\[\]!-]+")


class FilterError(ValueError):
    """A filter parameter is malformed; the message says which part."""


def parse_types(raw: str | None) -> tuple[str, ...]:
    """``"task.*,provider.status_changed"`` → ``("task.*", "provider.status_changed")``."""
    if not raw:
        return ()
    globs = tuple(part.strip() for part in raw.split(",") if part.strip())
    for glob in globs:
        if len(glob) > MAX_PATTERN_LEN or not _TYPE_GLOB_RE.fullmatch(glob):
            raise FilterError(f"bad type glob {glob[:40]!r}")
    return globs


def parse_entities(raw: str | None) -> tuple[tuple[str, str], ...]:
    """``"task:abc,provider:*"`` → ``(("task", "abc"), ("provider", "*"))``."""
    if not raw:
        return ()
    out = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        kind, sep, ident = part.partition(":")
        if not sep or not kind or not ident or len(part) > MAX_PATTERN_LEN:
            raise FilterError(f"bad entity selector {part[:40]!r} (want kind:id)")
        out.append((kind, ident))
    return tuple(out)


@dataclass(frozen=True)
class Filter:
    """What one client wants to see (or may see)."""

    types: tuple[str, ...] = ()
    entities: tuple[tuple[str, str], ...] = ()
    #: For ``intersect``: an extra allowed-types constraint (credentials).
    allowed_types: tuple[str, ...] = ()
    allowed_entities: tuple[tuple[str, str], ...] = ()
    _type_cache: BoundedCache[str, bool] = field(default_factory=BoundedCache, compare=False, repr=False)

    @property
    def key(self) -> tuple[object, ...]:
        """Equal keys ⇔ equal selections: fan-out shares encoded batches by key."""
        return (self.types, self.entities, self.allowed_types, self.allowed_entities)

    @property
    def matches_all(self) -> bool:
        return not (self.types or self.entities or self.allowed_types or self.allowed_entities)

    def matches(self, type_: str, kind: str | None, eid: str | None) -> bool:
        ok = self._type_cache.get(type_)
        if ok is None:
            ok = self._type_cache.put(type_, _glob_any(self.types, type_) and _glob_any(self.allowed_types, type_))
        if not ok:
            return False
        return _entity_any(self.entities, kind, eid) and _entity_any(self.allowed_entities, kind, eid)

    def intersect(self, allowed_types: Iterable[str] = (), allowed_entities: Iterable[tuple[str, str]] = ()) -> Filter:
        """This filter further limited to what credentials allow (empty = no limit)."""
        return Filter(
            self.types,
            self.entities,
            tuple(allowed_types) or self.allowed_types,
            tuple(allowed_entities) or self.allowed_entities,
        )


def _glob_any(globs: tuple[str, ...], value: str) -> bool:
    return not globs or any(fnmatch.fnmatchcase(value, g) for g in globs)


def _entity_any(selectors: tuple[tuple[str, str], ...], kind: str | None, eid: str | None) -> bool:
    if not selectors:
        return True
    if kind is None or eid is None:
        return False
    return any(k == kind and (i == "*" or i == eid) for k, i in selectors)
