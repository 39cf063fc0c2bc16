"""structlog setup: JSON lines when stderr is not a TTY (journald), console otherwise.

Events are dotted names (``client.connected``, ``ingest.rejected``) with
key-value context; they are logged at state changes, never per event.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


def configure(log_format: str | None, level: str) -> None:
    """(Re)configure structlog; safe to call again on SIGHUP to change the level."""
    fmt = log_format or ("console" if sys.stderr.isatty() else "json")
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    # basicConfig adds the stderr handler once (it does nothing while the root logger has
    # handlers), so the level is set on the root logger itself: a SIGHUP reload reaches
    # the stdlib loggers (aiohttp, asyncio) too.
    logging.basicConfig(stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
    logging.getLogger().setLevel(LEVELS[level])


def get(name: str = "gateway") -> Any:
    return structlog.get_logger(name)
