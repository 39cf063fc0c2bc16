"""Auth without sockets (``gateway.policy``): tokens files, JWT keys and claims, token sources, origins, the limiter."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import replace
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.core.filters import Filter
from gateway.core.ring import Ring
from gateway.engine.fanout import Hub
from gateway.policy.auth import Authenticator
from gateway.policy.credentials import (
    Credentials,
    CredentialsError,
    Refused,
    extract_token,
    parse_jwt_key,
    parse_tokens,
)
from gateway.policy.limits import FAILURE_BURST, FAILURE_REFILL_S, FailureLimiter
from gateway.policy.origins import normalize_origin, origin_allowed, own_origins
from gateway.policy.peers import PeerPolicy, host_allowed, host_name
from gateway.policy.verdicts import Attempt, Denial, Grant
from gateway.process.config import ConfigError, load
from gateway.process.keys import load_keys

SECRET = b"s" * 32


def test_tokens_file_globs_comments_and_blank_lines() -> None:
    tokens = parse_tokens(b"# operators\n\nalpha\n  beta task.* provider.status_changed  \n# gamma\n")
    creds = Credentials("token", tokens=tokens)
    assert creds.judge("alpha", 0).types == ()
    beta = creds.judge("beta", 0)
    assert (beta.label, beta.types) == ("token@4", ("task.*", "provider.status_changed"))
    for bad in ("gamma", "#", "", None, "alpha "):
        with pytest.raises(Refused) as info:
            creds.judge(bad, 0)
        assert info.value.status == 401


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"tok Task.*\n", "line 1: bad type glob"),
        (b"tok a.b\n# x\ntok c.d\n", "line 3: token repeats token@1"),
        (b"# only comments\n\n", "holds no token"),
    ],
)
def test_bad_tokens_file_names_the_line_never_the_token(data: bytes, needle: str) -> None:
    with pytest.raises(CredentialsError) as info:
        parse_tokens(data)
    assert needle in str(info.value) and "tok " not in str(info.value) and info.value.field == "tokens_file"


def _rsa() -> tuple[rsa.RSAPrivateKey, bytes]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def test_jwt_key_file_told_apart_by_content() -> None:
    assert parse_jwt_key(SECRET + b"\n") == (SECRET, "HS256")
    private, public = _rsa()
    key, alg = parse_jwt_key(public)
    assert alg == "RS256" and isinstance(key, rsa.RSAPublicKey)
    pem_private = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(CredentialsError, match="private key"):
        parse_jwt_key(pem_private)
    with pytest.raises(CredentialsError, match="at least 32"):
        parse_jwt_key(b"short\n")


def test_jwt_claims_scope_and_exp() -> None:
    creds = Credentials("jwt", jwt_key=SECRET, jwt_algorithm="HS256", jwt_leeway=0)
    now = time.time()
    token = jwt.encode(
        {"sub": "ui", "exp": int(now) + 60, "types": ["task.*"], "entities": ["task:abc"]}, SECRET, "HS256"
    )
    scope = creds.judge(token, now)
    assert scope.label == "jwt:ui" and scope.types == ("task.*",) and scope.entities == (("task", "abc"),)
    assert scope.expires_at == int(now) + 60
    with pytest.raises(Refused, match="token expired"):
        creds.judge(token, now + 61)
    forged = jwt.encode({"types": ["*"], "exp": int(now) + 60}, b"x" * 32, "HS256")
    with pytest.raises(Refused, match=r"invalid token \(InvalidSignatureError\)"):
        creds.judge(forged, now)
    for claims in ({"types": []}, {"types": "task.*"}, {"entities": ["nokind"]}, {"types": ["a.b,c.d"]}):
        with pytest.raises(Refused) as info:
            creds.judge(jwt.encode({**claims, "exp": int(now) + 60}, SECRET, "HS256"), now)
        assert info.value.status == 403


def test_jwt_without_exp_is_refused_and_issuer_audience_checked_when_set() -> None:
    now = time.time()
    exp = int(now) + 60
    plain = Credentials("jwt", jwt_key=SECRET)
    with pytest.raises(Refused, match=r"MissingRequiredClaimError"):
        plain.judge(jwt.encode({"sub": "forever"}, SECRET, "HS256"), now)
    # no audience configured: a token meant for another service (it names one) is refused
    with pytest.raises(Refused, match=r"InvalidAudienceError"):
        plain.judge(jwt.encode({"exp": exp, "aud": "billing"}, SECRET, "HS256"), now)
    strict = Credentials("jwt", jwt_key=SECRET, jwt_issuer="https://login.example", jwt_audience="event-gateway")
    good = {"exp": exp, "iss": "https://login.example", "aud": "event-gateway"}
    assert strict.judge(jwt.encode(good, SECRET, "HS256"), now).expires_at == exp + 30
    for bad, error in (
        ({**good, "iss": "https://evil.example"}, "InvalidIssuerError"),
        ({**good, "aud": "billing"}, "InvalidAudienceError"),
        ({"exp": exp, "aud": "event-gateway"}, "MissingRequiredClaimError"),
        ({"exp": exp, "iss": "https://login.example"}, "MissingRequiredClaimError"),
    ):
        with pytest.raises(Refused, match=error) as info:
            strict.judge(jwt.encode(bad, SECRET, "HS256"), now)
        assert info.value.status == 401


def test_jwt_leeway_covers_a_fast_issuer_clock_and_a_just_passed_exp() -> None:
    now = time.time()
    fast = jwt.encode({"exp": int(now) + 300, "iat": int(now) + 20, "nbf": int(now) + 20}, SECRET, "HS256")
    just_expired = jwt.encode({"exp": int(now) - 10}, SECRET, "HS256")
    lenient = Credentials("jwt", jwt_key=SECRET)  # the default, 30 s
    assert lenient.judge(fast, now).expires_at == int(now) + 330
    assert lenient.judge(just_expired, now).expires_at == int(now) + 20  # closed (1008) then
    exact = Credentials("jwt", jwt_key=SECRET, jwt_leeway=0)
    with pytest.raises(Refused, match="ImmatureSignatureError"):
        exact.judge(fast, now)
    with pytest.raises(Refused, match="token expired"):
        exact.judge(just_expired, now)


def test_rs256_rejects_hs256_token_signed_with_the_public_key() -> None:
    """The classic algorithm-confusion attack: the public key used as an HMAC secret."""
    private, public = _rsa()
    key, alg = parse_jwt_key(public)
    creds = Credentials("jwt", jwt_key=key, jwt_algorithm=alg)
    exp = int(time.time()) + 60
    assert creds.judge(jwt.encode({"sub": "x", "exp": exp}, private, "RS256"), time.time()).label == "jwt:x"
    header = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT"}')
    payload = jwt.utils.base64url_encode(b'{"sub":"x","exp":%d}' % exp)
    sig = jwt.utils.base64url_encode(hmac.new(public, header + b"." + payload, hashlib.sha256).digest())
    with pytest.raises(Refused):
        creds.judge((header + b"." + payload + b"." + sig).decode(), time.time())


def test_unusable_credentials_and_exposed_ingest_stop_startup_with_one_line(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("secret-token Not.A.Glob\n")
    key = tmp_path / "key"
    key.write_text("too short\n")
    cases = [
        ({"auth": "token", "tokens_file": str(tokens)}, "--tokens-file", "line 1"),
        ({"auth": "jwt", "jwt_key_file": str(key)}, "--jwt-key-file", "at least 32"),
        ({"allow_origin": ["evil.example"]}, "--allow-origin", "scheme://host"),
        ({"curve_key_file": str(key)}, "--curve-clients-dir", "go together"),
        ({"ingest": "tcp://0.0.0.0:5556"}, "--ingest", "use CURVE or ipc"),
    ]
    for flags, option, why in cases:
        with pytest.raises(ConfigError) as info:
            load_keys(load(flags, environ={}))  # what gatewayd does before binding
        message = str(info.value)
        assert option in message and why in message and "\n" not in message and "secret-token" not in message
    assert load({"ingest": "tcp://0.0.0.0:5556", "insecure": True}, environ={}).insecure


def test_scope_narrows_the_filter_on_intersect() -> None:
    flt = Filter(("*",)).intersect(("task.*",), ())
    assert flt.matches("task.progress", None, None)
    assert not flt.matches("provider.status_changed", None, None)


def test_token_sources_in_order_and_subprotocol_answered() -> None:
    assert extract_token({"token": "q"}, {"Authorization": "Bearer h"}) == ("q", None)
    assert extract_token({}, {"Authorization": "bearer  h "}) == ("h", None)
    assert extract_token({}, {"Authorization": "Basic xyz"}) == (None, None)
    assert extract_token({}, {"Sec-WebSocket-Protocol": "events.v1, bearer.p"}) == ("p", "bearer.p")
    # Offered subprotocol answered even when the token came from elsewhere (or auth is off).
    assert extract_token({"token": "q"}, {"Sec-WebSocket-Protocol": "bearer.p"}) == ("q", "bearer.p")
    assert extract_token({}, {"Sec-WebSocket-Protocol": "bearer."}) == (None, None)


def test_origin_rules() -> None:
    own = own_origins("http", "127.0.0.1:8765", None)
    assert own == {"http://127.0.0.1:8765"}
    listed = frozenset({normalize_origin("https://App.example:443/")})
    assert listed == {"https://app.example"}
    assert origin_allowed(None, own, listed, True)  # not a browser: auth decides
    assert origin_allowed(None, own, listed, True, "none")  # typed into the address bar
    assert origin_allowed(None, own, listed, True, "same-origin")
    assert not origin_allowed(None, own, listed, True, "cross-site")  # another site's <img src=…>
    assert not origin_allowed(None, own, listed, True, "same-site")
    assert origin_allowed("http://127.0.0.1:8765", own, listed, True)
    assert origin_allowed("https://app.example", own, listed, True)
    assert not origin_allowed("http://evil.example", own, listed, True)
    assert not origin_allowed("null", own, listed, True)
    assert not origin_allowed("http://127.0.0.1:9999", own, listed, True)
    # DNS rebinding: own origin by a name is not trusted with --auth none.
    rebound = own_origins("http", "evil.example:8765", None)
    assert not origin_allowed("http://evil.example:8765", rebound, listed, own_trusted=False)
    assert host_allowed(host_name("127.0.0.1:8765"), ()) and host_allowed(host_name("[::1]:8765"), ())
    assert host_allowed(host_name("localhost:1"), ()) and not host_allowed(host_name("evil.example:8765"), ())
    assert own_origins("http", "gw.lan", "https") == {"http://gw.lan", "https://gw.lan"}


def test_failure_limiter_blocks_after_burst_refills_and_stays_bounded() -> None:
    limiter = FailureLimiter(burst=3, refill_s=10.0, max_addresses=2)
    assert [limiter.fail("a", 0.0) for _ in range(3)] == [False, False, True]
    assert limiter.retry_after("a", 0.0) == pytest.approx(10.0)
    assert limiter.retry_after("b", 0.0) == 0.0
    assert limiter.retry_after("a", 10.0) == 0.0
    limiter.fail("b", 0.0)
    limiter.fail("c", 0.0)
    assert len(limiter) == 2 and limiter.retry_after("a", 0.0) == 0.0  # oldest forgotten
    v6 = FailureLimiter(burst=1)
    v6.fail("2001:db8:1:2::1", 0.0)
    assert v6.retry_after("2001:db8:1:2:ffff::9", 0.0) > 0  # same /64: same bucket
    assert v6.retry_after("2001:db8:1:3::1", 0.0) == 0.0
    assert FailureLimiter.key("::ffff:10.0.0.1") == "10.0.0.1"


def test_decide_judges_plain_values_origin_then_rate_limit_then_credential() -> None:
    credentials = Credentials("token", tokens=parse_tokens(b"good\n"))
    auth = Authenticator(credentials, ["https://app.example"], PeerPolicy.parse([], []), Hub(Ring(10)))
    base = Attempt("10.0.0.1", "http", "127.0.0.1:8765")
    evil = replace(base, origin="https://evil.example", token="good")
    assert auth.decide(evil, Filter(), 0.0, 0.0) == Denial(403, "origin not allowed\n")
    granted = auth.decide(replace(base, origin="https://app.example", token="good"), Filter(), 0.0, 0.0)
    assert isinstance(granted, Grant) and granted.scope.label == "token@1" and granted.origin == "https://app.example"
    unknown = Denial(401, "unknown token\n", {"WWW-Authenticate": "Bearer"})
    bad = [auth.decide(replace(base, token="bad"), Filter(), 0.0, 0.0) for _ in range(FAILURE_BURST)]
    assert bad == [unknown] * FAILURE_BURST
    blocked = auth.decide(replace(base, token="good"), Filter(), 0.0, 0.0)  # even a good token waits
    assert blocked == Denial(429, "too many failed attempts\n", {"Retry-After": str(int(FAILURE_REFILL_S) + 1)})
    assert isinstance(auth.decide(replace(base, token="good"), Filter(), 0.0, FAILURE_REFILL_S), Grant)
    refused = {k: v for k, v in auth.refused.items() if v}
    assert refused == {"origin": 1, "unauthorized": FAILURE_BURST, "rate_limited": 1}
