"""Origin rules: which browser pages may open a subscription.  Pure.

A request whose ``Origin`` is neither the gateway's own (scheme://Host of the
request, or the TLS proxy's scheme from ``X-Forwarded-Proto``) nor listed in
``--allow-origin`` is refused.  The "own" origin counts only for a Host that DNS
rebinding cannot have made (``gateway.policy.peers``).  A request without
``Origin`` is not a browser's, unless ``Sec-Fetch-Site`` says another site's page
caused it (a no-cors GET).
"""

from __future__ import annotations


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
