"""The running gateway's parts, shared by the HTTP handlers through one ``web.AppKey``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from gateway.engine.fanout import Hub
from gateway.engine.stream import Stream
from gateway.policy.auth import Authenticator
from gateway.ports.cluster.source import ClusterSource
from gateway.ports.ingest import Ingest
from gateway.ports.store import StateLog
from gateway.process.config import Config
from gateway.process.health import Health


@dataclass
class GatewayState:
    config: Config
    stream: Stream
    hub: Hub
    ingest: Ingest
    started_at: float = field(default_factory=time.time)
    started_monotonic: float = field(default_factory=time.monotonic)
    serving: bool = False
    shutting_down: bool = False
    ws_refused: dict[str, int] = field(
        default_factory=lambda: {"max_clients": 0, "max_clients_per_ip": 0, "bad_request": 0}
    )
    #: Clients the gateway closed for breaking a limit or going silent (``gateway.limits``).
    limit_closes: dict[str, int] = field(
        default_factory=lambda: {"rate_limited": 0, "frame_too_big": 0, "dead_peer": 0}
    )
    #: Called with the re-read Config on SIGHUP (tokens, keys, log level …).
    reloaders: list[Callable[[Config], None]] = field(default_factory=list)
    #: Options changed in the config since startup that only a restart applies (set on SIGHUP).
    restart_needed: list[str] = field(default_factory=list)
    #: Loop lag and recent rates, sampled by ``health.monitor`` (``/status``, ``/metrics``, STATUS=).
    health: Health = field(default_factory=Health)
    #: The state log (``--state-dir``), or None when each start is a new epoch.
    store: StateLog | None = None
    #: The cluster source (``--cluster``), or None for a single node.
    cluster: ClusterSource | None = None
    #: Who may subscribe (``gateway.auth``); re-reads its tokens and keys on SIGHUP.
    auth: Authenticator = field(init=False)

    def __post_init__(self) -> None:
        self.auth = Authenticator(self.config, self.hub)
        self.reloaders.append(self.auth.reload)
        if self.ingest.curve is not None:
            self.reloaders.append(self.ingest.curve.reload)


STATE: web.AppKey[GatewayState] = web.AppKey("state", GatewayState)
