"""The producer-id → CURVE key bindings in ``--state-dir`` (``producer-keys.json``).

Written atomically (temporary file, fsync, rename) at most once per
``SAVE_INTERVAL`` while they change, and once more at shutdown, so a forged id
stays refused across restarts.  An unreadable file is logged and ignored (the
bindings start empty), never fatal.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import structlog

from gateway.core.producer_keys import ProducerKeys
from gateway.ports.files import read_private, write_atomically

SAVE_INTERVAL = 1.0
FILE_NAME = "producer-keys.json"

log = structlog.get_logger("gateway.bindings")


class BindingStore:
    """Loads, then keeps saving, one :class:`ProducerKeys` under ``directory``."""

    def __init__(self, directory: str, keys: ProducerKeys) -> None:
        self.path = Path(directory) / FILE_NAME
        self.keys = keys
        self._timer: asyncio.TimerHandle | None = None

    def load(self) -> None:
        try:
            data = read_private(self.path)  # O_NOFOLLOW, the gateway's own file (``ports.files``)
        except FileNotFoundError:
            return
        except OSError as exc:  # a planted symlink or another user's file: ignored like a damaged one
            log.warning("bindings.unreadable", path=str(self.path), error=str(exc))
            return
        try:
            bindings = msgspec.json.decode(data, type=dict[str, str])
        except (OSError, msgspec.DecodeError) as exc:
            log.warning("bindings.unreadable", path=str(self.path), error=str(exc))
            return
        self.keys.restore(bindings)
        log.info("bindings.restored", count=len(bindings))

    def changed(self, loop: asyncio.AbstractEventLoop) -> None:
        """The bindings may have changed: save them within ``SAVE_INTERVAL`` (one write per interval)."""
        if self.keys.dirty and self._timer is None:
            self._timer = loop.call_later(SAVE_INTERVAL, self.save)

    def save(self) -> None:
        self._timer = None
        if not self.keys.dirty:
            return
        try:
            write_atomically(self.path, msgspec.json.encode(self.keys.bindings()))
        except OSError as exc:
            log.error("bindings.write_failed", path=str(self.path), error=str(exc))
            return
        self.keys.saved()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.save()
