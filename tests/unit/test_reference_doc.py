"""``docs/reference.md`` lists every option (and whether a reload applies it), endpoint, message and close code."""

from __future__ import annotations

import re

from gateway.process.config import FIELDS, RELOADABLE, Config
from tests.conftest import ROOT

REFERENCE = (ROOT / "docs" / "reference.md").read_text()
SOURCE = "\n".join(p.read_text() for p in sorted((ROOT / "gateway").rglob("*.py")))


def section(title: str) -> str:
    start = REFERENCE.index(f"\n## {title}\n")
    end = REFERENCE.find("\n## ", start + 1)
    return REFERENCE[start : end if end > 0 else None]


def test_every_option_is_in_the_options_table_with_its_reload_behaviour() -> None:
    rows = re.findall(r"^\| `([a-z_]+)` \| (.+?) \| (reload|restart) \|", section("Options"), re.M)
    documented = [name for name, _, _ in rows]
    assert sorted(documented) == sorted(FIELDS), {
        "add to docs/reference.md (Options)": sorted(set(FIELDS) - set(documented)),
        "no such option": sorted(set(documented) - set(FIELDS)),
    }
    assert {name for name, _, when in rows if when == "reload"} == RELOADABLE
    defaults = Config()
    for name, default, _ in rows:
        value = getattr(defaults, name)
        if value is None:
            assert default == "unset", name
        elif isinstance(value, bool):
            assert default == f"`{str(value).lower()}`", name
        elif isinstance(value, str | int | float):
            assert default == f"`{value}`", name


def test_every_route_is_an_endpoint_row() -> None:
    app = (ROOT / "gateway" / "http" / "app.py").read_text()
    routes = set(re.findall(r'add_get\(f?"(/[a-z/._]*)"', app)) - {"/{name}"}
    routes |= {"/" + name for name in re.findall(r'"([a-z]+\.(?:js|css))"', app)}
    endpoints = section("Endpoints")
    assert routes and all(f"`{route}`" in endpoints for route in routes), routes


def test_every_close_code_and_message_type_the_gateway_sends_is_listed() -> None:
    pattern = r"(?:close\(sub, |kick\(|kick_transport\(transport, |, code = \"[a-z_]+\", )(1\d{3})\b"
    codes = set(re.findall(pattern, SOURCE))
    assert {"1001", "1008", "1013"} <= codes  # the pattern still finds them
    table = section("Subscribing: `/ws/events` and `/sse/events`")
    assert all(re.search(rf"^\| {code} \|", table, re.M) for code in codes), codes
    protocol = (ROOT / "gateway" / "core" / "protocol.py").read_text()  # every message is built there
    sent = set(re.findall(r'^[A-Z]+ = "([a-z_.]+)"$', protocol, re.M))
    assert sent and all(f"| `{kind}` |" in table for kind in sent), sent
