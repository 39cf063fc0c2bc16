"""Whether a secret file's mode lets anyone but its owner read it (pure: the caller stats the file)."""

from __future__ import annotations

import stat


def readable_by(mode: int) -> str | None:
    """``"others"`` for a world-readable mode, ``"group"`` for a group-readable one, else None.

    Tokens files, JWT keys and CURVE secret keys should be the service user's alone
    (0600); the gateway warns, it does not refuse, so a deployment that chose a
    trusted group keeps running.
    """
    if mode & stat.S_IROTH:
        return "others"
    if mode & stat.S_IRGRP:
        return "group"
    return None
