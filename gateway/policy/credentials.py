"""Credentials (``--auth token|jwt``): the tokens file and JWT key, parsed; a token judged into a :class:`Scope`.

Pure: bytes and strings in, a :class:`Scope` or :class:`Refused` out (time passed
in).  Tokens are secrets: they are never logged, never put in an error text, a
status field or a metric; static tokens are looked up by their SHA-256 digest.
A credential is named by a label (``token@<line>`` of the tokens file, or
``jwt:<sub>``).  Files are read by :func:`load_credentials` (the daemon, at
startup and on SIGHUP); a file that cannot be used raises
:class:`CredentialsError` naming the option.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.core.filters import FilterError, parse_entities, parse_types

#: Minimum HS256 secret length (RFC 7518 §3.2) and RSA key size accepted for JWTs.
MIN_HS256_BYTES = 32
MIN_RSA_BITS = 2048
SUBPROTOCOL_PREFIX = "bearer."


class CredentialsError(ValueError):
    """A tokens or key file cannot be used; ``field`` names the option, ``str()`` says why."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(why)
        self.field = field


class Refused(Exception):
    """A credential was judged and refused: ``status`` 401 or 403, ``reason`` is safe to show."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Scope:
    """What one credential may see (empty = no limit) and until when (unix time)."""

    label: str
    types: tuple[str, ...] = ()
    entities: tuple[tuple[str, str], ...] = ()
    expires_at: float | None = None

    @property
    def limits(self) -> tuple[object, ...]:
        """Everything but the label: equal limits ⇔ the credential grants the same."""
        return (self.types, self.entities, self.expires_at)


@dataclass(frozen=True)
class Credentials:
    """The parsed ``--tokens-file`` / ``--jwt-key-file`` for one ``--auth`` mode."""

    mode: str = "none"
    #: SHA-256 digest of each static token → its scope.
    tokens: Mapping[bytes, Scope] = field(default_factory=dict)
    jwt_key: Any = None
    jwt_algorithm: str = "HS256"
    #: ``--jwt-issuer`` / ``--jwt-audience``: the ``iss`` / ``aud`` a token must carry (None: a
    #: token's ``iss`` is not checked; a token carrying ``aud`` is refused, it is meant for another service).
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    #: ``--jwt-leeway``: seconds of clock skew allowed on ``exp``, ``nbf`` and ``iat``.
    jwt_leeway: float = 30.0
    #: Digest of everything the verdicts depend on (mode, file bytes, JWT options): equal
    #: fingerprints judge every token alike, so a SIGHUP that changed nothing judges nothing.
    fingerprint: bytes = b""

    def judge(self, token: str | None, now: float) -> Scope:
        """The scope ``token`` grants at ``now``, or :class:`Refused`.  Never echoes the token."""
        if self.mode == "none":
            return Scope("anonymous")
        if not token:
            raise Refused(401, "a token is required")
        if self.mode == "token":
            scope = self.tokens.get(_digest(token))
            if scope is None:
                raise Refused(401, "unknown token")
            return scope
        return self._judge_jwt(token, now)

    def _judge_jwt(self, token: str, now: float) -> Scope:
        try:
            claims = jwt.decode(
                token,
                self.jwt_key,
                algorithms=[self.jwt_algorithm],
                # exp is required, and checked below against ``now``; iss/aud when configured.
                options={"verify_exp": False, "require": ["exp"]},
                issuer=self.jwt_issuer,
                audience=self.jwt_audience,
                leeway=self.jwt_leeway,
            )
        except jwt.PyJWTError as exc:
            # The class name, not the message: no part of the token reaches a log or a response.
            raise Refused(401, f"invalid token ({type(exc).__name__})") from None
        exp = claims["exp"]
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise Refused(401, "invalid token: exp must be a number")
        expires_at = float(exp) + self.jwt_leeway  # the connection is closed then (1008)
        if expires_at <= now:
            raise Refused(401, "token expired")
        sub = claims.get("sub")
        label = f"jwt:{sub[:64]}" if isinstance(sub, str) else "jwt"
        types = _claim_list(claims, "types", parse_types)
        entities = _claim_list(claims, "entities", parse_entities)
        return Scope(label, types, entities, expires_at)


def _claim_list(claims: Mapping[str, Any], name: str, parse: Callable[[str], tuple[Any, ...]]) -> tuple[Any, ...]:
    """A ``types``/``entities`` claim: absent = no limit; present = a non-empty list of selectors."""
    if name not in claims:
        return ()
    value = claims[name]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Refused(403, f"claim {name!r} must be a list of strings")
    if not value:
        raise Refused(403, f"claim {name!r} grants nothing")
    out = []
    for item in value:
        try:
            parsed = parse(item)
        except FilterError as exc:
            raise Refused(403, f"claim {name!r}: {exc}") from None
        if len(parsed) != 1:
            raise Refused(403, f"claim {name!r}: one selector per list item")
        out.append(parsed[0])
    return tuple(out)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def load_credentials(
    mode: str,
    tokens_file: str | None,
    jwt_key_file: str | None,
    *,
    jwt_issuer: str | None = None,
    jwt_audience: str | None = None,
    jwt_leeway: float = 30.0,
) -> Credentials:
    """Read the file ``--auth`` ``mode`` needs; :class:`CredentialsError` if unusable."""
    if mode == "token":
        assert tokens_file is not None
        data = _read(tokens_file, "tokens_file")
        return Credentials("token", tokens=parse_tokens(data), fingerprint=_fingerprint("token", data))
    if mode == "jwt":
        assert jwt_key_file is not None
        data = _read(jwt_key_file, "jwt_key_file")
        key, algorithm = parse_jwt_key(data)
        options = (jwt_issuer, jwt_audience, jwt_leeway)
        return Credentials(
            "jwt",
            jwt_key=key,
            jwt_algorithm=algorithm,
            jwt_issuer=jwt_issuer,
            jwt_audience=jwt_audience,
            jwt_leeway=jwt_leeway,
            fingerprint=_fingerprint("jwt", data, repr(options).encode()),
        )
    return Credentials(fingerprint=_fingerprint("none"))


def _fingerprint(mode: str, *parts: bytes) -> bytes:
    digest = hashlib.sha256(mode.encode())
    for part in parts:
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.digest()


def _read(path: str, field_name: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise CredentialsError(field_name, f"cannot read {path}: {exc.strerror}") from None


def parse_tokens(data: bytes) -> dict[bytes, Scope]:
    """``<token> [<type-glob> …]`` per line; blank lines and ``#`` comments ignored.

    Errors name the line, never the token.
    """
    tokens: dict[bytes, Scope] = {}
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise CredentialsError("tokens_file", "not UTF-8 text") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        token, globs = words[0], words[1:]
        for glob in globs:
            try:
                ok = parse_types(glob) == (glob,)
            except FilterError:
                ok = False
            if not ok:
                raise CredentialsError("tokens_file", f"line {lineno}: bad type glob {glob[:40]!r}")
        digest = _digest(token)
        if digest in tokens:
            raise CredentialsError("tokens_file", f"line {lineno}: token repeats {tokens[digest].label}")
        tokens[digest] = Scope(f"token@{lineno}", tuple(globs))
    if not tokens:
        raise CredentialsError("tokens_file", "holds no token")
    return tokens


def parse_jwt_key(data: bytes) -> tuple[Any, str]:
    """A PEM public key → (key, ``RS256``); anything else is an HS256 secret (trailing newline stripped)."""
    if data.lstrip().startswith(b"-----BEGIN"):
        if b"PRIVATE KEY" in data:
            raise CredentialsError("jwt_key_file", "holds a private key; give the gateway only the public key")
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError:
            raise CredentialsError("jwt_key_file", "not a PEM public key") from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise CredentialsError("jwt_key_file", "not an RSA public key (RS256)")
        if key.key_size < MIN_RSA_BITS:
            raise CredentialsError("jwt_key_file", f"RSA key has {key.key_size} bits; at least {MIN_RSA_BITS}")
        return key, "RS256"
    secret = data.removesuffix(b"\n").removesuffix(b"\r")
    if len(secret) < MIN_HS256_BYTES:
        raise CredentialsError("jwt_key_file", f"HS256 secret has {len(secret)} bytes; at least {MIN_HS256_BYTES}")
    return secret, "HS256"


def extract_token(query: Mapping[str, str], headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(token, subprotocol to answer) from ``?token=``, ``Authorization: Bearer``, ``bearer.<token>``.

    The subprotocol is returned whenever the client offered one, so a browser
    that always offers it is answered as it requires even with ``--auth none``.
    """
    protocol = None
    for offered in headers.get("Sec-WebSocket-Protocol", "").split(","):
        offered = offered.strip()
        if offered.startswith(SUBPROTOCOL_PREFIX) and len(offered) > len(SUBPROTOCOL_PREFIX):
            protocol = offered
            break
    token = query.get("token") or None
    if token is None:
        scheme, _, value = headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            token = value.strip()
    if token is None and protocol is not None:
        token = protocol[len(SUBPROTOCOL_PREFIX) :]
    return token, protocol
