"""Cluster test helpers: a producer connected to several nodes' ingest, and a recording WS client."""

from __future__ import annotations

import json
import threading
from typing import Any

import zmq
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from emitter_sdk.wire import ENCODER, Entity, TimestampClock, WireEvent
from tests.conftest import wait_for


class FanProducer:
    """One XPUB connected to every given ingest (as a multi-endpoint Emitter is): each event reaches all.

    It sends exactly the producer sequence numbers the test chooses (a jump is an upstream loss).
    """

    def __init__(self, ingests: list[str], producer: str = "fan00001", timeout: float = 10.0) -> None:
        self.producer = producer
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.sock = self.ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.sock.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
        for ingest in ingests:
            self.sock.connect(ingest)
        for _ in ingests:
            self.sock.recv()  # every node's subscription: from here on nothing is dropped
        self._clock = TimestampClock()

    def send(self, pseq: int, event_type: str = "task.progress", entity: tuple[str, str] = ("task", "fan")) -> None:
        event = WireEvent(event_type, self._clock.now(), "core", Entity(*entity), {"pseq": pseq}, self.producer, pseq)
        self.sock.send(ENCODER.encode(event))

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()


class Recorder(threading.Thread):
    """A WebSocket client keeping every text frame it receives, in order, until closed."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.frames: list[str] = []
        self.close_code: int | None = None
        self.opened = threading.Event()
        self.done = threading.Event()
        self._halt = threading.Event()
        self.start()
        assert self.opened.wait(10), f"cannot connect to {url}"

    def run(self) -> None:
        try:
            with connect(self.url, max_size=None, open_timeout=5) as ws:
                self.opened.set()
                while not self._halt.is_set():
                    try:
                        self.frames.append(str(ws.recv(timeout=0.1)))
                    except TimeoutError:
                        continue
        except ConnectionClosed as exc:
            self.close_code = exc.rcvd.code if exc.rcvd is not None else None
        finally:
            self.opened.set()
            self.done.set()

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(f) for f in list(self.frames)]

    def events(self) -> list[dict[str, Any]]:
        return [m for m in self.messages() if not m["type"].startswith("gateway.")]

    def wait_events(self, n: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        wait_for(lambda: len(self.events()) >= n, timeout, f"{n} events at {self.url}")
        return self.events()

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
