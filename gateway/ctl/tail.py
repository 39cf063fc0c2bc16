"""``gatewayctl tail``: print what a WebSocket subscriber receives, as JSON lines.

A token goes in the ``Authorization`` header, never in the URL (so never in a log).
Exit 0 after ``--count`` events (or when the gateway ends the stream, or the reader
of the output goes away), 1 on ``--timeout``, 2 when it cannot subscribe.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp
import click

from gateway.core.protocol import HELLO
from gateway.ctl.options import token_option, url_option

#: How every gateway message (hello, gap, error) begins on the wire; events do not.
GATEWAY_MESSAGE = '{"type":"' + HELLO.partition(".")[0] + "."


def bearer(token: str | None) -> dict[str, str]:
    """Request headers carrying ``token`` (none without one): kept out of the URL and so out of logs."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def ws_url(url: str, **params: Any) -> str:
    base = url.rstrip("/").replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{base}/ws/events" + (f"?{query}" if query else "")


async def _tail(url: str, token: str | None, count: int | None, timeout: float | None, **params: Any) -> int:
    seen = 0
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(ws_url(url, **params), headers=bearer(token)) as ws,
    ):
        deadline = None if timeout is None else time.monotonic() + timeout
        while count is None or seen < count:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return 1
            try:
                msg = await ws.receive(timeout=remaining)
            except TimeoutError:
                return 1
            if msg.type != aiohttp.WSMsgType.TEXT:
                return 0 if count is None else 1
            click.echo(msg.data)
            if not msg.data.startswith(GATEWAY_MESSAGE):
                seen += 1
    return 0


@click.command()
@url_option
@token_option
@click.option("--types", default=None, help="comma-separated type globs, e.g. task.*")
@click.option("--entity", default=None, help="comma-separated kind:id, id may be *")
@click.option("--since", type=int, default=None, help="resume after this seq")
@click.option("--epoch", default=None, help="epoch of --since")
@click.option("--count", type=int, default=None, help="exit after this many events")
@click.option("--timeout", type=float, default=None, help="give up after this many seconds (exit 1)")
def tail(
    url: str,
    token: str | None,
    types: str | None,
    entity: str | None,
    since: int | None,
    epoch: str | None,
    count: int | None,
    timeout: float | None,
) -> None:
    """Print events (and gateway messages) as JSON lines."""
    try:
        code = asyncio.run(_tail(url, token, count, timeout, types=types, entity=entity, since=since, epoch=epoch))
    except BrokenPipeError:  # the reader went away (``tail | head``): stop quietly
        quiet_stdout()
        code = 0
    except (aiohttp.ClientError, OSError) as exc:
        click.echo(f"gatewayctl: cannot subscribe at {url}: {exc}", err=True)
        code = 2
    except KeyboardInterrupt:
        code = 0
    sys.exit(code)


def quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush finds no closed pipe to complain about."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
