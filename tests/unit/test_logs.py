"""``gateway.process.logs``: (re)configuring the level reaches structlog and the stdlib loggers alike."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

from gateway.process import logs


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    yield root
    root.setLevel(level)
    root.handlers[:] = handlers
    structlog.reset_defaults()


def test_a_reload_changes_the_level_of_stdlib_loggers_too(root_logger: logging.Logger) -> None:
    aiohttp_log = logging.getLogger("aiohttp.server")
    logs.configure("json", "info")
    assert aiohttp_log.getEffectiveLevel() == logging.INFO
    logs.configure("json", "error")  # SIGHUP with a new --log-level
    assert aiohttp_log.getEffectiveLevel() == logging.ERROR
    assert not structlog.get_logger("gateway.test").is_enabled_for(logging.WARNING)
    logs.configure("json", "debug")
    assert aiohttp_log.getEffectiveLevel() == logging.DEBUG
