"""Test helper: a hand-driven producer on the gateway's ingest socket.

:class:`RawProducer` is an XPUB connected to the gateway's bound SUB, like the
SDK's, but it sends exactly the producer sequence numbers a test chooses (a jump
is an upstream loss, a repeat a duplicate) and arbitrary frames (rejections).
"""

from __future__ import annotations

from typing import Any

import msgspec
import zmq

from emitter_sdk.wire import ENCODER, Entity, TimestampClock, WireEvent


class RawProducer:
    def __init__(
        self,
        ingest: str,
        producer: str = "feedface",
        timeout: float = 10.0,
        curve: tuple[bytes, tuple[bytes, bytes]] | None = None,
    ) -> None:
        """``curve``: (the gateway's public key, this producer's (public, secret) key pair)."""
        self.producer = producer
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.sock = self.ctx.socket(zmq.XPUB)
        if curve is not None:
            self.sock.curve_serverkey = curve[0]
            self.sock.curve_publickey, self.sock.curve_secretkey = curve[1]
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
        self.sock.connect(ingest)
        self.sock.recv()  # the gateway's subscription: from here on nothing is dropped
        self._clock = TimestampClock()

    def send(self, pseq: int, event_type: str = "task.progress", entity: tuple[str, str] = ("task", "raw")) -> None:
        """One valid event with this ``pseq`` (payload ``{"pseq": pseq}``)."""
        event = WireEvent(event_type, self._clock.now(), "core", Entity(*entity), {"pseq": pseq}, self.producer, pseq)
        self.sock.send(ENCODER.encode(event))

    def send_raw(self, pseq: int, payload: Any, event_type: str = "task.progress") -> None:
        """An event whose payload is any msgpack value (what the SDK would refuse: ext types, non-string keys …)."""
        fields = [event_type, self._clock.now(), "core", ["task", "raw"], payload, self.producer, pseq]
        self.sock.send(msgspec.msgpack.encode(fields))

    def send_frames(self, *frames: bytes) -> None:
        self.sock.send_multipart(list(frames))

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()
