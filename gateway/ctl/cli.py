"""``gatewayctl``: ask a running gateway how it is, watch and publish events.

Exit codes: ``status`` 0 healthy, 1 degraded, 2 unreachable (with ``--watch``:
those of the last refresh); ``check`` 0/1; others 0 on success, 1 on failure.
Every command takes ``--url``; those that publish take ``--ingest``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import aiohttp
import click

from emitter_sdk import Emitter

DEFAULT_URL = "http://127.0.0.1:8765"
DEFAULT_INGEST = "tcp://127.0.0.1:5556"
#: Upstream loss this recent makes the gateway degraded (slow-client drops: the gateway's own window).
UPSTREAM_GAP_WINDOW = 60.0

#: (type, entity, payload) of an event gatewayctl publishes.
PlannedEvent = tuple[str, tuple[str, str] | None, dict[str, Any]]

url_option = click.option(
    "--url",
    default=lambda: os.environ.get("EVENT_GATEWAY_URL", DEFAULT_URL),
    help=f"the gateway's HTTP address (default: $EVENT_GATEWAY_URL, else {DEFAULT_URL})",
)
token_option = click.option(
    "--token",
    default=lambda: os.environ.get("EVENT_GATEWAY_TOKEN"),
    help="credential for a gateway with --auth token|jwt, sent as a Bearer header (default: $EVENT_GATEWAY_TOKEN)",
)
ingest_option = click.option(
    "--ingest",
    default=lambda: os.environ.get("EVENT_GATEWAY_INGEST", DEFAULT_INGEST),
    help=f"the gateway's ZeroMQ ingest endpoint to publish to (default: $EVENT_GATEWAY_INGEST, else {DEFAULT_INGEST})",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Operate and probe an event-gateway.

    Every command takes --url, the gateway's HTTP address (default
    $EVENT_GATEWAY_URL, else http://127.0.0.1:8765); those that publish (emit,
    check, demo) also --ingest (default $EVENT_GATEWAY_INGEST, else
    tcp://127.0.0.1:5556).  tail and check take --token (default
    $EVENT_GATEWAY_TOKEN) for a gateway with --auth token|jwt.
    """


# -- status ------------------------------------------------------------------------------


async def fetch_status(url: str, timeout: float = 3.0) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
        session.get(url.rstrip("/") + "/status") as resp,
    ):
        resp.raise_for_status()
        data: dict[str, Any] = await resp.json()
        return data


def degraded_reasons(status: dict[str, Any], now: float | None = None) -> list[str]:
    """Why a reachable gateway is not healthy; empty when it is.

    Degraded: not serving; upstream loss in the last minute; clients dropped for
    slowness within the gateway's sampling window (a minute); the ring turning
    over faster than ``ring_horizon`` (clients away that long cannot resume);
    recent event-loop lag above ``loop_lag_limit``; the state log disabled by a write error;
    a cluster node that cannot use its JetStream stream.
    """
    now = time.time() if now is None else now
    reasons = []
    if not status.get("healthy", False):
        reasons.append("not serving (ingest unbound or shutting down)")
    last_gap = (status.get("upstream_gaps") or {}).get("last_at")
    if last_gap and now - last_gap < UPSTREAM_GAP_WINDOW:
        reasons.append(f"upstream loss {now - last_gap:.0f}s ago ({status['upstream_gaps']['missed']} events missed)")
    health = status.get("health") or {}
    disconnects = health.get("slow_client_disconnects_window", 0)
    skipped = health.get("slow_client_skipped_window", 0)
    if disconnects or skipped:
        window = max(health.get("window_s", 0.0), 1.0)
        reasons.append(f"slow clients: {disconnects} disconnected, {skipped} events skipped in the last {window:.0f}s")
    turnover, horizon = health.get("ring_turnover_s"), health.get("ring_horizon_s")
    if turnover is not None and horizon and turnover < horizon:
        reasons.append(f"ring turns over every {turnover:.0f}s, under the {horizon:.0f}s resume horizon")
    problem = (status.get("cluster") or {}).get("problem")
    if problem:
        reasons.append(f"cluster: {problem}")
    if (status.get("state") or {}).get("failed"):
        reasons.append("state log disabled by a write error (restarts will not resume)")
    lag, limit = health.get("loop_lag_recent_max_s", 0.0), health.get("loop_lag_limit_s")
    if limit and lag > limit:
        reasons.append(f"event loop lag {lag * 1000:.0f} ms (limit {limit * 1000:.0f} ms)")
    return reasons


def render_status(status: dict[str, Any], reasons: list[str]) -> str:
    ring, events, clients = status["ring"], status["events"], status["clients"]
    health = status.get("health") or {}
    state = "healthy" if not reasons else "DEGRADED: " + "; ".join(reasons)
    if status.get("restart_needed"):
        state += f"  (restart needed: {', '.join(status['restart_needed'])} changed in the config)"
    by_transport = ", ".join(f"{k} {v}" for k, v in sorted(clients["by_transport"].items())) or "none"
    turnover = health.get("ring_turnover_s")
    lines = [
        f"event-gateway {status['version']}  {state}",
        f"  uptime     {status['uptime_s']:.0f}s   ingest {status['ingest']['endpoint']}",
        f"  epoch      {status['epoch']}   seq {status['seq']}   {health.get('events_per_s', 0.0):.1f} events/s",
        f"  ring       {ring['fill']}/{ring['size']}  oldest {ring['oldest']}"
        f"  turnover {'-' if turnover is None else f'{turnover:.0f}s'}",
        f"  events     accepted {events['accepted']}  rejected {events['rejected']}  duplicate {events['duplicate']}",
        f"  upstream   gaps {status['upstream_gaps']['count']}  missed {status['upstream_gaps']['missed']}",
        f"  producers  {status['producers']['count']}",
        f"  clients    {clients['count']} ({by_transport})  lagging {clients['lagging']}",
        f"  delivered  {status['deliveries']}  dropped {sum(status['drops'].values())}"
        f"  slow disconnects {status['slow_client_disconnects']}",
        f"  loop lag   {health.get('loop_lag_s', 0.0) * 1000:.1f} ms"
        f"  (recent max {health.get('loop_lag_recent_max_s', 0.0) * 1000:.1f} ms)",
    ]
    return "\n".join(lines)


def status_once(url: str, as_json: bool) -> int:
    """Fetch and print one status; returns the exit code."""
    try:
        data = asyncio.run(fetch_status(url))
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        click.echo(f"gatewayctl: gateway unreachable at {url}: {exc or type(exc).__name__}", err=True)
        return 2
    reasons = degraded_reasons(data)
    if as_json:
        click.echo(json.dumps({**data, "degraded_reasons": reasons}, indent=2))
    else:
        click.echo(render_status(data, reasons))
    return 1 if reasons else 0


@main.command()
@url_option
@click.option("--json", "as_json", is_flag=True, help="print the raw /status JSON")
@click.option("--watch", is_flag=True, help="refresh until interrupted (Ctrl-C)")
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True, help="seconds, --watch")
def status(url: str, as_json: bool, watch: bool, interval: float) -> None:
    """Health summary; exit 0 healthy, 1 degraded, 2 unreachable."""
    if not watch:
        sys.exit(status_once(url, as_json))
    code = 2
    try:
        while True:
            if sys.stdout.isatty():
                click.clear()
            code = status_once(url, as_json)
            footer = f"-- {time.strftime('%H:%M:%S')}, every {interval:g}s, Ctrl-C to stop\n"
            click.echo(footer, err=as_json)  # --json: stdout stays one JSON document per refresh
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    sys.exit(code)


# -- tail ---------------------------------------------------------------------------------


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
            if not msg.data.startswith('{"type":"gateway.'):
                seen += 1
    return 0


@main.command()
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


# -- publishing ---------------------------------------------------------------------------


def publish(ingest: str, events: list[PlannedEvent], delay: float) -> bool:
    """Emit ``events`` through ``ingest``; True once a gateway subscribed and took them."""
    with Emitter(ingest, strict=True) as em:
        if not em.wait_subscribed(3.0):
            return False
        for event_type, entity, payload in events:
            em.emit(event_type, entity=entity, payload=payload)
            if delay:
                time.sleep(delay)
        return em.flush(5.0)


def parse_entity(raw: str | None) -> tuple[str, str] | None:
    if raw is None:
        return None
    kind, sep, ident = raw.partition(":")
    if not sep or not kind or not ident:
        raise click.BadParameter("expected kind:id", param_hint="--entity")
    return kind, ident


@main.command()
@url_option
@ingest_option
@click.argument("event_type", metavar="TYPE")
@click.option("--entity", default=None, help="kind:id")
@click.option("--payload", default="{}", help="JSON object")
def emit(url: str, ingest: str, event_type: str, entity: str | None, payload: str) -> None:
    """Publish one event (TYPE like task.progress) through ingest."""
    try:
        body = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--payload") from None
    if not isinstance(body, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--payload")
    try:
        ok = publish(ingest, [(event_type, parse_entity(entity), body)], 0)
    except ValueError as exc:
        click.echo(f"gatewayctl: {exc}", err=True)
        sys.exit(1)
    if not ok:
        click.echo(f"gatewayctl: {not_subscribed(url, ingest)}", err=True)
        sys.exit(1)


def not_subscribed(url: str, ingest: str) -> str:
    """Why publishing failed, and where to look next."""
    return f"no gateway subscribed at {ingest} within 3s (is the gateway at {url} up? gatewayctl status --url {url})"


def demo_events(task_id: str) -> list[PlannedEvent]:
    """The seed report's demo sequence."""
    task = ("task", task_id)
    events: list[PlannedEvent] = [("task.started", task, {"message": "Demo task started"})]
    for progress in (0, 25, 50, 75, 100):
        events.append(("task.progress", task, {"progress": progress, "message": f"Processing... {progress}%"}))
    events += [
        ("task.completed", task, {"message": "Demo task completed"}),
        (
            "provider.status_changed",
            ("provider", "ollama"),
            {"state": "READY", "endpoint": "http://127.0.0.1:11434", "latency_ms": 45.2, "last_error": None},
        ),
        ("selfcheck.started", ("selfcheck", "demo"), {"checks": 3}),
        ("selfcheck.progress", ("selfcheck", "demo"), {"progress": 50, "message": "2 of 3 checks passed"}),
        ("selfcheck.completed", ("selfcheck", "demo"), {"passed": 3, "failed": 0}),
    ]
    return events


@main.command()
@url_option
@ingest_option
@click.option("--delay", type=float, default=0.2, show_default=True, help="seconds between events")
def demo(url: str, ingest: str, delay: float) -> None:
    """Emit the seed's demo sequence (task 0→100 %, provider READY, selfcheck)."""
    task_id = f"demo_{uuid.uuid4().hex[:6]}"
    events = demo_events(task_id)
    if not publish(ingest, events, delay):
        click.echo(f"gatewayctl: {not_subscribed(url, ingest)}", err=True)
        sys.exit(1)
    click.echo(f"emitted {len(events)} demo events (task {task_id}); watch them at {url.rstrip('/')}/")


# -- check --------------------------------------------------------------------------------


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
        return ("websocket", False, f"connected, but no gateway.hello within {timeout:g}s")
    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
        return ("websocket", False, f"closed {ws.close_code or msg.data} {msg.extra or ''}".rstrip())
    try:
        hello = json.loads(msg.data) if msg.type == aiohttp.WSMsgType.TEXT else None
    except ValueError:
        hello = None
    if not isinstance(hello, dict) or hello.get("type") != "gateway.hello":
        return ("websocket", False, f"expected gateway.hello first, got {str(msg.data)[:80]!r}")
    return ("websocket", True, f"epoch {hello.get('epoch')}")


@main.command()
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
