"""The synchronous engine: the stream (validate → sequence → persist → ring → fan-out) and the hub.

Driven by the floors above (an ingest batch in, frames written to transports
out) and never awaits.  May import ``gateway.core`` only.
"""
