"""The daemon's one :class:`Config`, validated once, from flags > env > TOML file > defaults.

A leaf: imports nothing of ``gateway``.  The files options name (tokens, keys)
are read by ``gateway.process.keys``, not here.

Every field is a long option (``ring_size`` ↔ ``--ring-size``), an environment
variable (``EVENT_GATEWAY_RING_SIZE``) and a top-level TOML key.  A bad value
raises :class:`ConfigError` whose message is one line naming the option, its
source and why; the daemon prints it and exits before binding anything.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec

ENV_PREFIX = "EVENT_GATEWAY_"

Positive = Annotated[int, msgspec.Meta(ge=1)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
Seconds = Annotated[float, msgspec.Meta(ge=0)]


class ConfigError(ValueError):
    """A bad option; ``str()`` is the one line shown to the operator."""


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Every daemon option with its default.  See ``deploy/gateway.toml`` for the annotated list."""

    # data path
    ingest: str = "tcp://127.0.0.1:5556"
    listen: str = "127.0.0.1:8765"
    ring_size: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] = 10_000
    ring_bytes: Annotated[int, msgspec.Meta(ge=1 << 20)] = 256 << 20
    state_dir: str | None = None
    fsync_interval: Seconds = 1.0
    max_event_bytes: Positive = 1 << 20
    types_whitelist: list[str] = []
    # logging
    log_format: Literal["json", "console"] | None = None
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    # clients
    slow_client: Literal["disconnect", "drop-oldest", "coalesce"] = "disconnect"
    client_queue_events: Positive = 5_000
    client_queue_bytes: Positive = 8 << 20
    coalesce_types: list[str] = msgspec.field(
        default_factory=lambda: ["task.progress", "selfcheck.progress", "provider.status_changed"]
    )
    max_clients: Positive = 10_000
    max_clients_per_ip: NonNegative = 0
    max_frame_bytes: Positive = 64 << 10
    client_msg_rate: Positive = 20
    max_filters: Positive = 32
    ping_interval: Seconds = 20.0
    handshake_timeout: Seconds = 10.0
    close_timeout: Seconds = 2.0
    tcp_keepalive: Seconds = 60.0
    sse_heartbeat: Seconds = 15.0
    compression: Literal["on", "off"] = "on"
    # who may connect
    auth: Literal["none", "token", "jwt"] = "none"
    tokens_file: str | None = None
    jwt_key_file: str | None = None
    allow_origin: list[str] = []
    allow_host: list[str] = []  # DNS rebinding: names a request's Host may carry besides IP literals and localhost
    trusted_proxy: list[str] = []  # CIDRs whose X-Forwarded-For names the client
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway: Seconds = 30.0
    insecure: bool = False
    # who may publish (ingest CURVE; both or neither)
    curve_key_file: str | None = None
    curve_clients_dir: str | None = None
    # operations
    shutdown_grace: Seconds = 5.0
    ring_horizon: Seconds = 60.0  # gatewayctl status: degraded when the ring turns over faster
    loop_lag_limit: Seconds = 0.5  # gatewayctl status: degraded when recent event-loop lag exceeds it
    # cluster (NATS JetStream; docs/cluster.md): comma-separated nats:// URLs, none = single node
    cluster: str | None = None
    cluster_stream: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = "EVENT_GATEWAY"
    cluster_replicas: Annotated[int, msgspec.Meta(ge=1, le=5)] = 1
    cluster_max_events: Positive = 1_000_000
    cluster_max_age: str = "24h"

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def cluster_servers(self) -> list[str]:
        """The ``--cluster`` URLs (empty: single node)."""
        return [url.strip() for url in (self.cluster or "").split(",") if url.strip()]

    @property
    def cluster_max_age_s(self) -> float:
        return parse_duration(self.cluster_max_age)


FIELDS: tuple[str, ...] = Config.__struct_fields__

#: What a SIGHUP reload applies to the running daemon (the log setup, and the credentials,
#: peer rules and CURVE clients ``process.keys.load_keys`` re-reads); every other option is
#: read once at startup.  A reloader that starts applying another option adds it here
#: (and marks it "reload" in docs/reference.md).
RELOADABLE: frozenset[str] = frozenset(
    {
        "log_level",
        "log_format",
        "auth",
        "tokens_file",
        "jwt_key_file",
        "jwt_issuer",
        "jwt_audience",
        "jwt_leeway",
        "allow_origin",
        "allow_host",
        "trusted_proxy",
        "curve_clients_dir",
    }
)


def needs_restart(running: Config, reread: Config) -> list[str]:
    """The options (in declaration order) whose re-read value differs but only a restart applies."""
    return [f for f in FIELDS if f not in RELOADABLE and getattr(running, f) != getattr(reread, f)]


def option_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def load(
    flags: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    config_file: str | None = None,
    sources: dict[str, str] | None = None,
) -> Config:
    """Merge the sources (flags > env > file > defaults) and validate once.

    ``sources``, when given, is filled with where each set option came from, so a later
    check (the key files, ``gateway.process.keys``) names it the same way.
    """
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    source: dict[str, str] = {} if sources is None else sources
    config_file = config_file or environ.get(ENV_PREFIX + "CONFIG")
    if config_file:
        for key, value in _read_toml(config_file).items():
            merged[key] = value
            source[key] = f"{config_file}"
    for field in FIELDS:
        raw = environ.get(env_name(field))
        if raw is not None:
            merged[field] = _env_value(field, raw)
            source[field] = env_name(field)
    for field, value in flags.items():
        if value is not None and value != ():
            merged[field] = list(value) if isinstance(value, tuple) else value
            source[field] = "command line"
    if isinstance(merged.get("log_level"), str):  # case-insensitive from every source, like the flag
        merged["log_level"] = merged["log_level"].lower()
    try:
        config = msgspec.convert(merged, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise _explain(exc, source) from None
    _check(config, source)
    return config


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"invalid --config: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid --config: {path} is not valid TOML: {exc}") from None
    for key in data:
        if key not in FIELDS:
            raise ConfigError(f"invalid --config: unknown option {key!r} in {path}")
    return data


def _env_value(field: str, raw: str) -> Any:
    default = getattr(Config(), field)
    if isinstance(default, list):
        return [part.strip() for part in raw.split(",") if part.strip()]
    if isinstance(default, bool):
        word = raw.strip().lower()
        if word not in _TRUE | _FALSE:
            raise ConfigError(
                f"invalid {option_name(field)} (from {env_name(field)}): expected 1/true/yes/on or 0/false/no/off,"
                f" got {raw[:40]!r}"
            )
        return word in _TRUE
    return raw


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def _explain(exc: msgspec.ValidationError, source: Mapping[str, str]) -> ConfigError:
    text = str(exc)
    why, _, where = text.rpartition(" - at `$.")
    field = where.rstrip("`").split("[")[0].split(".")[0]
    if field in FIELDS:
        return ConfigError(f"invalid {option_name(field)} (from {source.get(field, 'default')}): {why}")
    return ConfigError(f"invalid configuration: {text}")


def fail(field: str, source: Mapping[str, str], why: str) -> ConfigError:
    """The one-line error for ``field``: ``invalid --option (from <source>): why``."""
    return ConfigError(f"invalid {option_name(field)} (from {source.get(field, 'default')}): {why}")


def _check(config: Config, source: Mapping[str, str]) -> None:
    """Cross-field and format checks msgspec cannot express."""
    host, sep, port = config.listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise fail("listen", source, f"expected HOST:PORT, got {config.listen!r}")
    if not config.ingest.startswith(("tcp://", "ipc://")):
        raise fail("ingest", source, f"expected tcp://HOST:PORT or ipc://PATH, got {config.ingest!r}")
    if config.auth == "none" and not config.insecure and not is_loopback(config.host):
        raise fail(
            "auth",
            source,
            f"--auth none while listening on {config.host}, beyond loopback: "
            "choose --auth token|jwt, or pass --insecure",
        )
    if config.auth == "token" and not config.tokens_file:
        raise fail("tokens_file", source, "required with --auth token")
    if config.auth == "jwt" and not config.jwt_key_file:
        raise fail("jwt_key_file", source, "required with --auth jwt")
    for field in ("tokens_file", "jwt_key_file"):
        path = getattr(config, field)
        if path and not os.access(path, os.R_OK):
            raise fail(field, source, f"cannot read {path}")
    _check_origins_and_ingest(config, source)
    if config.state_dir and os.path.exists(config.state_dir) and not os.path.isdir(config.state_dir):
        raise fail("state_dir", source, f"{config.state_dir} is not a directory")
    _check_cluster(config, source)


def _check_cluster(config: Config, source: Mapping[str, str]) -> None:
    for url in config.cluster_servers:
        if not re.fullmatch(r"nats://[^/\s:]+:\d{1,5}", url):
            raise fail("cluster", source, f"expected nats://HOST:PORT[,nats://HOST:PORT…], got {url[:80]!r}")
    if config.cluster is not None and not config.cluster_servers:
        raise fail("cluster", source, "expected nats://HOST:PORT[,nats://HOST:PORT…], got nothing")
    try:
        parse_duration(config.cluster_max_age)
    except ValueError as exc:
        raise fail("cluster_max_age", source, str(exc)) from None
    if config.cluster_servers and config.state_dir:
        raise fail("state_dir", source, "a cluster node keeps its state in the stream: drop --state-dir")


_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``"24h"``, ``"90m"``, ``"30s"``, ``"7d"`` or plain seconds → seconds (> 0)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"expected a duration like 24h, 90m, 30s or 7d, got {text[:40]!r}")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]


def _check_origins_and_ingest(config: Config, source: Mapping[str, str]) -> None:
    """Origin syntax, plain-TCP ingest beyond loopback, CURVE options that go together.

    The files the options name (tokens, JWT key, CURVE certificates) are parsed by
    ``gateway.process.keys`` after this, before anything is bound.
    """
    for origin in config.allow_origin:
        if origin != "null" and not re.fullmatch(r"[a-z][a-z0-9+.-]*://[^/\s]+/?", origin.lower()):
            raise fail("allow_origin", source, f"expected scheme://host[:port] or null, got {origin[:80]!r}")
    ingest_host = config.ingest.removeprefix("tcp://").rpartition(":")[0].strip("[]")
    plain_tcp = config.ingest.startswith("tcp://") and not config.curve_key_file
    if plain_tcp and not config.insecure and not is_loopback(ingest_host):
        raise fail("ingest", source, f"plain tcp ingest on {ingest_host}, beyond loopback: use CURVE or ipc")
    if bool(config.curve_key_file) != bool(config.curve_clients_dir):
        missing = "curve_clients_dir" if config.curve_key_file else "curve_key_file"
        raise fail(missing, source, "--curve-key-file and --curve-clients-dir go together")


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
