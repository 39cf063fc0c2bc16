"""The files the options name, read once at startup (and again on SIGHUP) and handed to their users.

:func:`load_keys` reads the tokens file or JWT key (``--auth``) and the CURVE
server certificate and client directory (``--curve-*``), and parses the host
and proxy rules (``--allow-host``, ``--trusted-proxy``).  A file that cannot be
used raises :class:`~gateway.process.config.ConfigError` naming the option, so
``gatewayd`` stops with one line before binding anything, and a SIGHUP reload
keeps the old keys in force.  Secrets never reach the message.
:func:`warn_exposed` logs ``keys.file_exposed`` for each secret file (tokens, JWT
key, CURVE secret key) that is group- or world-readable; the daemon calls it once
logging is configured, at start and on every SIGHUP.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from gateway.core.permissions import readable_by
from gateway.policy.credentials import Credentials, CredentialsError, load_credentials
from gateway.policy.peers import PeerPolicy, PolicyError
from gateway.ports.curve import CurveKeyError, load_client_keys, load_server_keypair
from gateway.process.config import Config, fail, option_name

log = structlog.get_logger("gateway.keys")


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


def warn_exposed(config: Config) -> None:
    """Log ``keys.file_exposed`` for each secret file in use that others than its owner may read."""
    secrets = {"curve_key_file": config.curve_key_file}
    if config.auth == "token":
        secrets["tokens_file"] = config.tokens_file
    elif config.auth == "jwt":
        secrets["jwt_key_file"] = config.jwt_key_file
    for field, path in secrets.items():
        if not path:
            continue
        try:
            mode = os.stat(path).st_mode
        except OSError:
            continue  # load_keys reported an unusable file already
        who = readable_by(mode)
        if who is not None:
            log.warning(
                "keys.file_exposed", option=option_name(field), path=path, mode=oct(mode & 0o777), readable_by=who
            )
