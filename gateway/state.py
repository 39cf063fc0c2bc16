"""The running gateway's parts, shared by the HTTP handlers through one ``web.AppKey``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from gateway.config import Config
from gateway.fanout import Hub
from gateway.ingest import Ingest
from gateway.stream import Stream


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
    ws_refused: dict[str, int] = field(default_factory=lambda: {"max_clients": 0, "bad_request": 0})
    client_errors: int = 0
    #: Called with the re-read Config on SIGHUP (tokens, keys, log level …).
    reloaders: list[Callable[[Config], None]] = field(default_factory=list)


STATE: web.AppKey[GatewayState] = web.AppKey("state", GatewayState)
