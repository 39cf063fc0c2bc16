"""One line per daemon option: what it does, in words.  Pure data, a leaf like ``config``.

The one source of each option's description: ``gatewayd --help`` shows it (with the
default and the environment variable), and ``deploy/gateway.toml`` must carry it
verbatim in the comment paragraph of that option (``tests/unit/test_options.py``
checks both ways).  Adding a field to :class:`~gateway.process.config.Config` means adding
its line here, under the field's name; the same test fails until you do.
"""

from __future__ import annotations

DESCRIPTIONS: dict[str, str] = {
    # data path
    "ingest": "Where Core's emitters connect (the gateway binds it): tcp://HOST:PORT or ipc://PATH.",
    "listen": "HTTP listen address (WebSocket, SSE, /status, /metrics) as HOST:PORT.",
    "ring_size": "Events kept for replay (resume with since=/Last-Event-ID).",
    "ring_bytes": "Bytes of encoded events kept for replay; the ring evicts by events or bytes, whichever first.",
    "state_dir": "Directory for the epoch and the state log, so clients resume across restarts.",
    "fsync_interval": "Seconds between fsyncs of the state log (0 = every batch, before clients see it).",
    "max_event_bytes": "Largest accepted event, encoded, in bytes; larger ones are rejected as oversized.",
    "types_whitelist": "Event types accepted (globs); empty = every well-formed type.",
    # logging
    "log_format": "json (one object per line) or console; unset = JSON unless stderr is a terminal.",
    "log_level": "Least severe log level written (case-insensitive); reloaded on SIGHUP.",
    # clients
    "slow_client": "What happens to a client that cannot keep up: disconnect, drop-oldest or coalesce.",
    "client_queue_events": "Events a client may fall behind the head before the slow-client policy applies.",
    "client_queue_bytes": "Bytes of frames a client may have queued before the slow-client policy applies.",
    "coalesce_types": "State-like event types the coalesce policy may thin out (newest per entity kept).",
    "max_clients": "Most simultaneous clients; beyond it WebSocket closes 1013, other requests get 503.",
    "max_clients_per_ip": "Most simultaneous clients per remote address; 0 = no per-address limit.",
    "max_frame_bytes": "Largest message a client may send, in bytes; larger closes it with 1009.",
    "client_msg_rate": "Messages per second a client may send (bursts of twice that); beyond it, 1008.",
    "max_filters": "Most type globs plus entity selectors in one subscription.",
    "ping_interval": "Seconds between WebSocket protocol pings that detect dead peers (0 = off).",
    "handshake_timeout": "Seconds a connection may take to send its HTTP request (and idle between requests).",
    "close_timeout": "Seconds a client the gateway closes has to answer its close frame before its socket is aborted.",
    "tcp_keepalive": "Seconds of TCP idleness before kernel keepalive probes start (0 = OS default).",
    "sse_heartbeat": "Seconds between SSE comment heartbeats (keep proxies from timing the stream out).",
    "compression": "Compress WebSocket frames for clients that offer permessage-deflate (on) or never (off).",
    # who may connect
    "auth": "Who may subscribe: none (loopback only unless --insecure), token or jwt.",
    "tokens_file": "With --auth token: one token per line, '<token> [<type-glob> …]'; re-read on SIGHUP.",
    "jwt_key_file": "With --auth jwt: an HS256 secret or an RS256 PEM public key; re-read on SIGHUP.",
    "allow_origin": "Browser origins allowed besides the gateway's own (scheme://host[:port]).",
    "allow_host": "Host names a request's Host header may carry besides IP literals and localhost (globs).",
    "trusted_proxy": "Reverse proxies (CIDRs) whose X-Forwarded-For names the client.",
    "jwt_issuer": 'With --auth jwt: when set, a token\'s "iss" claim must equal it (else 401).',
    "jwt_audience": 'With --auth jwt: when set, a token\'s "aud" claim must include it (else 401).',
    "jwt_leeway": "With --auth jwt: seconds of clock skew allowed on exp/nbf/iat (tokens without exp are refused).",
    "insecure": "Allow --auth none, and plain tcp ingest, beyond loopback.  Do not.",
    # who may publish
    "curve_key_file": "The gateway's CURVE secret key file: ingest accepts only CURVE clients.",
    "curve_clients_dir": "Directory of the CURVE public keys of emitters allowed to publish.",
    # operations
    "shutdown_grace": "Seconds SIGTERM may take: clients get close 1001, state is flushed, exit 0.",
    "ring_horizon": "Health is degraded when the ring turns over faster than this many seconds.",
    "loop_lag_limit": "Health is degraded when the event loop ran late by more than this many seconds recently.",
    # cluster (docs/cluster.md)
    "cluster": "Comma-separated nats://HOST:PORT of a NATS JetStream cluster: this gateway becomes one node of it.",
    "cluster_stream": "The JetStream stream the nodes share (created by the first node that finds it missing).",
    "cluster_replicas": "Copies of the stream JetStream keeps: 3 in production (survives one NATS server lost).",
    "cluster_max_events": "Stream retention: about this many events (whole records are purged beyond it).",
    "cluster_max_age": "Stream retention by age, like 24h, 90m, 30s or 7d: how far back any node can resume.",
}
