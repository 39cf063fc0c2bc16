"""What WebSocket and SSE share: parsing a subscription request, starting and ending it.

:func:`parse_request` turns the query (``types``, ``entity``, ``since``,
``epoch``) into a :class:`Filter` and a resume point, or a :class:`RequestError`
(HTTP 400 before any upgrade); :meth:`Subscriptions.admit` adds auth and capacity, all decided
before a byte of the stream is sent.  :func:`start_subscription` sends
``gateway.hello`` and any resume gap and joins the hub in one synchronous step,
with no await between reading the ring and registering the cursor, so replay
and live delivery meet with no duplicate and no hole.  :meth:`Subscriptions.join` adds the
credential watch (expiry, SIGHUP revocation) and the ``client.connected`` line;
:meth:`Subscriptions.leave` undoes both and logs ``client.disconnected``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import structlog
from aiohttp import web

from gateway.core.filters import Filter, FilterError, parse_entities, parse_types
from gateway.core.protocol import hello
from gateway.core.resume import plan_resume
from gateway.engine.fanout import Hub
from gateway.engine.stream import Stream
from gateway.engine.subscriber import Subscriber
from gateway.http.parts import ClientSettings
from gateway.policy.auth import Authenticator
from gateway.policy.limits import Admission, check_admission
from gateway.policy.verdicts import Grant

log = structlog.get_logger("gateway.subscription")

#: Replaces the query's resume point from elsewhere in the request: ``(request, since, epoch) → (since, epoch)``.
Resume = Callable[[web.Request, int | None, str | None], tuple[int | None, str | None]]


class RequestError(ValueError):
    """A malformed subscription request (HTTP 400 before the upgrade)."""


def parse_request(query: Mapping[str, str], max_filters: int) -> tuple[Filter, int | None, str | None]:
    """``types``/``entity``/``since``/``epoch`` from a query → filter, since, epoch."""
    try:
        types = parse_types(query.get("types"))
        entities = parse_entities(query.get("entity"))
    except FilterError as exc:
        raise RequestError(str(exc)) from None
    if len(types) + len(entities) > max_filters:
        raise RequestError(f"too many filters (max {max_filters})")
    since = parse_since(query.get("since"))
    epoch = query.get("epoch") or None
    return Filter(types, entities), since, epoch


def parse_since(raw: str | None) -> int | None:
    if raw in (None, ""):
        return None
    assert raw is not None
    if not raw.isdigit() or len(raw) > 19:
        raise RequestError("since must be a non-negative integer")
    return int(raw)


def start_subscription(stream: Stream, sub: Subscriber, since: int | None, epoch: str | None) -> None:
    """Hello, resume gap, join: one synchronous step.

    A resume point in our epoch may reach back as far as the stream's source keeps
    history (the ring on a single gateway; the JetStream stream on a cluster node,
    replayed first by ``ports.cluster.history``); the source joins the client to the hub."""
    ring, source = stream.ring, stream.source
    oldest = ring.oldest
    if since is not None and epoch in (None, stream.epoch):
        oldest = source.oldest_held(oldest)
    start, gap = plan_resume(oldest=oldest, head=ring.head, epoch=stream.epoch, since=since, client_epoch=epoch)
    sub.send_control(hello(stream.epoch, ring.head, oldest))
    if gap is not None:
        sub.send_control(gap)
    source.join(sub, start)


class Subscriptions:
    """Starting and ending subscriptions for every transport: what they share, wired by the daemon."""

    def __init__(
        self,
        stream: Stream,
        hub: Hub,
        auth: Authenticator,
        admission: Admission,
        settings: ClientSettings,
    ) -> None:
        self.stream = stream
        self.hub = hub
        self.auth = auth
        self.admission = admission
        self.settings = settings

    def admit(
        self, request: web.Request, transport: str, resume: Resume | None = None, *, capacity: bool = True
    ) -> tuple[Grant, int | None, str | None]:
        """Everything decided before a stream starts: the query (400), origin and credential
        (403/401/429, :meth:`Authenticator.authorize`) and, with ``capacity``, the client limits
        (503 + ``Retry-After``); ``resume`` may replace the query's resume point (SSE's
        ``Last-Event-ID``).  A WebSocket upgrade passes ``capacity=False``: a browser cannot
        read a refused upgrade's status, so it is upgraded and then closed 1013 (``ws``).
        Returns the grant (its ``filter`` is what the client may see) and the resume point."""
        try:
            flt, since, epoch = parse_request(request.query, self.settings.max_filters)
            if resume is not None:
                since, epoch = resume(request, since, epoch)
        except RequestError as exc:
            self.admission.count_refusal("bad_request", transport)
            raise web.HTTPBadRequest(text=f"{exc}\n") from None
        grant = self.auth.authorize(request, flt)
        if capacity:
            check_admission(self.admission, request.remote or "?", transport)
        return grant, since, epoch

    def join(self, sub: Subscriber, grant: Grant, since: int | None, epoch: str | None) -> None:
        """Start ``sub`` (see :func:`start_subscription`) and enforce its credential until :meth:`leave`."""
        start_subscription(self.stream, sub, since, epoch)
        self.auth.watch(sub, grant)
        log.info(
            "client.connected",
            transport=sub.kind,
            peer=sub.peer,
            credential=grant.scope.label,
            types=sub.filter.types,
            entity=sub.filter.entities,
            since=since,
        )

    def leave(self, sub: Subscriber, client_code: int | None = None) -> None:
        """``sub`` has gone (or was closed): out of the hub, its credential no longer watched.

        ``client.disconnected`` carries the close code the gateway sent when it closed the
        client (``closed_by`` gateway), else the client's own (``client_code``; None for SSE).
        """
        self.hub.remove(sub)
        self.auth.release(sub)
        by_gateway = sub.close_code is not None
        log.info(
            "client.disconnected",
            transport=sub.kind,
            peer=sub.peer,
            delivered=sub.delivered,
            dropped=sub.dropped,
            close_code=sub.close_code if by_gateway else client_code,
            close_reason=sub.close_reason,
            closed_by="gateway" if by_gateway else "client",
        )


SUBSCRIPTIONS = web.AppKey("subscriptions", Subscriptions)
