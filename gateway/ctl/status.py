"""``gatewayctl status``: the gateway's ``/status`` (the shared :class:`~gateway.core.status.Status`), summarised.

Exit 0 healthy, 1 degraded (the gateway's own ``degraded_reasons``), 2 unreachable (or
refused: with ``--auth token|jwt`` a caller beyond loopback needs ``--token``); with
``--watch``, those of the last refresh.  The token goes in the ``Authorization`` header,
never in the URL.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request

import click
import msgspec

from gateway.core import status as schema
from gateway.ctl.options import token_option, url_option


def fetch_status(url: str, token: str | None = None, timeout: float = 3.0) -> bytes:
    """GET ``/status`` synchronously: a Ctrl-C anywhere in it is a plain ``KeyboardInterrupt``.

    (Through ``asyncio.run`` a SIGINT becomes a cancellation that the HTTP client may turn
    into a timeout error, which read as "unreachable" and kept ``--watch`` running.)
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url.rstrip("/") + "/status", headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        body: bytes = resp.read()
        return body


def render_status(status: schema.Status) -> str:
    ring, events, clients, health = status.ring, status.events, status.clients, status.health
    reasons = status.degraded_reasons
    state = "healthy" if not reasons else "DEGRADED: " + "; ".join(reasons)
    if status.restart_needed:
        state += f"  (restart needed: {', '.join(status.restart_needed)} changed in the config)"
    by_transport = ", ".join(f"{k} {v}" for k, v in sorted(clients.by_transport.items())) or "none"
    turnover = health.ring_turnover_s
    lines = [
        f"event-gateway {status.version}  {state}",
        f"  uptime     {status.uptime_s:.0f}s   ingest {status.ingest.get('endpoint')}",
        f"  epoch      {status.epoch}   seq {status.seq}   {health.events_per_s:.1f} events/s",
        f"  ring       {ring.get('fill')}/{ring.get('size')}  oldest {ring.get('oldest')}"
        f"  turnover {'-' if turnover is None else f'{turnover:.0f}s'}",
        f"  events     accepted {events.accepted}  rejected {events.rejected}  duplicate {events.duplicate}",
        f"  upstream   gaps {status.upstream_gaps.count}  missed {status.upstream_gaps.missed}",
        f"  producers  {status.producers.count}",
        f"  clients    {clients.count} ({by_transport})  lagging {clients.lagging}",
        f"  delivered  {status.deliveries}  dropped {sum(status.drops.values())}"
        f"  slow disconnects {status.slow_client_disconnects}",
        f"  loop lag   {health.loop_lag_s * 1000:.1f} ms  (recent max {health.loop_lag_recent_max_s * 1000:.1f} ms)",
    ]
    return "\n".join(lines)


def status_once(url: str, as_json: bool, token: str | None = None) -> int:
    """Fetch and print one status; returns the exit code."""
    try:
        body = fetch_status(url, token)
        status = schema.decode(body)
    except urllib.error.HTTPError as exc:
        hint = " (a gateway with --auth token|jwt: pass --token)" if exc.code in (401, 403) else ""
        click.echo(f"gatewayctl: {url}/status answered HTTP {exc.code} {exc.reason}{hint}", err=True)
        return 2
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        click.echo(f"gatewayctl: gateway unreachable at {url}: {exc or type(exc).__name__}", err=True)
        return 2
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        click.echo(f"gatewayctl: {url}/status is not a gateway's status: {exc}", err=True)
        return 2
    if as_json:
        click.echo(msgspec.json.format(body, indent=2))
    else:
        click.echo(render_status(status))
    return 1 if status.degraded_reasons else 0  # the gateway's own judgement


@click.command()
@url_option
@token_option
@click.option("--json", "as_json", is_flag=True, help="print the raw /status JSON")
@click.option("--watch", is_flag=True, help="refresh until interrupted (Ctrl-C)")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    metavar="SECONDS",
    help="between refreshes with --watch",
)
def status(url: str, token: str | None, as_json: bool, watch: bool, interval: float) -> None:
    """Health summary; exit 0 healthy, 1 degraded, 2 unreachable."""
    if not watch:
        sys.exit(status_once(url, as_json, token))
    code = 2
    try:
        while True:
            if sys.stdout.isatty():
                click.clear()
            code = status_once(url, as_json, token)
            footer = f"-- {time.strftime('%H:%M:%S')}, every {interval:g}s, Ctrl-C to stop\n"
            click.echo(footer, err=as_json)  # --json: stdout stays one JSON document per refresh
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    sys.exit(code)
