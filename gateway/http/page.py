"""``GET /`` (the live monitor page) and its static files, ``GET /client.js`` among them.

The files ship inside the package (``gateway/http/static``) and are read once, when the
app is built: a missing file fails startup, not a browser.  Each response carries
its content type, a strong ``ETag`` (content hash) and ``Cache-Control: no-cache``,
so browsers revalidate on every load and get ``304 Not Modified`` while the gateway
runs the same version.  The page allows only its own scripts, styles and
connections (``Content-Security-Policy``); event payloads are rendered as text.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from aiohttp import web
from aiohttp.typedefs import Handler

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}

#: The monitor page may load and connect to its own origin only.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class Asset:
    """One static file, read once: its bytes, content type and ETag."""

    body: bytes
    content_type: str
    etag: str

    @classmethod
    def load(cls, name: str) -> Asset:
        body = (resources.files("gateway.http") / "static" / name).read_bytes()
        suffix = name[name.rfind(".") :]
        return cls(body, CONTENT_TYPES[suffix], '"' + hashlib.sha256(body).hexdigest()[:20] + '"')

    def headers(self) -> dict[str, str]:
        headers = {
            "Content-Type": self.content_type,
            "ETag": self.etag,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
        }
        if self.content_type.startswith("text/html"):
            headers["Content-Security-Policy"] = PAGE_CSP
            headers["Referrer-Policy"] = "no-referrer"
        return headers


def asset_handler(name: str) -> Handler:
    """A handler serving ``gateway/http/static/<name>`` (``If-None-Match`` → 304)."""
    asset = Asset.load(name)

    async def handle(request: web.Request) -> web.StreamResponse:
        if _matches(request, asset.etag):
            return web.Response(status=304, headers={"ETag": asset.etag, "Cache-Control": "no-cache"})
        return web.Response(body=asset.body, headers=asset.headers())

    return handle


def _matches(request: web.Request, etag: str) -> bool:
    """``If-None-Match`` may list several tags (``"a", "b"``) or ``*``."""
    for value in request.headers.getall("If-None-Match", ()):
        for tag in value.split(","):
            tag = tag.strip().removeprefix("W/")
            if tag in (etag, "*"):
                return True
    return False
