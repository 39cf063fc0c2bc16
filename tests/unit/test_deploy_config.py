"""``deploy/gateway.toml`` cannot drift from :class:`gateway.config.Config`.

Every option appears exactly once as a commented default line (``# name = value``,
equal to the real default; ``# default: unset`` for options without one), no
other option appears, and the settings the file makes active load as a valid Config.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

from gateway.process.config import FIELDS, Config, load
from tests.conftest import ROOT

TOML = ROOT / "deploy" / "gateway.toml"
DEFAULT_LINE = re.compile(r"^# ([a-z_]+) = (.*)$")


def default_lines() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in TOML.read_text().splitlines():
        match = DEFAULT_LINE.match(line)
        if match:
            found.setdefault(match.group(1), []).append(line[2:])
    return found


def test_every_option_is_listed_once_with_its_real_default() -> None:
    found = default_lines()
    assert set(found) == set(FIELDS), {"missing": set(FIELDS) - set(found), "unknown": set(found) - set(FIELDS)}
    defaults = Config()
    for field, lines in found.items():
        assert len(lines) == 1, lines
        expected: Any = getattr(defaults, field)
        if "# default: unset" in lines[0]:
            assert expected is None, f"{field} has a default ({expected!r}) but is documented as unset"
        else:
            assert tomllib.loads(lines[0])[field] == expected, lines[0]


def test_active_settings_load_as_a_valid_config() -> None:
    active = tomllib.loads(TOML.read_text())
    assert set(active) <= set(FIELDS)
    config = load({}, environ={}, config_file=str(TOML))
    assert config.ingest == "ipc:///run/event-gateway/ingest.sock"
    assert config.state_dir == "/var/lib/event-gateway" and config.log_format == "json"
