"""The synchronous engine: the stream (validate → source → persist → ring → fan-out) and the hub.

Driven by the floors above (an ingest batch in, frames written to transports
out) and never awaits.  The *source of sequenced events* is a port here
(``source.SequencedSource``): the local sequencer is one implementation, a
cluster's replicated stream (``gateway.ports.cluster``) another.  May import
``gateway.core`` only.
"""
