"""Where a (re)connecting client starts: cursor arithmetic for ``since``/``epoch``.  Pure.

A client's *cursor* is the last seq it has accounted for (received, filtered
out, or reported in a gap).  Given the ring's ``oldest`` and ``head``:

- no ``since``: start live at ``head`` (nothing replayed);
- ``epoch`` given and different from ours: the client's seqs mean nothing here;
  gap reason ``epoch`` with ``from`` = 1 and ``to`` = oldest − 1 (``to < from``
  when the ring still holds seq 1), then the whole ring;
- ``since`` older than the ring (``since + 1 < oldest``): gap reason ``evicted``
  ``from`` = since + 1, ``to`` = oldest − 1, then the whole ring;
- otherwise replay ``since + 1 .. head``, then live;
- ``since`` beyond ``head`` in our epoch is clamped to ``head``.
"""

from __future__ import annotations

from gateway.core.protocol import Message, gap


def plan_resume(
    *,
    oldest: int | None,
    head: int,
    epoch: str,
    since: int | None,
    client_epoch: str | None,
) -> tuple[int, Message | None]:
    """Returns ``(start cursor, gap message or None)``."""
    first_held = oldest if oldest is not None else head + 1
    if client_epoch is not None and client_epoch != epoch:
        return first_held - 1, gap("epoch", 1, first_held - 1)
    if since is None:
        return head, None
    if since >= head:
        return head, None
    if since + 1 < first_held:
        return first_held - 1, gap("evicted", since + 1, first_held - 1)
    return since, None
