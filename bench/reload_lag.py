"""How long one SIGHUP holds the event loop with 10,000 watched RS256 JWT clients (issue 12).

In-process, no sockets: a real :class:`~gateway.policy.auth.Authenticator` and hub with
10,000 subscribers on null transports, each holding a JWT; then a reload with unchanged
files and one with a rotated fingerprint, for few and for all-distinct tokens.  Prints the
longest single hold of the loop (one :meth:`Authenticator._rejudge` batch) and the total.
Run: ``.venv/bin/python -m bench.reload_lag`` (about a minute; not part of ``make bench``).
"""

# ruff: noqa: SLF001  # the bench times the authenticator's private batch step from outside
from __future__ import annotations

import asyncio
import dataclasses
import gc
import tempfile
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.core.filters import Filter
from gateway.core.ring import Ring
from gateway.engine.fanout import Hub
from gateway.engine.subscriber import Subscriber
from gateway.policy import auth as policy
from gateway.policy.verdicts import Attempt, Grant
from gateway.process.config import load
from gateway.process.keys import load_keys

CLIENTS = 10_000


class NullTransport(asyncio.Transport):
    def write(self, data: bytes | bytearray | memoryview) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False


class NullSubscriber(Subscriber):
    kind = "bench"

    def kick(self, code: int, reason: str) -> None:
        pass


async def measure(distinct: int, pem: Path, private: Any) -> str:
    holds: list[float] = []
    rejudge = policy.Authenticator._rejudge

    def timed(self: policy.Authenticator, *args: Any) -> None:
        started = time.perf_counter()
        rejudge(self, *args)
        holds.append(time.perf_counter() - started)

    policy.Authenticator._rejudge = timed  # type: ignore[method-assign,assignment]  # the bench wraps the batch step to time it
    config = load({"auth": "jwt", "jwt_key_file": str(pem)}, environ={})
    keys = load_keys(config)
    hub = Hub(Ring(16))
    auth = policy.Authenticator(keys.credentials, config.allow_origin, keys.peers, hub)
    exp = int(time.time()) + 3600
    tokens = [jwt.encode({"sub": f"u{i}", "exp": exp}, private, "RS256") for i in range(distinct)]
    for i in range(CLIENTS):
        sub = NullSubscriber(NullTransport(), Filter((), ()), "10.0.0.1")
        hub.add(sub, 0)
        verdict = auth.decide(
            Attempt("10.0.0.1", "http", "127.0.0.1", token=tokens[i % distinct]),
            Filter((), ()),
            time.time(),
            0.0,
        )
        assert isinstance(verdict, Grant)
        auth.watch(sub, verdict)
    gc.collect()
    gc.freeze()  # as the daemon does after startup
    gc.set_threshold(50_000, 20, 10)
    started = time.perf_counter()
    auth.adopt(load_keys(config).credentials)
    unchanged = time.perf_counter() - started
    rotated = dataclasses.replace(load_keys(config).credentials, fingerprint=b"rotated")
    started = time.perf_counter()
    auth.adopt(rotated)
    idle = 0
    while idle < 3:  # until no batch ran for three turns of the loop
        before = len(holds)
        await asyncio.sleep(0)
        idle = idle + 1 if len(holds) == before else 0
    total = time.perf_counter() - started
    policy.Authenticator._rejudge = rejudge  # type: ignore[method-assign]
    gc.unfreeze()
    return (
        f"{CLIENTS:,} RS256 clients, {distinct:,} distinct tokens: unchanged reload {unchanged * 1e3:.2f} ms; "
        f"changed: {len(holds)} loop turns, longest hold {max(holds) * 1e3:.1f} ms, all judged in {total * 1e3:.0f} ms"
    )


def main() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with tempfile.TemporaryDirectory() as tmp:
        pem = Path(tmp) / "jwt.pub"
        pem.write_bytes(
            private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        pem.chmod(0o600)
        for distinct in (10, CLIENTS):
            print(asyncio.run(measure(distinct, pem, private)))


if __name__ == "__main__":
    main()
