"""Ring entries built once per event: the v1 JSON and the WebSocket frame, encoded for every client.

New events (:func:`make_entry`) and entries restored from the state log
(:func:`build_entry`) are built the same way, so a restored entry is byte for
byte what was sent before the restart.
"""

from __future__ import annotations

from emitter_sdk.wire import WireEvent
from gateway.core.protocol import ws_frame
from gateway.core.ring import Entry


def make_entry(event: WireEvent, seq: int, json: bytes, upstream_gap: bytes, coalesce_types: frozenset[str]) -> Entry:
    """One accepted event, its v1 ``json`` already encoded (``codec.encode_event``), ready for every transport."""
    ent = event.entity
    kind, eid = (None, None) if ent is None else (ent.kind, ent.id)
    return build_entry(seq, event.type, kind, eid, json, event.producer, event.pseq, upstream_gap, coalesce_types)


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
    """An :class:`Entry` from its parts: new events and entries restored from the state log alike."""
    entry = Entry(seq, type_, kind, eid, json, ws_frame(json), producer, pseq, upstream_gap)
    if type_ in coalesce_types:
        entry.coalesce_key = (type_, kind, eid)
    return entry
