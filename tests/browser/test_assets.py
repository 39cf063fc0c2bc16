"""How the monitor page and ``/client.js`` are served: content types, revalidation, policy.

Plain HTTP against a real gateway (no browser): what proxies and browser caches see.
"""

from __future__ import annotations

import re
import urllib.request

from tests.conftest import Gateway


def fetch(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_page_and_scripts_have_content_types_etags_and_no_cache(gateway: Gateway) -> None:
    expected = {
        "/": "text/html; charset=utf-8",
        "/client.js": "text/javascript; charset=utf-8",
        "/chart.js": "text/javascript; charset=utf-8",
        "/monitor.js": "text/javascript; charset=utf-8",
        "/monitor.css": "text/css; charset=utf-8",
    }
    etags = set()
    for path, content_type in expected.items():
        status, headers, body = fetch(gateway.url + path)
        assert status == 200, path
        assert headers["Content-Type"] == content_type
        assert headers["Cache-Control"] == "no-cache"
        assert headers["X-Content-Type-Options"] == "nosniff"
        etag = headers["ETag"]
        assert etag.startswith('"') and etag.endswith('"')
        etags.add(etag)
        status, headers, body = fetch(gateway.url + path, {"If-None-Match": f'"other", {etag}'})
        assert (status, body, headers["ETag"]) == (304, b"", etag)
        assert fetch(gateway.url + path, {"If-None-Match": '"stale"'})[0] == 200
        assert fetch(gateway.url + path, method="HEAD")[0] == 200
    assert len(etags) == len(expected)


def test_page_policy_and_module_shape(gateway: Gateway) -> None:
    _, headers, page = fetch(gateway.url + "/")
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert b'<script type="module" src="monitor.js">' in page
    assert b"cdn" not in page.lower() and b"https://" not in page
    _, _, client = fetch(gateway.url + "/client.js")
    assert b"export class EventGatewayClient" in client
    assert not re.search(rb"^\s*import\b", client, re.MULTILINE), "client.js has no dependencies"
