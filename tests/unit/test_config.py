from __future__ import annotations

from pathlib import Path

import pytest

from gateway.process.config import ConfigError, load


def test_defaults_match_spec() -> None:
    c = load({}, environ={})
    assert (c.ingest, c.listen, c.ring_size, c.slow_client, c.auth) == (
        "tcp://127.0.0.1:5556",
        "127.0.0.1:8765",
        10_000,
        "disconnect",
        "none",
    )


def test_precedence_flags_over_env_over_file(tmp_path: Path) -> None:
    cfg = tmp_path / "g.toml"
    cfg.write_text('ring_size = 5000\nlog_level = "debug"\nslow_client = "coalesce"\n')
    env = {"EVENT_GATEWAY_RING_SIZE": "600", "EVENT_GATEWAY_LOG_LEVEL": "warning"}
    c = load({"ring_size": 7}, environ=env, config_file=str(cfg))
    assert (c.ring_size, c.log_level, c.slow_client) == (7, "warning", "coalesce")


@pytest.mark.parametrize(
    ("flags", "env", "needle"),
    [
        ({"ring_size": 0}, {}, "--ring-size"),
        ({}, {"EVENT_GATEWAY_RING_SIZE": "many"}, "EVENT_GATEWAY_RING_SIZE"),
        ({"listen": "nowhere"}, {}, "--listen"),
        ({"ingest": "http://x"}, {}, "--ingest"),
        ({"listen": "0.0.0.0:8765"}, {}, "--auth"),
        ({"auth": "token"}, {}, "--tokens-file"),
        ({"log_level": "loud"}, {}, "--log-level"),
    ],
)
def test_bad_values_name_the_option(flags: dict, env: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(flags, environ=env)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_unknown_key_in_file(tmp_path: Path) -> None:
    cfg = tmp_path / "g.toml"
    cfg.write_text("ringsize = 5\n")
    with pytest.raises(ConfigError, match="unknown option 'ringsize'"):
        load({}, environ={}, config_file=str(cfg))


def test_insecure_allows_wide_listen() -> None:
    assert load({"listen": "0.0.0.0:8765", "insecure": True}, environ={}).host == "0.0.0.0"
