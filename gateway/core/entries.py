"""Ring entries built once per event: the WebSocket frame of the v1 JSON, encoded for every client.

New events (the local sequencer, a cluster node) and entries restored from the
state log are built by the one :func:`build_entry`, so a restored entry is byte
for byte what was sent before the restart.
"""

from __future__ import annotations

from gateway.core.protocol import TEXT_HEADERS, text_header
from gateway.core.ring import Entry


def build_entry(
    seq: int,
    type_: str,
    kind: str | None,
    eid: str | None,
    json: bytes,
    producer: str,
    pseq: int,
    upstream_gap: bytes,
    coalesce_types: frozenset[str],
) -> Entry:
    """An :class:`Entry` from its parts: new events and entries restored from the state log alike.

    The frame is ``ws_frame(json)``, its header looked up by length (once per event); ``json``
    itself is not kept (``Entry.json`` is the frame's payload).
    """
    n = len(json)
    frame = (TEXT_HEADERS.get(n) or text_header(n)) + json
    entry = Entry(seq, type_, kind, eid, frame, producer, pseq, upstream_gap)
    if coalesce_types and type_ in coalesce_types:
        entry.coalesce_key = (type_, kind, eid)
    return entry
