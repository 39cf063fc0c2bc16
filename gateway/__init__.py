"""event-gateway: carries live events from Core processes to browsers.

Data path (one module each): ``ingest`` (ZeroMQ SUB, decode, validate) →
``sequencer`` (producer tracking, ``seq``) → ``store`` (optional append-only log)
→ ``ring`` (bounded replay buffer) → ``fanout`` (per-client cursors, frames
written without awaiting) → ``ws`` / ``sse`` / ``endpoints`` (HTTP).
"""

__version__ = "0.1.0"
