"""``gatewayctl check``: end to end, a probe published through ingest must arrive over WebSocket.

Steps: ``healthz``, ``websocket`` (hello), ``ingest`` (a gateway subscribed and
took the probe), ``delivery``; exit 0 when all pass, else 1 naming the step.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid

import aiohttp
import click

from gateway.core.protocol import HELLO
from gateway.ctl.options import ingest_option, token_option, url_option
from gateway.ctl.publish import PlannedEvent, publish
from gateway.ctl.tail import bearer, ws_url


async def _check(url: str, ingest: str, token: str | None) -> list[tuple[str, bool, str]]:
    steps: list[tuple[str, bool, str]] = []
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            async with session.get(url.rstrip("/") + "/healthz") as resp:
                ok = resp.status == 200
                steps.append(("healthz", ok, f"HTTP {resp.status}"))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            steps.append(("healthz", False, f"unreachable: {exc or type(exc).__name__}"))
            return steps
        if not ok:
            return steps
        nonce = uuid.uuid4().hex
        try:
            ws = await session.ws_connect(ws_url(url, types="gatewayctl.probe"), headers=bearer(token))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            steps.append(("websocket", False, str(exc)))
            return steps
        async with ws:
            hello = await receive_hello(ws)
            steps.append(hello)
            if not hello[1]:
                return steps
            loop = asyncio.get_running_loop()
            probe: list[PlannedEvent] = [("gatewayctl.probe", None, {"nonce": nonce})]
            sent = await loop.run_in_executor(None, publish, ingest, probe, 0.0)
            steps.append(("ingest", sent, ingest if sent else f"no gateway subscribed at {ingest}"))
            if not sent:
                return steps
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    msg = await ws.receive_json(timeout=deadline - time.monotonic())
                except (TimeoutError, TypeError, ValueError):
                    break
                if msg.get("payload", {}).get("nonce") == nonce:
                    steps.append(("delivery", True, f"seq {msg['seq']}"))
                    return steps
            steps.append(("delivery", False, "probe event not received within 5s"))
    return steps


async def receive_hello(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> tuple[str, bool, str]:
    """The ``websocket`` step: the first message must be ``gateway.hello``, within ``timeout`` s."""
    try:
        msg = await ws.receive(timeout=timeout)
    except TimeoutError:
        return ("websocket", False, f"connected, but no {HELLO} within {timeout:g}s")
    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
        return ("websocket", False, f"closed {ws.close_code or msg.data} {msg.extra or ''}".rstrip())
    try:
        hello = json.loads(msg.data) if msg.type == aiohttp.WSMsgType.TEXT else None
    except ValueError:
        hello = None
    if not isinstance(hello, dict) or hello.get("type") != HELLO:
        return ("websocket", False, f"expected {HELLO} first, got {str(msg.data)[:80]!r}")
    return ("websocket", True, f"epoch {hello.get('epoch')}")


@click.command()
@url_option
@ingest_option
@token_option
def check(url: str, ingest: str, token: str | None) -> None:
    """End-to-end self-check: a probe through ingest must arrive over WebSocket."""
    steps = asyncio.run(_check(url, ingest, token))
    for name, ok, detail in steps:
        click.echo(f"{'ok  ' if ok else 'FAIL'} {name:<10} {detail}")
    if not steps or not all(ok for _, ok, _ in steps):
        failed = next((name for name, ok, _ in steps if not ok), "unknown")
        click.echo(f"gatewayctl: check failed at step {failed}", err=True)
        sys.exit(1)
