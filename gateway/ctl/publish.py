"""``gatewayctl emit`` / ``demo``: publish events through ingest with the SDK, as a producer does.

Exit 0 once a gateway subscribed and took them, 1 otherwise, 2 for a bad argument (an
invalid type, entity or payload: the SDK's own verdict, or JSON's — ``NaN`` and
``Infinity`` have no JSON form and are refused, not turned into ``null`` on the way).
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from typing import Any

import click

from emitter_sdk import Emitter
from gateway.ctl.options import ingest_option, url_option

#: (type, entity, payload) of an event gatewayctl publishes.
PlannedEvent = tuple[str, tuple[str, str] | None, dict[str, Any]]


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


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_entity(raw: str | None) -> tuple[str, str] | None:
    if raw is None:
        return None
    kind, sep, ident = raw.partition(":")
    if not sep or not kind or not ident:
        raise click.BadParameter("expected kind:id", param_hint="--entity")
    return kind, ident


@click.command()
@url_option
@ingest_option
@click.argument("event_type", metavar="TYPE")
@click.option("--entity", default=None, help="kind:id")
@click.option("--payload", default="{}", help="JSON object")
def emit(url: str, ingest: str, event_type: str, entity: str | None, payload: str) -> None:
    """Publish one event (TYPE like task.progress) through ingest."""
    try:
        body = json.loads(payload, parse_constant=_no_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--payload") from None
    if not isinstance(body, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--payload")
    try:
        ok = publish(ingest, [(event_type, parse_entity(entity), body)], 0)
    except ValueError as exc:  # Emitter(strict=True): the event is invalid
        raise click.UsageError(str(exc)) from None
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


@click.command()
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
