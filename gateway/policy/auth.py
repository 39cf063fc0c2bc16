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
import hashlib
import ipaddress
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jwt
import structlog
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.core.filters import Filter, FilterError, parse_entities, parse_types
from gateway.policy.peers import PeerPolicy, host_allowed, host_name, is_loopback

if TYPE_CHECKING:
    from gateway.engine.fanout import Hub, Subscriber

log = structlog.get_logger("gateway.auth")

#: Failed attempts an address may make in a burst, then one more per ``FAILURE_REFILL_S``.
FAILURE_BURST = 10
FAILURE_REFILL_S = 6.0
#: Refusal log events per reason are throttled to one per this many seconds.
LOG_INTERVAL = 5.0
#: Minimum HS256 secret length (RFC 7518 §3.2) and RSA key size accepted for JWTs.
MIN_HS256_BYTES = 32
MIN_RSA_BITS = 2048
SUBPROTOCOL_PREFIX = "bearer."


class CredentialsError(ValueError):
    """A tokens or key file cannot be used; ``field`` names the option, ``str()`` says why."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(why)
        self.field = field


class Refused(Exception):
    """A credential was judged and refused: ``status`` 401 or 403, ``reason`` is safe to show."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# -- credentials (pure) ------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What one credential may see (empty = no limit) and until when (unix time)."""

    label: str
    types: tuple[str, ...] = ()
    entities: tuple[tuple[str, str], ...] = ()
    expires_at: float | None = None

    @property
    def limits(self) -> tuple[object, ...]:
        """Everything but the label: equal limits ⇔ the credential grants the same."""
        return (self.types, self.entities, self.expires_at)


@dataclass(frozen=True)
class Credentials:
    """The parsed ``--tokens-file`` / ``--jwt-key-file`` for one ``--auth`` mode."""

    mode: str = "none"
    #: SHA-256 digest of each static token → its scope.
    tokens: Mapping[bytes, Scope] = field(default_factory=dict)
    jwt_key: Any = None
    jwt_algorithm: str = "HS256"
    #: ``--jwt-issuer`` / ``--jwt-audience``: the ``iss`` / ``aud`` a token must carry (None: a
    #: token's ``iss`` is not checked; a token carrying ``aud`` is refused, it is meant for another service).
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    #: ``--jwt-leeway``: seconds of clock skew allowed on ``exp``, ``nbf`` and ``iat``.
    jwt_leeway: float = 30.0
    #: Digest of everything the verdicts depend on (mode, file bytes, JWT options): equal
    #: fingerprints judge every token alike, so a SIGHUP that changed nothing judges nothing.
    fingerprint: bytes = b""

    def judge(self, token: str | None, now: float) -> Scope:
        """The scope ``token`` grants at ``now``, or :class:`Refused`.  Never echoes the token."""
        if self.mode == "none":
            return Scope("anonymous")
        if not token:
            raise Refused(401, "a token is required")
        if self.mode == "token":
            scope = self.tokens.get(_digest(token))
            if scope is None:
                raise Refused(401, "unknown token")
            return scope
        return self._judge_jwt(token, now)

    def _judge_jwt(self, token: str, now: float) -> Scope:
        try:
            claims = jwt.decode(
                token,
                self.jwt_key,
                algorithms=[self.jwt_algorithm],
                # exp is required, and checked below against ``now``; iss/aud when configured.
                options={"verify_exp": False, "require": ["exp"]},
                issuer=self.jwt_issuer,
                audience=self.jwt_audience,
                leeway=self.jwt_leeway,
            )
        except jwt.PyJWTError as exc:
            # The class name, not the message: no part of the token reaches a log or a response.
            raise Refused(401, f"invalid token ({type(exc).__name__})") from None
        exp = claims["exp"]
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise Refused(401, "invalid token: exp must be a number")
        expires_at = float(exp) + self.jwt_leeway  # the connection is closed then (1008)
        if expires_at <= now:
            raise Refused(401, "token expired")
        sub = claims.get("sub")
        label = f"jwt:{sub[:64]}" if isinstance(sub, str) else "jwt"
        types = _claim_list(claims, "types", parse_types)
        entities = _claim_list(claims, "entities", parse_entities)
        return Scope(label, types, entities, expires_at)


def _claim_list(claims: Mapping[str, Any], name: str, parse: Callable[[str], tuple[Any, ...]]) -> tuple[Any, ...]:
    """A ``types``/``entities`` claim: absent = no limit; present = a non-empty list of selectors."""
    if name not in claims:
        return ()
    value = claims[name]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Refused(403, f"claim {name!r} must be a list of strings")
    if not value:
        raise Refused(403, f"claim {name!r} grants nothing")
    out = []
    for item in value:
        try:
            parsed = parse(item)
        except FilterError as exc:
            raise Refused(403, f"claim {name!r}: {exc}") from None
        if len(parsed) != 1:
            raise Refused(403, f"claim {name!r}: one selector per list item")
        out.append(parsed[0])
    return tuple(out)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def load_credentials(
    mode: str,
    tokens_file: str | None,
    jwt_key_file: str | None,
    *,
    jwt_issuer: str | None = None,
    jwt_audience: str | None = None,
    jwt_leeway: float = 30.0,
) -> Credentials:
    """Read the file ``--auth`` ``mode`` needs; :class:`CredentialsError` if unusable."""
    if mode == "token":
        assert tokens_file is not None
        data = _read(tokens_file, "tokens_file")
        return Credentials("token", tokens=parse_tokens(data), fingerprint=_fingerprint("token", data))
    if mode == "jwt":
        assert jwt_key_file is not None
        data = _read(jwt_key_file, "jwt_key_file")
        key, algorithm = parse_jwt_key(data)
        options = (jwt_issuer, jwt_audience, jwt_leeway)
        return Credentials(
            "jwt",
            jwt_key=key,
            jwt_algorithm=algorithm,
            jwt_issuer=jwt_issuer,
            jwt_audience=jwt_audience,
            jwt_leeway=jwt_leeway,
            fingerprint=_fingerprint("jwt", data, repr(options).encode()),
        )
    return Credentials(fingerprint=_fingerprint("none"))


def _fingerprint(mode: str, *parts: bytes) -> bytes:
    digest = hashlib.sha256(mode.encode())
    for part in parts:
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.digest()


def _read(path: str, field_name: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise CredentialsError(field_name, f"cannot read {path}: {exc.strerror}") from None


def parse_tokens(data: bytes) -> dict[bytes, Scope]:
    """``<token> [<type-glob> …]`` per line; blank lines and ``#`` comments ignored.

    Errors name the line, never the token.
    """
    tokens: dict[bytes, Scope] = {}
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise CredentialsError("tokens_file", "not UTF-8 text") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        token, globs = words[0], words[1:]
        for glob in globs:
            try:
                ok = parse_types(glob) == (glob,)
            except FilterError:
                ok = False
            if not ok:
                raise CredentialsError("tokens_file", f"line {lineno}: bad type glob {glob[:40]!r}")
        digest = _digest(token)
        if digest in tokens:
            raise CredentialsError("tokens_file", f"line {lineno}: token repeats {tokens[digest].label}")
        tokens[digest] = Scope(f"token@{lineno}", tuple(globs))
    if not tokens:
        raise CredentialsError("tokens_file", "holds no token")
    return tokens


def parse_jwt_key(data: bytes) -> tuple[Any, str]:
    """A PEM public key → (key, ``RS256``); anything else is an HS256 secret (trailing newline stripped)."""
    if data.lstrip().startswith(b"-----BEGIN"):
        if b"PRIVATE KEY" in data:
            raise CredentialsError("jwt_key_file", "holds a private key; give the gateway only the public key")
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError:
            raise CredentialsError("jwt_key_file", "not a PEM public key") from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise CredentialsError("jwt_key_file", "not an RSA public key (RS256)")
        if key.key_size < MIN_RSA_BITS:
            raise CredentialsError("jwt_key_file", f"RSA key has {key.key_size} bits; at least {MIN_RSA_BITS}")
        return key, "RS256"
    secret = data.removesuffix(b"\n").removesuffix(b"\r")
    if len(secret) < MIN_HS256_BYTES:
        raise CredentialsError("jwt_key_file", f"HS256 secret has {len(secret)} bytes; at least {MIN_HS256_BYTES}")
    return secret, "HS256"


# -- the request (pure) ------------------------------------------------------------------


def extract_token(query: Mapping[str, str], headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(token, subprotocol to answer) from ``?token=``, ``Authorization: Bearer``, ``bearer.<token>``.

    The subprotocol is returned whenever the client offered one, so a browser
    that always offers it is answered as it requires even with ``--auth none``.
    """
    protocol = None
    for offered in headers.get("Sec-WebSocket-Protocol", "").split(","):
        offered = offered.strip()
        if offered.startswith(SUBPROTOCOL_PREFIX) and len(offered) > len(SUBPROTOCOL_PREFIX):
            protocol = offered
            break
    token = query.get("token") or None
    if token is None:
        scheme, _, value = headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            token = value.strip()
    if token is None and protocol is not None:
        token = protocol[len(SUBPROTOCOL_PREFIX) :]
    return token, protocol


def normalize_origin(origin: str) -> str:
    """``HTTP://Example.com:80/`` → ``http://example.com``; ``null`` stays ``null``."""
    origin = origin.strip().rstrip("/").lower()
    for scheme, port in (("http://", ":80"), ("https://", ":443"), ("ws://", ":80"), ("wss://", ":443")):
        if origin.startswith(scheme) and origin.endswith(port):
            return origin[: -len(port)]
    return origin


def own_origins(scheme: str, host: str | None, forwarded_proto: str | None) -> set[str]:
    """The origins a page served by this gateway (or its TLS proxy) has, from the request's Host."""
    if not host:
        return set()
    schemes = {scheme.lower()}
    if forwarded_proto and forwarded_proto.strip().lower() in ("http", "https"):
        schemes.add(forwarded_proto.strip().lower())
    return {normalize_origin(f"{s}://{host}") for s in schemes}


#: ``Sec-Fetch-Site`` values of a browser request that another site's page caused.
FOREIGN_FETCH_SITES = frozenset({"cross-site", "same-site"})


def origin_allowed(
    origin: str | None, own: set[str], allowed: frozenset[str], own_trusted: bool, fetch_site: str | None = None
) -> bool:
    """No ``Origin`` (not a browser) → judged by auth alone; else own (when trusted) or listed.

    Browsers leave ``Origin`` off no-cors GETs (``<img src>``, ``<link>``) but mark
    every request with ``Sec-Fetch-Site``: one from another site's page is refused
    here, as an origin refusal, so it cannot spend the address's failed-auth budget.
    """
    if origin is None:
        return fetch_site not in FOREIGN_FETCH_SITES
    origin = normalize_origin(origin)
    return origin in allowed or (own_trusted and origin in own)


# -- failed-auth rate limit (pure, clock injected) ----------------------------------------


class FailureLimiter:
    """A token bucket of failed attempts per address; memory bounded by ``max_addresses``.

    An address may fail ``burst`` times, then once per ``refill_s``; past that
    it is *blocked* until the bucket refills.  IPv6 peers are counted per /64
    (one host usually owns a whole /64).  When the table is full the least
    recently failed address is forgotten.
    """

    def __init__(self, burst: int = FAILURE_BURST, refill_s: float = FAILURE_REFILL_S, max_addresses: int = 10_000):
        self.burst = burst
        self.refill_s = refill_s
        self.max_addresses = max_addresses
        self._buckets: dict[str, tuple[float, float]] = {}

    @staticmethod
    def key(address: str) -> str:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return address
        if ip.version == 6 and ip.ipv4_mapped is None:
            return str(ipaddress.ip_network(f"{ip}/64", strict=False))
        return str(ip.ipv4_mapped or ip) if ip.version == 6 else str(ip)

    def _level(self, address: str, now: float) -> float:
        level, at = self._buckets.get(self.key(address), (float(self.burst), now))
        return min(float(self.burst), level + (now - at) / self.refill_s)

    def retry_after(self, address: str, now: float) -> float:
        """0 if ``address`` may try now, else seconds until it may."""
        level = self._level(address, now)
        return 0.0 if level >= 1.0 else (1.0 - level) * self.refill_s

    def fail(self, address: str, now: float) -> bool:
        """Record one failure; True if this failure exhausted the bucket (now blocked)."""
        level = self._level(address, now) - 1.0
        key = self.key(address)
        self._buckets.pop(key, None)
        if len(self._buckets) >= self.max_addresses:
            del self._buckets[next(iter(self._buckets))]
        self._buckets[key] = (level, now)
        return level < 1.0 <= level + 1.0

    def blocked(self, now: float) -> int:
        """Addresses refused right now (their bucket holds less than one attempt); O(remembered)."""
        return sum(1 for address in self._buckets if self.retry_after(address, now) > 0)

    def __len__(self) -> int:
        return len(self._buckets)


# -- the running part ---------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """What :meth:`Authenticator.authorize` lets one client have.

    ``filter`` is the client's filter narrowed by the credential; ``protocol``
    the WebSocket subprotocol to answer with (None: answer none); ``scope``
    the credential's label, limits and expiry; ``origin`` the browser origin
    the request came from, when it passed the allowlist.  The token is kept
    (never shown) so SIGHUP can judge it again against the re-read tokens and keys;
    ``generation`` says which credentials judged it (see :meth:`Authenticator.watch`).
    """

    filter: Filter
    scope: Scope
    protocol: str | None = None
    token: str | None = field(default=None, repr=False)
    origin: str | None = None
    generation: int = 0

    @property
    def cors_headers(self) -> dict[str, str]:
        """For plain HTTP responses (SSE): let the admitted origin's page read the stream."""
        if self.origin is None:
            return {}
        return {"Access-Control-Allow-Origin": self.origin, "Vary": "Origin"}


@dataclass
class _Watched:
    grant: Grant
    timer: asyncio.TimerHandle | None


class _Throttle:
    """At most one log event per key per ``LOG_INTERVAL``; counts what it suppressed."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, int]] = {}

    def allow(self, key: str, now: float) -> int | None:
        last, suppressed = self._last.get(key, (float("-inf"), 0))
        if now - last < LOG_INTERVAL:
            self._last[key] = (last, suppressed + 1)
            return None
        self._last[key] = (now, 0)
        return suppressed


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
        self._throttle = _Throttle()

    # -- at connect ---------------------------------------------------------------------

    def authorize(self, request: web.Request, flt: Filter) -> Grant:
        peer = request.remote or "?"
        now = time.time()
        origin = request.headers.get("Origin")
        own = own_origins(request.scheme, request.host, request.headers.get("X-Forwarded-Proto"))
        # The Host check (``policy.peers``) ran before any handler; it is repeated here so the
        # request's own origin is trusted only for a Host that DNS rebinding cannot have made.
        trusted = host_allowed(host_name(request.host or ""), self.peers.allowed_hosts)
        fetch_site = request.headers.get("Sec-Fetch-Site")
        if not origin_allowed(origin, own, self.allowed_origins, trusted, fetch_site):
            self._refuse("origin", peer, now, origin=origin[:200] if origin else None, fetch_site=fetch_site)
            raise web.HTTPForbidden(text="origin not allowed\n")
        token, protocol = extract_token(request.query, request.headers)
        return self.grant(token, peer, flt, protocol, origin)

    def grant(
        self, token: str | None, peer: str, flt: Filter, protocol: str | None = None, origin: str | None = None
    ) -> Grant:
        """Judge ``token`` for ``peer`` (429/401/403 as :func:`authorize`); the grant names this generation."""
        scope = self._judge(token, peer, time.time())
        return Grant(flt.intersect(scope.types, scope.entities), scope, protocol, token, origin, self.generation)

    def authorize_operator(self, request: web.Request) -> None:
        """``/status``, ``/metrics``: with ``--auth token|jwt`` a valid credential (``?token=`` or
        ``Authorization: Bearer``), unless the client (after ``--trusted-proxy``) is on loopback."""
        if self.credentials.mode == "none" or is_loopback(request.remote):
            return
        token, _ = extract_token(request.query, request.headers)
        self._judge(token, request.remote or "?", time.time())

    def _judge(self, token: str | None, peer: str, now: float) -> Scope:
        """The failed-auth budget, then the credential: raises 429, 401 or 403; failures spend the budget."""
        if self.credentials.mode != "none":
            wait = self.limiter.retry_after(peer, time.monotonic())
            if wait > 0:
                self._refuse("rate_limited", peer, now)
                raise web.HTTPTooManyRequests(
                    text="too many failed attempts\n", headers={"Retry-After": str(int(wait) + 1)}
                )
        try:
            return self.credentials.judge(token, now)
        except Refused as exc:
            reason = "unauthorized" if exc.status == 401 else "forbidden"
            self._refuse(reason, peer, now, why=exc.reason)
            if self.limiter.fail(peer, time.monotonic()):
                log.warning("auth.rate_limited", peer=peer, burst=self.limiter.burst)
            if exc.status == 401:
                raise web.HTTPUnauthorized(text=f"{exc.reason}\n", headers={"WWW-Authenticate": "Bearer"}) from None
            raise web.HTTPForbidden(text=f"{exc.reason}\n") from None

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

        A SIGHUP that came between :meth:`grant` and this call (the upgrade awaits in
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
        synchronously: no client joins or leaves half-way through.
        """
        if credentials.fingerprint and credentials.fingerprint == self.credentials.fingerprint:
            log.info("auth.reloaded", mode=credentials.mode, changed=False, judged=0, revoked=0)
            return
        self.credentials = credentials
        self.generation += 1
        verdicts: dict[str | None, Scope | None] = {}
        revoked = 0
        now = time.time()
        for sub, watched in list(self._watched.items()):
            if not self._still_holds(watched.grant, verdicts, now):
                revoked += 1
                self._revoke(sub, watched.grant)
        log.info(
            "auth.reloaded",
            mode=credentials.mode,
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
