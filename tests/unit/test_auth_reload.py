"""SIGHUP in ``gateway.policy.auth`` without sockets: revocation reaches a client that was between its
credential check and joining, each distinct token is judged once and at most ``JUDGE_BATCH`` per turn
of the loop, an unchanged reload judges nothing, and ``limited_addresses`` counts only addresses blocked now."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import jwt

from gateway.core.filters import Filter
from gateway.core.ring import Ring
from gateway.engine.fanout import Hub
from gateway.policy.auth import JUDGE_BATCH, Authenticator
from gateway.policy.credentials import Credentials, Scope
from gateway.policy.limits import FailureLimiter
from gateway.policy.verdicts import Attempt, Grant
from gateway.process.config import Config, load
from gateway.process.keys import load_keys
from tests.unit.test_fanout import Client

EVERYTHING = Filter((), ())
SECRET = b"k" * 32


def token_auth(tmp_path: Path, lines: str) -> tuple[Authenticator, Config, Hub]:
    tokens = tmp_path / "tokens"
    tokens.write_text(lines)
    tokens.chmod(0o600)
    config = load({"auth": "token", "tokens_file": str(tokens)}, environ={})
    hub = Hub(Ring(16))
    return authenticator(config, hub), config, hub


def jwt_auth(tmp_path: Path) -> tuple[Authenticator, Config, Hub]:
    """An HS256 JWT authenticator (key ``SECRET``, a 0600 file) on an empty hub."""
    key = tmp_path / "hs"
    key.write_bytes(SECRET)
    key.chmod(0o600)
    config = load({"auth": "jwt", "jwt_key_file": str(key)}, environ={})
    hub = Hub(Ring(16))
    return authenticator(config, hub), config, hub


def authenticator(config: Config, hub: Hub) -> Authenticator:
    """As the daemon wires it: the key files read by ``process.keys``, handed over."""
    keys = load_keys(config)
    return Authenticator(keys.credentials, config.allow_origin, keys.peers, hub)


def load_credentials(config: Config) -> Credentials:
    return load_keys(config).credentials


def granted(auth: Authenticator, token: str, peer: str) -> Grant:
    """What a subscribing request with ``token`` from ``peer`` is granted (before its upgrade)."""
    verdict = auth.decide(Attempt(peer, "http", "127.0.0.1:8765", token=token), EVERYTHING, time.time(), 0.0)
    assert isinstance(verdict, Grant), verdict
    return verdict


def test_sighup_between_credential_check_and_join_still_revokes(tmp_path: Path) -> None:
    auth, config, hub = token_auth(tmp_path, "gone-token\nkept-token\n")
    gone = granted(auth, "gone-token", "10.0.0.1")  # judged before the upgrade …
    kept = granted(auth, "kept-token", "10.0.0.2")
    (tmp_path / "tokens").write_text("kept-token\n")
    keys = load_keys(config)  # … SIGHUP while the upgrade awaits: neither client is watched yet
    auth.reload(keys.credentials, config.allow_origin, keys.peers)
    late, stays = Client(hub), Client(hub)
    auth.watch(late.sub, gone)  # … then it joins
    auth.watch(stays.sub, kept)
    assert late.kicked == (1008, "auth revoked") and stays.kicked is None
    assert auth.revoked == 1 and late.sub not in hub.subscribers and stays.sub in hub.subscribers


@dataclass(frozen=True)
class CountingCredentials(Credentials):
    """Real credentials that remember which tokens they judged."""

    judged: list[str | None] = field(default_factory=list)

    def judge(self, token: str | None, now: float) -> Scope:
        self.judged.append(token)
        return super().judge(token, now)


def counting(credentials: Credentials, **changes: object) -> CountingCredentials:
    values = {f.name: getattr(credentials, f.name) for f in fields(Credentials)}
    return CountingCredentials(**{**values, **changes})  # type: ignore[arg-type]


async def test_reload_judges_each_distinct_token_once_and_nothing_when_unchanged(tmp_path: Path) -> None:
    auth, config, hub = jwt_auth(tmp_path)
    exp = int(time.time()) + 3600
    tokens = [jwt.encode({"sub": f"user{i}", "exp": exp}, SECRET, "HS256") for i in range(4)]
    clients = []
    for i in range(10_000):  # 10,000 JWT clients sharing four tokens
        client = Client(hub, peer=f"10.0.{i // 250}.{i % 250}")
        auth.watch(client.sub, granted(auth, tokens[i % 4], client.sub.peer))
        clients.append(client)

    same = counting(load_credentials(config))
    auth.adopt(same)  # SIGHUP, nothing changed: no signature is checked
    assert same.judged == [] and auth.generation == 0

    rotated = counting(load_credentials(config), fingerprint=b"rotated")  # same key, new fingerprint
    auth.adopt(rotated)
    assert sorted(rotated.judged) == sorted(tokens)  # four checks for 10,000 clients
    assert auth.revoked == 0 and all(c.kicked is None for c in clients)

    other = counting(load_credentials(config), jwt_key=b"o" * 32, fingerprint=b"new key")
    auth.adopt(other)
    assert len(other.judged) == 4 and auth.revoked == 10_000 and not hub.subscribers
    assert all(c.kicked == (1008, "auth revoked") for c in clients)


def test_unchanged_files_on_sighup_keep_the_fingerprint(tmp_path: Path) -> None:
    auth, config, _ = token_auth(tmp_path, "a-token\n")
    assert load_credentials(config).fingerprint == auth.credentials.fingerprint
    (tmp_path / "tokens").write_text("a-token task.*\n")
    assert load_credentials(config).fingerprint != auth.credentials.fingerprint


def test_limited_addresses_counts_only_addresses_blocked_now() -> None:
    limiter = FailureLimiter(burst=3, refill_s=10.0)
    for _ in range(3):
        limiter.fail("10.0.0.1", 0.0)
    limiter.fail("10.0.0.2", 0.0)  # failed once: remembered, not blocked
    assert (len(limiter), limiter.blocked(0.0)) == (2, 1)
    assert limiter.blocked(10.0) == 0  # refilled: one attempt allowed again


async def test_many_distinct_tokens_are_rejudged_a_batch_per_loop_turn(tmp_path: Path) -> None:
    """A key rotation with thousands of distinct JWTs never holds the loop for more than JUDGE_BATCH checks;
    clients that leave meanwhile are skipped, clients that join meanwhile are judged by the new key."""
    auth, config, hub = jwt_auth(tmp_path)
    exp = int(time.time()) + 3600
    clients = []
    for i in range(1_000):  # every client its own token
        client = Client(hub, peer=f"10.1.{i // 250}.{i % 250}")
        auth.watch(client.sub, granted(auth, jwt.encode({"sub": f"u{i}", "exp": exp}, SECRET, "HS256"), "p"))
        clients.append(client)
    new_key = b"n" * 32
    rotated = counting(load_credentials(config), jwt_key=new_key, fingerprint=b"rotated")
    per_turn: list[int] = []

    auth.adopt(rotated)
    assert len(rotated.judged) == JUDGE_BATCH  # the first batch, synchronously
    leaver = next(c for c in clients if c.kicked is None)
    auth.release(leaver.sub)  # leaves while the pass is under way
    hub.remove(leaver.sub)
    joiner = Client(hub)
    auth.watch(joiner.sub, granted(auth, jwt.encode({"sub": "new", "exp": exp}, new_key, "HS256"), "p"))
    deadline = time.monotonic() + 10
    while auth.revoked < 999:
        before = len(rotated.judged)
        await asyncio.sleep(0)  # yield exactly one turn of the loop: the unit the test counts in
        per_turn.append(len(rotated.judged) - before)
        assert time.monotonic() < deadline, "the pass did not finish"
    # 999 re-judged (not the leaver) + the joiner's own check at connect
    assert max(per_turn) <= JUDGE_BATCH and len(rotated.judged) == 1_000
    assert leaver.kicked is None and joiner.kicked is None and set(hub.subscribers) == {joiner.sub}
