"""The ``/status`` document as one schema, shared by the daemon (encodes it) and ``gatewayctl`` (decodes it).

Typed where someone reads a field (the CLI's summary, the degraded rule);
sections that are reports of one part (``ingest``, ``state``, ``auth``, the
ring, recent producers) stay open mappings.  Evolution: fields are added with
defaults, never renamed, so an older ``gatewayctl`` reads a newer gateway and
the reverse.  Decoding ignores unknown fields.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Events(msgspec.Struct, kw_only=True):
    accepted: int
    rejected: int
    rejected_by_reason: dict[str, int]
    duplicate: int


class UpstreamGaps(msgspec.Struct, kw_only=True):
    count: int
    missed: int
    #: Producer resets (a ``pseq`` that went back beyond any re-send), each reported as a gap with ``reset``.
    producer_resets: int = 0
    #: Wall-clock time of the last upstream loss, or None.
    last_at: float | None = None


class Producers(msgspec.Struct, kw_only=True):
    count: int
    recent: list[dict[str, Any]] = msgspec.field(default_factory=list)


class Clients(msgspec.Struct, kw_only=True):
    count: int
    by_transport: dict[str, int]
    lagging: int
    refused: dict[str, int]
    refused_by_transport: dict[str, int] = msgspec.field(default_factory=dict)
    closed_by_limit: dict[str, int] = msgspec.field(default_factory=dict)
    addresses: int = 0


class Health(msgspec.Struct, kw_only=True):
    """The sampled window (``gateway.core.health``) and the limits it is judged against."""

    window_s: float = 0.0
    events_per_s: float = 0.0
    loop_lag_s: float = 0.0
    loop_lag_recent_max_s: float = 0.0
    ring_turnover_s: float | None = None
    slow_client_disconnects_window: int = 0
    slow_client_skipped_window: int = 0
    last_slow_client_drop_at: float | None = None
    ring_horizon_s: float = 0.0
    loop_lag_limit_s: float = 0.0


class Status(msgspec.Struct, kw_only=True):
    """Everything ``GET /status`` answers, in its order."""

    version: str
    uptime_s: float
    started_at: float
    healthy: bool
    #: Options changed in the config since startup that only a restart applies (after SIGHUP).
    restart_needed: list[str] = msgspec.field(default_factory=list)
    ingest: dict[str, Any]
    epoch: str
    seq: int
    ring: dict[str, Any]
    state: dict[str, Any]
    events: Events
    upstream_gaps: UpstreamGaps
    producers: Producers
    clients: Clients
    deliveries: int
    drops: dict[str, int]
    slow_client_disconnects: int
    auth: dict[str, Any]
    internal_errors: int
    #: The cluster source's report (``--cluster``), or None for a single node.
    cluster: dict[str, Any] | None = None
    health: Health = msgspec.field(default_factory=Health)
    #: Why the gateway judges itself degraded (``gateway.core.health.degraded_reasons``); empty when it is not.
    degraded_reasons: list[str] = msgspec.field(default_factory=list)


def decode(data: bytes) -> Status:
    """A ``/status`` body; :class:`msgspec.ValidationError` / ``DecodeError`` when it is not one."""
    return msgspec.json.decode(data, type=Status)
