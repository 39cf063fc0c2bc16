"""The engine's ports to the outside: ZeroMQ ingest and CURVE, the state log on disk,
the cluster (NATS JetStream) source.

Each adapts one kind of I/O to the engine (feeds it batches, persists what it
sequenced, or is the source of sequenced events).  May import ``gateway.engine``
and ``gateway.core``; not ``gateway.policy`` (a sibling), ``gateway.http`` or
``gateway.process``.
"""
