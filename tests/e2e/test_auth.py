"""``--auth token|jwt`` against a real gatewayd: 401 before the upgrade, scopes on replay and live,
JWT expiry mid-connection, SIGHUP revocation, the failed-auth limit, tokens kept out of logs/status/metrics,
and the refusal to listen beyond loopback without auth."""

from __future__ import annotations

import json
import secrets
import signal
import time
from contextlib import ExitStack
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.conftest import Gateway, free_port, http_get, run_cli, run_python, wait_for
from tests.e2e.test_data_path import emit_script, recv_json
from tests.e2e.test_origin import http_status

MIXED = ["task.started", "provider.status_changed", "selfcheck.started", "task.progress", "custom.thing"]


def handshake_status(url: str, **kw: object) -> int:
    """101 if the upgrade succeeded and hello arrived, else the HTTP status of the refusal."""
    try:
        with connect(url, open_timeout=10, **kw) as ws:  # type: ignore[arg-type]
            assert recv_json(ws)["type"] == "gateway.hello"
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def emit_types(gw: Gateway, types: list[str]) -> None:
    body = "".join(f"em.emit({t!r}, entity=('task', 'a'), payload={{}})\n" for t in types)
    proc = run_python(emit_script(gw.ingest, body))
    assert proc.returncode == 0, proc.stderr


def recv_until(ws: ClientConnection, seq: int) -> list[dict]:
    """Every message up to and including the event with ``seq`` (events arrive in seq order)."""
    got = []
    while not got or got[-1].get("seq") != seq:
        got.append(recv_json(ws))
    return got


def token_gateway(gateway_factory, tmp_path: Path, lines: str, *args: str) -> Gateway:
    tokens = tmp_path / "tokens"
    tokens.write_text(lines)
    return gateway_factory("--auth", "token", "--tokens-file", str(tokens), *args)


def rsa_keys(tmp_path: Path) -> tuple[rsa.RSAPrivateKey, Path]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "jwt.pub"
    pem.write_bytes(
        private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, pem


def test_no_bad_or_expired_token_is_401_before_upgrade_valid_gets_hello(gateway_factory, tmp_path: Path) -> None:
    private, pem = rsa_keys(tmp_path)
    gw = gateway_factory("--auth", "jwt", "--jwt-key-file", str(pem))
    now = int(time.time())
    valid = jwt.encode({"sub": "ui", "exp": now + 300}, private, "RS256")
    expired = jwt.encode({"sub": "ui", "exp": now - 60}, private, "RS256")  # past the 30 s leeway
    forged = jwt.encode({"sub": "ui", "exp": now + 300}, rsa.generate_private_key(65537, 2048), "RS256")
    assert handshake_status(gw.ws_url) == 401
    assert handshake_status(gw.ws_url + "?token=" + forged) == 401
    assert handshake_status(gw.ws_url + "?token=" + expired) == 401
    assert handshake_status(gw.ws_url + "?token=" + valid) == 101
    code, body = http_get(gw.url + "/ws/events")  # plain GET: refused before any upgrade logic
    assert code == 401 and b"token" in body
    assert http_status(gw.url + "/sse/events?token=" + expired, {}) == 401
    assert http_status(gw.url + "/sse/events?token=" + valid, {}) == 200
    assert gw.status()["auth"]["refused"]["unauthorized"] == 5


@pytest.mark.parametrize("mode", ["token", "jwt"])
def test_token_limited_to_task_types_sees_only_them_on_replay_and_live(
    mode: str, gateway_factory, tmp_path: Path
) -> None:
    if mode == "token":
        limited, everything = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        gw = token_gateway(gateway_factory, tmp_path, f"{limited} task.*\n{everything}\n")
    else:
        key = secrets.token_hex(32).encode()  # random bytes may end in \r or \n, which the key file drops
        (tmp_path / "hs").write_bytes(key + b"\n")
        gw = gateway_factory("--auth", "jwt", "--jwt-key-file", str(tmp_path / "hs"))
        limited = jwt.encode({"types": ["task.*"], "exp": int(time.time()) + 300}, key, "HS256")
        everything = jwt.encode({"sub": "admin", "exp": int(time.time()) + 300}, key, "HS256")
    emit_types(gw, MIXED)  # seq 1..5, replayed below
    with (
        connect(f"{gw.ws_url}?types=*&since=0&token={limited}") as ws,
        connect(f"{gw.ws_url}?since=0&token={everything}") as control,
    ):
        assert recv_json(ws)["type"] == recv_json(control)["type"] == "gateway.hello"
        emit_types(gw, [*MIXED, "task.completed"])  # seq 6..11, live
        got = recv_until(ws, 11)
        seen = recv_until(control, 11)
    assert [(m["seq"], m["type"]) for m in got] == [
        (1, "task.started"),
        (4, "task.progress"),
        (6, "task.started"),
        (9, "task.progress"),
        (11, "task.completed"),
    ]
    assert [m["seq"] for m in seen] == list(range(1, 12))


def test_jwt_expiring_mid_connection_is_closed_1008_within_a_second(gateway_factory, tmp_path: Path) -> None:
    key = secrets.token_hex(32).encode()
    (tmp_path / "hs").write_bytes(key)
    gw = gateway_factory("--auth", "jwt", "--jwt-key-file", str(tmp_path / "hs"), "--jwt-leeway", "0")
    exp = int(time.time()) + 3
    token = jwt.encode({"sub": "short", "exp": exp}, key, "HS256")
    with connect(gw.ws_url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        assert recv_json(ws)["type"] == "gateway.hello"
        with pytest.raises(ConnectionClosed) as info:
            recv_json(ws, timeout=10)
        closed_at = time.time()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    assert exp - 0.05 <= closed_at <= exp + 1.0, closed_at - exp
    assert gw.status()["auth"]["expired"] == 1


def test_jwt_issuer_audience_and_exp_are_required_when_configured(gateway_factory, tmp_path: Path) -> None:
    key = secrets.token_hex(32).encode()
    (tmp_path / "hs").write_bytes(key)
    gw = gateway_factory(
        *("--auth", "jwt", "--jwt-key-file", str(tmp_path / "hs")),
        *("--jwt-issuer", "https://login.example", "--jwt-audience", "event-gateway"),
    )
    good = {"exp": int(time.time()) + 300, "iss": "https://login.example", "aud": "event-gateway"}
    assert handshake_status(f"{gw.ws_url}?token={jwt.encode(good, key, 'HS256')}") == 101
    for claims in (
        {**good, "aud": "billing"},  # signed by the same issuer for another service
        {**good, "iss": "https://other.example"},
        {"iss": "https://login.example", "aud": "event-gateway"},  # never expires
    ):
        assert handshake_status(f"{gw.ws_url}?token={jwt.encode(claims, key, 'HS256')}") == 401, claims
    assert gw.status()["auth"]["refused"]["unauthorized"] == 3


def test_sighup_revokes_a_removed_token_with_1008_and_keeps_the_others(gateway_factory, tmp_path: Path) -> None:
    gone, kept = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    gw = token_gateway(gateway_factory, tmp_path, f"# two operators\n{gone}\n{kept} task.*\n")
    with connect(f"{gw.ws_url}?token={gone}") as revoked, connect(f"{gw.ws_url}?token={kept}") as stays:
        recv_json(revoked), recv_json(stays)
        # The kept token moves to another line: a label change alone must not revoke it.
        (tmp_path / "tokens").write_text(f"# one operator\n\n\n{kept} task.*\n")
        gw.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        with pytest.raises(ConnectionClosed) as info:
            recv_json(revoked)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008
        stays.send(json.dumps({"type": "ping"}))
        assert recv_json(stays)["type"] == "pong"
    assert handshake_status(f"{gw.ws_url}?token={gone}") == 401
    assert gw.status()["auth"]["revoked"] == 1


def reloads(gw: Gateway) -> list[dict]:
    return [json.loads(line) for line in gw.logs().splitlines() if '"auth.reloaded"' in line]


def test_sighup_judges_each_distinct_jwt_once_and_nothing_when_unchanged(gateway_factory, tmp_path: Path) -> None:
    key = secrets.token_hex(32).encode()
    (tmp_path / "hs").write_bytes(key)
    (tmp_path / "hs").chmod(0o600)
    gw = gateway_factory("--auth", "jwt", "--jwt-key-file", str(tmp_path / "hs"))
    exp = int(time.time()) + 600
    tokens = [jwt.encode({"sub": f"u{i}", "exp": exp}, key, "HS256") for i in range(5)]
    with ExitStack() as stack:
        clients = [stack.enter_context(connect(f"{gw.ws_url}?token={tokens[i % 5]}")) for i in range(40)]
        for ws in clients:  # 40 real connections
            assert recv_json(ws)["type"] == "gateway.hello"
        gw.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        wait_for(lambda: reloads(gw), 10, "the first reload")
        assert (reloads(gw)[0]["changed"], reloads(gw)[0]["judged"]) == (False, 0)
        (tmp_path / "hs").write_bytes(secrets.token_hex(32).encode())  # key rotated
        gw.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        wait_for(lambda: len(reloads(gw)) == 2, 10, "the second reload")
        second = reloads(gw)[1]
        assert (second["changed"], second["judged"], second["revoked"]) == (True, 5, 40)
        for ws in clients:
            with pytest.raises(ConnectionClosed) as info:
                recv_json(ws)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1008


def test_failed_attempts_are_rate_limited_per_address_and_counted(gateway_factory, tmp_path: Path) -> None:
    good = secrets.token_urlsafe(16)
    gw = token_gateway(gateway_factory, tmp_path, f"{good}\n")
    # A foreign page's refused attempts (403) do not spend the address's budget ...
    for _ in range(12):
        assert handshake_status(gw.ws_url, origin="http://evil.example") == 403
    # ... nor do a foreign page's no-cors GETs (<img src>), which carry no Origin but Sec-Fetch-Site ...
    for _ in range(12):
        assert handshake_status(f"{gw.ws_url}?token=guess", additional_headers={"Sec-Fetch-Site": "cross-site"}) == 403
    assert handshake_status(f"{gw.ws_url}?token={good}") == 101
    # ... failed authentications do: after the burst, even a good token waits.
    for _ in range(10):
        assert handshake_status(f"{gw.ws_url}?token=guess") == 401
    try:
        connect(f"{gw.ws_url}?token={good}", open_timeout=10)
        raise AssertionError("a rate-limited address was let in")
    except InvalidStatus as exc:
        assert exc.response.status_code == 429 and int(exc.response.headers["Retry-After"]) >= 1
    refused = gw.status()["auth"]["refused"]
    assert (refused["origin"], refused["unauthorized"], refused["rate_limited"]) == (24, 10, 1)


def test_token_used_three_ways_never_appears_in_logs_status_or_metrics(gateway_factory, tmp_path: Path) -> None:
    token = "tok-" + secrets.token_hex(16)
    near_miss = token[:-1] + ("0" if token[-1] != "0" else "1")
    gw = token_gateway(gateway_factory, tmp_path, f"{token} task.*\n", "--log-level", "debug")
    assert handshake_status(f"{gw.ws_url}?token={token}&types=task.*") == 101
    assert handshake_status(gw.ws_url, additional_headers={"Authorization": f"Bearer {token}"}) == 101
    with connect(gw.ws_url, subprotocols=[f"bearer.{token}"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == f"bearer.{token}"  # answered as the browser requires
        assert recv_json(ws)["type"] == "gateway.hello"
    assert handshake_status(f"{gw.ws_url}?token={near_miss}") == 401
    gw.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
    wait_for(lambda: "auth.reloaded" in gw.logs(), what="reload logged")
    status_code, status = http_get(gw.url + "/status")
    metrics_code, metrics = http_get(gw.url + "/metrics")
    assert gw.stop() == 0
    logs = gw.logs()
    assert status_code == 200 and "client.connected" in logs and "auth.refused" in logs
    for secret in (token, near_miss, token[4:20]):
        assert secret not in logs
        assert secret.encode() not in status
        assert secret.encode() not in metrics, metrics_code


def test_auth_none_beyond_loopback_refuses_to_start_with_one_line() -> None:
    port = free_port()
    proc = run_cli("gatewayd", "--listen", f"0.0.0.0:{port}", "--ingest", f"tcp://127.0.0.1:{free_port()}")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert "--auth" in lines[0] and "0.0.0.0" in lines[0] and "--insecure" in lines[0]


def test_gatewayctl_check_and_tail_carry_a_token_to_an_authenticated_gateway(gateway_factory, tmp_path: Path) -> None:
    token = secrets.token_urlsafe(16)
    gw = token_gateway(gateway_factory, tmp_path, f"{token}\n")
    anonymous = run_cli("gatewayctl", "check", "--url", gw.url, "--ingest", gw.ingest)
    assert anonymous.returncode == 1 and "check failed at step websocket" in anonymous.stderr
    checked = run_cli("gatewayctl", "check", "--url", gw.url, "--ingest", gw.ingest, env={"EVENT_GATEWAY_TOKEN": token})
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tailed = run_cli("gatewayctl", "tail", "--url", gw.url, "--token", token, "--since", "0", "--count", "1")
    assert tailed.returncode == 0, tailed.stderr
    assert json.loads(tailed.stdout.splitlines()[-1])["type"] == "gatewayctl.probe"
    assert token not in gw.logs()


def test_group_or_world_readable_tokens_file_is_warned_about(gateway_factory, tmp_path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("good-token\n")
    for mode, who in ((0o644, "others"), (0o640, "group"), (0o600, None)):
        tokens.chmod(mode)
        gw = gateway_factory("--auth", "token", "--tokens-file", str(tokens))
        warned = [line for line in gw.logs().splitlines() if '"keys.file_exposed"' in line]
        if who is None:
            assert warned == []
        else:
            assert len(warned) == 1 and f'"readable_by":"{who}"' in warned[0].replace(" ", ""), warned
            assert "good-token" not in gw.logs()
        gw.stop()
