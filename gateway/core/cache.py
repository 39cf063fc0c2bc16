"""One bounded memo for the hot paths: answers keyed by strings that peers choose.

Event types and similar keys come from the outside, so a memo of them must not
grow without bound: a :class:`BoundedCache` holds at most ``limit`` entries and
starts over (is cleared) when full, so memory is bounded and the keys in use
come back at once.  Reads are plain ``dict`` lookups (``get``), the hot-path cost.
"""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")

#: Entries kept per memo unless told otherwise.
DEFAULT_LIMIT = 4096


class BoundedCache(dict[K, V]):
    """A ``dict`` of at most ``limit`` entries, filled through :meth:`put`."""

    __slots__ = ("limit",)

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: K, value: V) -> V:
        """Remember ``value`` for ``key`` (clearing everything first when full); returns ``value``."""
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value
