"""Who may subscribe and what they may see (``--auth``, ``--allow-origin``).

Every subscribing transport (WebSocket, SSE) goes through ``subscription``,
which calls :meth:`Authenticator.authorize` before the upgrade / before the response starts
and :meth:`Authenticator.watch` once the subscriber has joined the hub::

    grant, since, epoch = admit(request, parts)  # authorize(): raises 403 / 401 / 429
    ...                                          # upgrade
    join(parts, sub, grant, since, epoch)        # watch(): exp timer + SIGHUP revocation
    try: ... finally: leave(parts, sub)          # release()

Order of the checks, each refused before any byte of the stream is sent:

1. **Origin** (browsers send it; others do not): a request whose ``Origin`` is
   neither the gateway's own (scheme://Host of the request) nor listed in
   ``--allow-origin`` is refused with 403.  With ``--auth none`` the "own"
   origin counts only for a loopback/IP-literal Host, so a DNS-rebound name
   cannot pass as the gateway's own origin.  Origin refusals do not count
   against the failed-auth budget, so a hostile page cannot lock the user out.
2. **Rate limit**: an address that failed authentication too often recently
   gets 429 (with ``Retry-After``) without its credential being looked at.
3. **Credential** (``--auth token|jwt``): from ``?token=``, ``Authorization:
   Bearer`` or the ``bearer.<token>`` WebSocket subprotocol, in that order.
   Missing, unknown, badly signed or expired → 401; a JWT with malformed or
   empty ``types``/``entities`` claims → 403.  The client's filter is
   intersected with what the credential allows, for replay and live alike.

Tokens are secrets: they are never logged, never put in an error text, a
status field or a metric; static tokens are looked up by their SHA-256 digest.
Logs name a credential by a label (``token@<line>`` of the tokens file, or
``jwt:<sub>``).  Under pressure: refusal logs are throttled (one per
``LOG_INTERVAL`` per reason, with the count suppressed), the limiter's memory
is bounded (``FailureLimiter.max_addresses``), and an expiry is one timer per
connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from gateway.core.filters import Filter
from gateway.core.throttle import LogThrottle
from gateway.policy.credentials import Credentials, Refused, Scope, extract_token
from gateway.policy.limits import FailureLimiter
from gateway.policy.origins import normalize_origin, origin_allowed, own_origins
from gateway.policy.peers import PeerPolicy, host_allowed, host_name, is_loopback
from gateway.policy.verdicts import Attempt, Denial, Grant

if TYPE_CHECKING:
    from gateway.engine.fanout import Hub
    from gateway.engine.subscriber import Subscriber

log = structlog.get_logger("gateway.auth")

#: Refusal log events per reason are throttled to one per this many seconds.
LOG_INTERVAL = 5.0
#: Most credentials a SIGHUP re-judges per turn of the event loop (RS256: ~60 µs each).
JUDGE_BATCH = 200


@dataclass
class _Watched:
    grant: Grant
    timer: asyncio.TimerHandle | None


class Authenticator:
    """The gateway's current credentials and origins, the limiter and the watched clients."""

    def __init__(self, credentials: Credentials, allow_origin: Iterable[str], peers: PeerPolicy, hub: Hub) -> None:
        self.hub = hub
        self.credentials = credentials
        #: +1 whenever SIGHUP adopts credentials that judge differently (a new fingerprint).
        self.generation = 0
        self.allowed_origins = frozenset(normalize_origin(o) for o in allow_origin)
        self.peers = peers
        self.limiter = FailureLimiter()
        self.refused: dict[str, int] = {
            "host": 0,
            "no_host": 0,
            "origin": 0,
            "unauthorized": 0,
            "forbidden": 0,
            "rate_limited": 0,
        }
        self.expired = 0
        self.revoked = 0
        self._watched: dict[Subscriber, _Watched] = {}
        self._throttle = LogThrottle(LOG_INTERVAL)

    # -- at connect ---------------------------------------------------------------------

    def authorize(self, request: web.Request, flt: Filter) -> Grant:
        """The aiohttp hook: :meth:`decide` on the request's values; a denial raises its HTTP error."""
        token, protocol = extract_token(request.query, request.headers)
        headers = request.headers
        attempt = Attempt(
            request.remote or "?",
            request.scheme,
            request.host,
            headers.get("Origin"),
            headers.get("X-Forwarded-Proto"),
            headers.get("Sec-Fetch-Site"),
            token,
            protocol,
        )
        verdict = self.decide(attempt, flt, time.time(), time.monotonic())
        if isinstance(verdict, Denial):
            raise verdict.error()
        return verdict

    def decide(self, attempt: Attempt, flt: Filter, now: float, monotonic: float) -> Grant | Denial:
        """Origin, then the failed-auth budget, then the credential: a grant (naming this
        generation of credentials) or the first refusal (counted)."""
        peer, origin, fetch_site = attempt.peer, attempt.origin, attempt.fetch_site
        own = own_origins(attempt.scheme, attempt.host, attempt.forwarded_proto)
        # The Host check (``policy.peers``) ran before any handler; it is repeated here so the
        # request's own origin is trusted only for a Host that DNS rebinding cannot have made.
        trusted = host_allowed(host_name(attempt.host or ""), self.peers.allowed_hosts)
        if not origin_allowed(origin, own, self.allowed_origins, trusted, fetch_site):
            self._refuse("origin", peer, now, origin=origin[:200] if origin else None, fetch_site=fetch_site)
            return Denial(403, "origin not allowed\n")
        scope = self._judge(attempt.token, peer, now, monotonic)
        if isinstance(scope, Denial):
            return scope
        flt = flt.intersect(scope.types, scope.entities)
        return Grant(flt, scope, attempt.protocol, attempt.token, origin, self.generation)

    def authorize_operator(self, request: web.Request) -> None:
        """``/status``, ``/metrics``: with ``--auth token|jwt`` a valid credential (``?token=`` or
        ``Authorization: Bearer``), unless the client (after ``--trusted-proxy``) is on loopback."""
        if self.credentials.mode == "none" or is_loopback(request.remote):
            return
        token, _ = extract_token(request.query, request.headers)
        verdict = self._judge(token, request.remote or "?", time.time(), time.monotonic())
        if isinstance(verdict, Denial):
            raise verdict.error()

    def _judge(self, token: str | None, peer: str, now: float, monotonic: float) -> Scope | Denial:
        """The failed-auth budget, then the credential: a scope, or a 429/401/403; failures spend the budget."""
        if self.credentials.mode != "none":
            wait = self.limiter.retry_after(peer, monotonic)
            if wait > 0:
                self._refuse("rate_limited", peer, now)
                return Denial(429, "too many failed attempts\n", {"Retry-After": str(int(wait) + 1)})
        try:
            return self.credentials.judge(token, now)
        except Refused as exc:
            reason = "unauthorized" if exc.status == 401 else "forbidden"
            self._refuse(reason, peer, now, why=exc.reason)
            if self.limiter.fail(peer, monotonic):
                log.warning("auth.rate_limited", peer=peer, burst=self.limiter.burst)
            if exc.status == 401:
                return Denial(401, f"{exc.reason}\n", {"WWW-Authenticate": "Bearer"})
            return Denial(403, f"{exc.reason}\n")

    def refuse_request(self, reason: str, peer: str | None) -> None:
        """Count (and log, throttled) a request the ``policy.peers`` hook refused (``host``, ``no_host``)."""
        self._refuse(reason, peer or "?", time.time())

    def _refuse(self, reason: str, peer: str, now: float, **context: Any) -> None:
        self.refused[reason] += 1
        suppressed = self._throttle.allow(reason, now)
        if suppressed is not None:
            log.warning("auth.refused", reason=reason, peer=peer, suppressed=suppressed, **context)

    # -- while connected ----------------------------------------------------------------

    def watch(self, sub: Subscriber, grant: Grant) -> None:
        """Close ``sub`` with 1008 when its credential expires or is revoked, until :meth:`release`.

        A SIGHUP that came between :meth:`decide` and this call (the upgrade awaits in
        between) did not see ``sub``: its credential is judged again here, at once,
        against the credentials now in force, and ``sub`` is closed if it no longer holds.
        """
        if grant.generation != self.generation and not self._still_holds(grant, {}, time.time()):
            self._revoke(sub, grant)
            return
        timer = None
        if grant.scope.expires_at is not None:
            loop = asyncio.get_running_loop()
            delay = max(0.0, grant.scope.expires_at - time.time())
            timer = loop.call_at(loop.time() + delay, self._expire, sub)
        self._watched[sub] = _Watched(grant, timer)

    def release(self, sub: Subscriber) -> None:
        watched = self._watched.pop(sub, None)
        if watched is not None and watched.timer is not None:
            watched.timer.cancel()

    def _expire(self, sub: Subscriber) -> None:
        watched = self._watched.get(sub)
        if watched is None:
            return
        self.expired += 1
        log.info("auth.expired", peer=sub.peer, credential=watched.grant.scope.label)
        self._close(sub, "token expired")

    def _close(self, sub: Subscriber, reason: str) -> None:
        self.release(sub)
        self.hub.close(sub, 1008, reason)

    # -- SIGHUP -------------------------------------------------------------------------

    def reload(self, credentials: Credentials, allow_origin: Iterable[str], peers: PeerPolicy) -> None:
        """Adopt re-read tokens, keys, origins and hosts; close (1008) clients whose credential no longer holds.

        A client stays only if its credential is judged exactly as before (same
        limits and expiry).  The daemon reads the files first: if they cannot be
        used, this is never called and the old ones stay in force.
        """
        self.allowed_origins = frozenset(normalize_origin(o) for o in allow_origin)
        self.peers = peers
        self.adopt(credentials)

    def adopt(self, credentials: Credentials) -> None:
        """Put ``credentials`` in force and close (1008) every watched client they no longer admit.

        Same fingerprint as those in force: nothing is judged, nobody is closed.
        Otherwise each distinct token among the watched clients is judged once
        (10,000 clients sharing a few JWTs cost a few signature checks, not 10,000),
        at most ``JUDGE_BATCH`` new judgements per turn of the event loop, so even
        10,000 distinct RS256 tokens never stall it for more than one batch.  New
        connections are judged by the new credentials at once; a client that leaves
        meanwhile is skipped; a newer SIGHUP supersedes an unfinished pass.
        """
        if credentials.fingerprint and credentials.fingerprint == self.credentials.fingerprint:
            log.info("auth.reloaded", mode=credentials.mode, changed=False, judged=0, revoked=0)
            return
        self.credentials = credentials
        self.generation += 1
        self._rejudge(self.generation, list(self._watched.items()), {}, 0)

    def _rejudge(
        self,
        generation: int,
        pending: list[tuple[Subscriber, _Watched]],
        verdicts: dict[str | None, Scope | None],
        revoked: int,
    ) -> None:
        """One batch of :meth:`adopt`'s pass over ``pending`` (consumed from the end); schedules the next."""
        if generation != self.generation:
            return  # a newer SIGHUP re-judges everybody against newer credentials
        budget = len(verdicts) + JUDGE_BATCH
        now = time.time()
        while pending and len(verdicts) < budget:
            sub, watched = pending.pop()
            if self._watched.get(sub) is not watched:
                continue  # left (or was closed) since the pass began
            if not self._still_holds(watched.grant, verdicts, now):
                revoked += 1
                self._revoke(sub, watched.grant)
        if pending:
            asyncio.get_running_loop().call_soon(self._rejudge, generation, pending, verdicts, revoked)
            return
        log.info(
            "auth.reloaded",
            mode=self.credentials.mode,
            changed=True,
            judged=len(verdicts),
            revoked=revoked,
            watched=len(self._watched),
        )

    def _still_holds(self, grant: Grant, verdicts: dict[str | None, Scope | None], now: float) -> bool:
        """Does the credential in force grant ``grant``'s token exactly the same limits? (verdicts cached by token)"""
        if grant.token not in verdicts:
            try:
                verdicts[grant.token] = self.credentials.judge(grant.token, now)
            except Refused:
                verdicts[grant.token] = None
        scope = verdicts[grant.token]
        return scope is not None and scope.limits == grant.scope.limits

    def _revoke(self, sub: Subscriber, grant: Grant) -> None:
        self.revoked += 1
        log.info("auth.revoked", peer=sub.peer, credential=grant.scope.label)
        self._close(sub, "auth revoked")

    def statistics(self) -> dict[str, Any]:
        return {
            "mode": self.credentials.mode,
            "refused": dict(self.refused),
            "expired": self.expired,
            "revoked": self.revoked,
            "limited_addresses": self.limiter.blocked(time.monotonic()),
        }
