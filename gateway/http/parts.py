"""What the daemon hands the HTTP layer: one typed ``web.AppKey`` per part.

The daemon (``gateway.process.daemon``) is the only place that builds the parts
and sets these keys, once, before the app serves; each handler reads only the
parts it needs.  Nothing here holds a reference to everything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import msgspec
from aiohttp import web

from gateway.core.health import Health
from gateway.engine.fanout import Hub
from gateway.engine.stream import Stream
from gateway.policy.auth import Authenticator
from gateway.policy.limits import Admission
from gateway.ports.cluster.source import ClusterSource
from gateway.ports.ingest import Ingest
from gateway.ports.store import StateLog


class ClientSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The options the transports apply per client (the daemon converts its ``Config`` to these)."""

    max_filters: int
    ping_interval: float
    max_frame_bytes: int
    close_timeout: float
    tcp_keepalive: float
    sse_heartbeat: float
    compression: str
    client_msg_rate: int
    max_clients: int
    ring_horizon: float
    loop_lag_limit: float


@dataclass
class Lifecycle:
    """Where the process is in its life: ``serving`` once bound, ``shutting_down`` once a stop began."""

    started_at: float = field(default_factory=time.time)
    started_monotonic: float = field(default_factory=time.monotonic)
    serving: bool = False
    shutting_down: bool = False
    #: Options changed in the config since startup that only a restart applies (set on SIGHUP).
    restart_needed: list[str] = field(default_factory=list)


SETTINGS = web.AppKey("settings", ClientSettings)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
STREAM = web.AppKey("stream", Stream)
HUB = web.AppKey("hub", Hub)
INGEST = web.AppKey("ingest", Ingest)
#: The state log (``--state-dir``), or None when each start is a new epoch.
STORE: web.AppKey[StateLog | None] = web.AppKey("store")
AUTH = web.AppKey("auth", Authenticator)
ADMISSION = web.AppKey("admission", Admission)
#: The cluster source (``--cluster``), or None for a single node.
CLUSTER: web.AppKey[ClusterSource | None] = web.AppKey("cluster")
#: Loop lag and recent rates, sampled by ``gateway.process.monitor``.
HEALTH = web.AppKey("health", Health)


def healthy(app: web.Application) -> bool:
    """Ingest bound, HTTP serving, not shutting down (``/healthz``, ``/metrics``, the watchdog)."""
    lifecycle = app[LIFECYCLE]
    return lifecycle.serving and app[INGEST].bound and not lifecycle.shutting_down
