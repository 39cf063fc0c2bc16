"""Optional ZeroMQ CURVE on the ingest socket: who may publish (``--curve-key-file``, ``--curve-clients-dir``).

With CURVE on, the gateway's SUB is a CURVE server with the key pair from
``--curve-key-file`` (a ZeroMQ certificate with ``secret-key``, as written by
``zmq.auth.create_certificates``), and a ZAP handler (pyzmq's
``ThreadAuthenticator``, on the ingest socket's own context) admits only
emitters whose public key is in a ``*.key`` certificate in
``--curve-clients-dir``.  Everything is encrypted; an emitter without the
server's public key, or with a key not in the directory, completes no
handshake and so delivers nothing.

The allowed keys are an immutable set swapped whole on SIGHUP
(:meth:`CurveServer.reload`); connected emitters keep their session, new
handshakes see the new set.  Denials are counted and logged at most once per
``LOG_INTERVAL`` (a hostile emitter retrying cannot flood the log).
"""

from __future__ import annotations

import os
import time
from typing import Any

import structlog
import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from gateway.core.throttle import LogThrottle

LOG_INTERVAL = 5.0
#: The ZAP domain of the ingest socket (enforced: see :meth:`CurveServer.configure`).
ZAP_DOMAIN = "event-gateway"

log = structlog.get_logger("gateway.curve")


class CurveKeyError(ValueError):
    """A key file or directory cannot be used; ``field`` names the option."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(why)
        self.field = field


def load_server_keypair(path: str) -> tuple[bytes, bytes]:
    """(public, secret) Z85 keys from a ZeroMQ certificate that holds the secret key."""
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise CurveKeyError("curve_key_file", f"cannot load a ZeroMQ certificate from {path}: {exc}") from None
    if not secret:
        raise CurveKeyError("curve_key_file", f"{path} holds no secret-key (give the *.key_secret certificate)")
    return public, secret


def load_client_keys(directory: str) -> frozenset[bytes]:
    """The Z85 public keys of every ``*.key`` certificate in ``directory`` (may be empty)."""
    if not os.path.isdir(directory):
        raise CurveKeyError("curve_clients_dir", f"{directory} is not a directory")
    try:
        return frozenset(zmq.auth.load_certificates(directory))
    except (OSError, ValueError) as exc:
        raise CurveKeyError("curve_clients_dir", f"cannot load certificates from {directory}: {exc}") from None


class CurveServer:
    """The CURVE server side of the ingest socket and its ZAP handler."""

    def __init__(self, keypair: tuple[bytes, bytes], allowed: frozenset[bytes]) -> None:
        self.public, self._secret = keypair
        self.allowed = allowed
        self.denied = 0
        self._authenticator: ThreadAuthenticator | None = None
        self._throttle = LogThrottle(LOG_INTERVAL)

    def configure(self, ctx: zmq.Context[Any], sock: zmq.Socket[bytes]) -> None:
        """Start the ZAP handler on ``ctx`` (before bind, so no handshake skips it) and make ``sock`` a server."""
        if self._authenticator is None:
            authenticator = ThreadAuthenticator(ctx)
            authenticator.start()
            authenticator.configure_curve_callback(domain=ZAP_DOMAIN, credentials_provider=self)
            self._authenticator = authenticator
        # Fail closed: without a ZAP handler (its thread died or stopped) libzmq accepts every
        # CURVE client ("Stonehouse").  ZAP_ENFORCE_DOMAIN refuses the handshake instead; it
        # needs a ZAP domain on the socket (with none, libzmq skips ZAP altogether).
        sock.zap_domain = ZAP_DOMAIN.encode()
        sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)
        sock.curve_secretkey = self._secret
        sock.curve_publickey = self.public
        sock.curve_server = True

    def callback(self, domain: str, key: bytes) -> bool:
        """ZAP (auth thread): is this emitter's Z85 public key allowed?"""
        if key in self.allowed:
            return True
        self.denied += 1
        held = self._throttle.allow("denied", time.monotonic())
        if held is not None:
            log.warning("ingest.emitter_denied", key=key.decode(errors="replace"), count=held + 1)
        return False

    def reload(self, public: bytes, allowed: frozenset[bytes]) -> None:
        """SIGHUP: adopt the re-read allowed keys (the server key pair is fixed while bound)."""
        self.allowed = allowed
        if public != self.public:
            log.warning("ingest.curve_key_changed", note="the server key pair changes on restart only")
        log.info("ingest.curve_reloaded", allowed=len(self.allowed))

    def stop(self) -> None:
        """Stop the ZAP handler; must run before the context is terminated."""
        if self._authenticator is not None:
            self._authenticator.stop()
            self._authenticator = None

    def statistics(self) -> dict[str, Any]:
        return {"allowed_keys": len(self.allowed), "denied": self.denied}
