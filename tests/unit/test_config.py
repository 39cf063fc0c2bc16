from __future__ import annotations

from pathlib import Path

import pytest

from gateway.process.config import ConfigError, load
from gateway.process.keys import load_keys


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
        ({"allow_host": ["*"]}, {}, "--allow-host"),
        ({}, {"EVENT_GATEWAY_TRUSTED_PROXY": "10.0.0.0/8,nonsense"}, "--trusted-proxy"),
        ({"jwt_leeway": -1}, {}, "--jwt-leeway"),
    ],
)
def test_bad_values_name_the_option(flags: dict, env: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_keys(load(flags, environ=env))  # what gatewayd checks before binding (host/proxy rules: keys)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_unknown_key_in_file(tmp_path: Path) -> None:
    cfg = tmp_path / "g.toml"
    cfg.write_text("ringsize = 5\n")
    with pytest.raises(ConfigError, match="unknown option 'ringsize'"):
        load({}, environ={}, config_file=str(cfg))


def test_insecure_allows_wide_listen() -> None:
    assert load({"listen": "0.0.0.0:8765", "insecure": True}, environ={}).host == "0.0.0.0"


def test_cluster_options_from_flags_env_and_file(tmp_path: Path) -> None:
    assert load({}, environ={}).cluster_servers == []
    config = load(
        {"cluster_replicas": "3"},
        environ={"EVENT_GATEWAY_CLUSTER": "nats://10.0.0.1:4222, nats://10.0.0.2:4222"},
    )
    assert config.cluster_servers == ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"]
    assert (config.cluster_stream, config.cluster_replicas, config.cluster_max_events) == (
        "EVENT_GATEWAY",
        3,
        1_000_000,
    )
    assert config.cluster_max_age_s == 86400
    path = tmp_path / "g.toml"
    path.write_text('cluster = "nats://n1:4222"\ncluster_max_age = "90m"\ncluster_stream = "EG_TEST"\n')
    config = load({}, environ={}, config_file=str(path))
    assert (config.cluster_max_age_s, config.cluster_stream) == (5400, "EG_TEST")


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        ({"cluster": "http://n1:4222"}, "--cluster "),
        ({"cluster": " , "}, "--cluster "),
        ({"cluster": "nats://n1:4222", "cluster_max_age": "soon"}, "--cluster-max-age"),
        ({"cluster_stream": "has.dot"}, "--cluster-stream"),
        ({"cluster_replicas": "0"}, "--cluster-replicas"),
        ({"cluster": "nats://n1:4222", "state_dir": "/tmp"}, "--state-dir"),
    ],
)
def test_bad_cluster_options_name_the_option(flags: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(flags, environ={})
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_who_may_connect_options_from_every_source(tmp_path: Path) -> None:
    cfg = tmp_path / "g.toml"
    cfg.write_text('allow_host = ["a.example"]\njwt_issuer = "file"\njwt_leeway = 5.0\n')
    env = {"EVENT_GATEWAY_TRUSTED_PROXY": "127.0.0.1/32, ::1", "EVENT_GATEWAY_JWT_ISSUER": "env"}
    c = load({"jwt_audience": "event-gateway"}, environ=env, config_file=str(cfg))
    assert c.allow_host == ["a.example"] and c.trusted_proxy == ["127.0.0.1/32", "::1"]
    assert (c.jwt_issuer, c.jwt_audience, c.jwt_leeway) == ("env", "event-gateway", 5.0)
    assert load({}, environ={}).jwt_leeway == 30.0
