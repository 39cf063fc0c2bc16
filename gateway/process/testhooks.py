"""Hooks the end-to-end tests use to drive a real ``gatewayd``; installed only on request.

With ``EVENT_GATEWAY_TEST_HOOKS=1`` in the environment, SIGUSR1 blocks the event
loop for :data:`TEST_BLOCK_SECONDS` (a stand-in for a stalled loop, so tests can
watch the watchdog pings stop and the lag be reported).  Without it nothing is
installed and SIGUSR1 keeps its default action.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

from gateway.process import logs

TEST_HOOKS_ENV = "EVENT_GATEWAY_TEST_HOOKS"
TEST_BLOCK_SECONDS = 2.0

log = logs.get("gateway.testhooks")


def install_test_hooks(loop: asyncio.AbstractEventLoop) -> None:
    """SIGUSR1 → block the loop, only when ``EVENT_GATEWAY_TEST_HOOKS=1``."""
    if os.environ.get(TEST_HOOKS_ENV) == "1":
        loop.add_signal_handler(signal.SIGUSR1, _block_loop)


def _block_loop() -> None:
    log.warning("test_hook.loop_blocked", seconds=TEST_BLOCK_SECONDS)
    time.sleep(TEST_BLOCK_SECONDS)
