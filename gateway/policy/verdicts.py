"""The plain values of an auth decision: what is judged (:class:`Attempt`) and the two outcomes.

:meth:`gateway.policy.auth.Authenticator.decide` maps an ``Attempt`` to a :class:`Grant` or a
:class:`Denial`; neither carries a token where it could be shown (``repr=False``), and a
``Denial``'s text is safe to send to the client.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from gateway.core.filters import Filter
from gateway.policy.credentials import Scope


@dataclass(frozen=True)
class Attempt:
    """What auth judges of one subscribing request: plain values read off it by :meth:`Authenticator.authorize`."""

    peer: str
    scheme: str
    host: str | None
    origin: str | None = None
    forwarded_proto: str | None = None
    fetch_site: str | None = None
    token: str | None = field(default=None, repr=False)
    #: The ``bearer.<token>`` WebSocket subprotocol offered, to answer with.
    protocol: str | None = None


@dataclass(frozen=True)
class Denial:
    """A refused attempt: the HTTP status, the text (safe to show) and any headers to send."""

    status: int
    text: str
    headers: dict[str, str] = field(default_factory=dict)

    def error(self) -> web.HTTPException:
        """The aiohttp error that sends this denial."""
        return _DENIALS[self.status](text=self.text, headers=self.headers)


_DENIALS: dict[int, type[web.HTTPException]] = {
    401: web.HTTPUnauthorized,
    403: web.HTTPForbidden,
    429: web.HTTPTooManyRequests,
}


@dataclass(frozen=True)
class Grant:
    """What :meth:`Authenticator.decide` lets one client have.

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
