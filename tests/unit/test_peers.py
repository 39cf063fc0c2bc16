"""``gateway.policy.peers`` without sockets: the Host verdict (DNS rebinding) and the client address behind proxies."""

from __future__ import annotations

import pytest

from gateway.policy.peers import (
    PolicyError,
    client_address,
    host_name,
    host_verdict,
    is_loopback,
    parse_allowed_hosts,
    parse_networks,
)

ALLOWED = parse_allowed_hosts(["events.example.com", "*.lan.example", "Upper.Example."])


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:8765",
        "127.0.0.1",
        "[::1]:8765",
        "10.1.2.3:1",
        "localhost",
        "LOCALHOST:9",
        "events.example.com",
        "events.example.com:443",
        "a.lan.example",
        "b.c.lan.example:80",
        "upper.example",
        "events.example.com.",
    ],
)
def test_ip_literals_localhost_and_listed_names_are_allowed(host: str) -> None:
    assert host_verdict([host], ALLOWED) is None


@pytest.mark.parametrize(
    "host", ["evil.example:8765", "evil.example", "lan.example", "xevents.example.com", "events.example.com.evil", "a"]
)
def test_any_other_name_is_403(host: str) -> None:
    assert host_verdict([host], ALLOWED) == (403, "host not allowed")


def test_no_host_or_several_is_400() -> None:
    assert host_verdict([], ALLOWED)[0] == 400  # type: ignore[index]
    assert host_verdict([""], ALLOWED)[0] == 400  # type: ignore[index]
    assert host_verdict(["127.0.0.1", "evil.example"], ALLOWED)[0] == 400  # type: ignore[index]


def test_host_name_strips_port_brackets_case_and_trailing_dot() -> None:
    assert host_name("Example.COM:8765") == "example.com"
    assert host_name("[::1]:80") == "::1"
    assert host_name("example.com.") == "example.com"


@pytest.mark.parametrize("bad", ["", "*", "*.", "a..b", "a b", "ex*ample.com", "*.*.x", "-/x", "é.example"])
def test_bad_allow_host_names_the_option(bad: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_allowed_hosts([bad])
    assert info.value.field == "allow_host"


def test_bad_trusted_proxy_names_the_option() -> None:
    with pytest.raises(PolicyError) as info:
        parse_networks(["10.0.0.0/33"])
    assert info.value.field == "trusted_proxy"


PROXIES = parse_networks(["127.0.0.1", "10.0.0.0/8", "::1"])


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() -> None:
    assert client_address("203.0.113.9", ["198.51.100.1"], PROXIES) == "203.0.113.9"
    assert client_address("127.0.0.1", ["198.51.100.1"], ()) == "127.0.0.1"
    assert client_address("127.0.0.1", [], PROXIES) == "127.0.0.1"


def test_right_most_untrusted_forwarded_address_is_the_client() -> None:
    assert client_address("127.0.0.1", ["198.51.100.1"], PROXIES) == "198.51.100.1"
    # the client forged a left part; the proxies appended the real address on the right
    assert client_address("127.0.0.1", ["1.2.3.4, 198.51.100.1"], PROXIES) == "198.51.100.1"
    # two proxies: the inner one (10.x) is trusted and skipped
    assert client_address("127.0.0.1", ["1.2.3.4, 198.51.100.1, 10.0.0.7"], PROXIES) == "198.51.100.1"
    # several header lines are one list, in order
    assert client_address("::1", ["1.2.3.4", "198.51.100.1"], PROXIES) == "198.51.100.1"
    assert client_address("127.0.0.1", ["[2001:db8::1]:4711"], PROXIES) == "2001:db8::1"


def test_malformed_entry_stops_at_the_last_trusted_hop() -> None:
    assert client_address("127.0.0.1", ["198.51.100.1, unknown"], PROXIES) == "127.0.0.1"
    assert client_address("127.0.0.1", ["198.51.100.1, 10.0.0.7, garbage"], PROXIES) == "127.0.0.1"
    assert client_address("127.0.0.1", ["garbage, 10.0.0.7"], PROXIES) == "10.0.0.7"


def test_all_trusted_gives_the_left_most() -> None:
    assert client_address("127.0.0.1", ["10.0.0.1, 10.0.0.2"], PROXIES) == "10.0.0.1"


def test_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("198.51.100.1") and not is_loopback(None) and not is_loopback("?")
