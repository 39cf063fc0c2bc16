"""The files the options name, read once at startup (and again on SIGHUP) and handed to their users.

:func:`load_keys` reads the tokens file or JWT key (``--auth``) and the CURVE
server certificate and client directory (``--curve-*``), and parses the host
and proxy rules (``--allow-host``, ``--trusted-proxy``).  A file that cannot be
used raises :class:`~gateway.process.config.ConfigError` naming the option, so
``gatewayd`` stops with one line before binding anything, and a SIGHUP reload
keeps the old keys in force.  Secrets never reach the message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.policy.credentials import Credentials, CredentialsError, load_credentials
from gateway.policy.peers import PeerPolicy, PolicyError
from gateway.ports.curve import CurveKeyError, load_client_keys, load_server_keypair
from gateway.process.config import Config, fail


@dataclass(frozen=True)
class CurveKeys:
    """The ingest socket's CURVE key pair (Z85 public, secret) and the emitters' allowed public keys."""

    keypair: tuple[bytes, bytes]
    allowed: frozenset[bytes]


@dataclass(frozen=True)
class Keys:
    credentials: Credentials
    peers: PeerPolicy
    curve: CurveKeys | None = None


def load_keys(config: Config, sources: Mapping[str, str] | None = None) -> Keys:
    """Every key file ``config`` names, parsed; :class:`~gateway.process.config.ConfigError` (one
    line naming the option and, from ``sources`` (see ``config.load``), where it was set) if unusable."""
    try:
        peers = PeerPolicy.parse(config.allow_host, config.trusted_proxy)
        credentials = load_credentials(
            config.auth,
            config.tokens_file,
            config.jwt_key_file,
            jwt_issuer=config.jwt_issuer,
            jwt_audience=config.jwt_audience,
            jwt_leeway=config.jwt_leeway,
        )
        curve = None
        if config.curve_key_file and config.curve_clients_dir:
            curve = CurveKeys(load_server_keypair(config.curve_key_file), load_client_keys(config.curve_clients_dir))
    except (CredentialsError, CurveKeyError, PolicyError) as exc:
        raise fail(exc.field, sources or {}, str(exc)) from None
    return Keys(credentials, peers, curve)
