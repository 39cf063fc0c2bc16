"""Which CURVE client key may publish under each producer id.  Pure.

With CURVE on, every ingest message arrives with the Z85 public key of the
emitter that sent it.  A producer id is bound to the first key that used it; a
message under that id from any other key is rejected (reason ``producer_key``,
counted) and never touches the producer's sequence, so a forged id cannot push
the real producer's position (``pseq = 2**64-1``) and silence it.

Bounded: at most ``max_bindings`` ids are remembered, least recently used
forgotten first (a forgotten id is bound again by the next key that uses it).
``dirty`` says the bindings changed since :meth:`ProducerKeys.saved` (the
daemon persists them in ``--state-dir`` so they survive restarts).
"""

from __future__ import annotations

from collections import OrderedDict


class ProducerKeys:
    """Producer id → the client key bound to it, least recently used first."""

    def __init__(self, max_bindings: int = 100_000) -> None:
        self.max_bindings = max_bindings
        self._keys: OrderedDict[str, str] = OrderedDict()
        self.refused = 0
        self.dirty = False

    def admit(self, producer: str, key: str) -> bool:
        """True if ``key`` may publish as ``producer`` (binding it if the id is new)."""
        keys = self._keys
        bound = keys.get(producer)
        if bound is None:
            keys[producer] = key
            self.dirty = True
            if len(keys) > self.max_bindings:
                keys.popitem(last=False)
            return True
        if bound != key:
            self.refused += 1
            return False
        keys.move_to_end(producer)
        return True

    def restore(self, bindings: dict[str, str]) -> None:
        """Bindings read back at start (oldest first), before any message."""
        for producer, key in bindings.items():
            self._keys[producer] = key
            if len(self._keys) > self.max_bindings:
                self._keys.popitem(last=False)

    def bindings(self) -> dict[str, str]:
        """Every binding, least recently used first (what is persisted)."""
        return dict(self._keys)

    def saved(self) -> None:
        self.dirty = False

    def __len__(self) -> int:
        return len(self._keys)
