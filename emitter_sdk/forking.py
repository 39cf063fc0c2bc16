"""Fork safety: every live emitter renews itself in a forked child.

``os.register_at_fork`` runs :func:`_after_fork_in_child` in the child of every
``fork()``; each tracked object's ``after_fork_in_child()`` then drops what it shared
with the parent (producer id, queue, lock, I/O thread — threads do not survive a
fork) without touching the parent's ZeroMQ sockets.  Tracking holds weak
references only, so it never keeps an emitter alive.
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol


class ForkAware(Protocol):
    def after_fork_in_child(self) -> None: ...


_live: weakref.WeakSet[ForkAware] = weakref.WeakSet()


def track(obj: ForkAware) -> None:
    """Call ``obj.after_fork_in_child()`` in the child of every later ``fork()`` while ``obj`` lives."""
    _live.add(obj)


def _after_fork_in_child() -> None:
    for obj in list(_live):
        obj.after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
