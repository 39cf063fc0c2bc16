"""Cluster test helpers: a producer connected to several nodes' ingest, and a recording WS client."""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
from typing import Any

import zmq
from websockets.exceptions import ConnectionClosed, InvalidHandshake
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


class PacedSender(threading.Thread):
    """Sends pseq 1, 2, … through a :class:`FanProducer` at ``rate`` events/s until stopped."""

    def __init__(self, ingests: list[str], rate: int, producer: str = "paced001") -> None:
        super().__init__(daemon=True)
        self.fan = FanProducer(ingests, producer=producer)
        self.rate = rate
        self.sent = 0
        self.halt = threading.Event()
        self.start()

    def run(self) -> None:
        started = time.monotonic()
        while not self.halt.is_set():
            self.fan.send(self.sent + 1, entity=("task", f"p{self.sent % 7}"))
            self.sent += 1
            if self.sent % 10 == 0:
                self.halt.wait(max(0.0, started + self.sent / self.rate - time.monotonic()))

    def finish(self) -> int:
        self.halt.set()
        self.join(5)
        self.fan.close()
        return self.sent


class FailoverClient(threading.Thread):
    """A WebSocket client given several nodes: after any disconnect it resumes (``since``/``epoch``)
    on the next node, backing off briefly, and keeps every message it was sent."""

    def __init__(self, urls: list[str], tls: ssl.SSLContext | None = None) -> None:
        super().__init__(daemon=True)
        self.urls = urls
        self.tls = tls
        self.current = 0
        self.messages: list[dict[str, Any]] = []
        self.hellos: list[dict[str, Any]] = []
        self.close_codes: list[int | None] = []
        self.last_seq: int | None = None
        self.epoch: str | None = None
        self.halt = threading.Event()
        self.start()
        wait_for(lambda: self.hellos, 10, "client connected")

    def events(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if not m["type"].startswith("gateway.")]

    def gaps(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == "gateway.gap"]

    def run(self) -> None:
        while not self.halt.is_set():
            query = "" if self.epoch is None else f"?since={self.last_seq}&epoch={self.epoch}"
            try:
                with connect(self.urls[self.current] + query, max_size=None, open_timeout=2, ssl=self.tls) as ws:
                    while not self.halt.is_set():
                        try:
                            self._take(json.loads(ws.recv(timeout=0.2)))
                        except TimeoutError:
                            continue
            except ConnectionClosed as exc:
                self.close_codes.append(exc.rcvd.code if exc.rcvd is not None else None)
            except (OSError, TimeoutError, InvalidHandshake):
                # refused, timed out, or answered without an upgrade (a proxy's 502 while its
                # upstream is down): the next node, as a browser's client.js would
                self.close_codes.append(None)
            self.current = (self.current + 1) % len(self.urls)
            self.halt.wait(0.05)

    def _take(self, message: dict[str, Any]) -> None:
        if message["type"] == "gateway.hello":
            self.hellos.append(message)
            self.epoch = message["epoch"]
            if self.last_seq is None:
                self.last_seq = message["seq"]
            return
        self.messages.append(message)
        if message["type"] == "gateway.gap" and "to" in message:
            self.last_seq = max(self.last_seq or 0, message["to"])
        elif message["type"] != "gateway.gap":
            self.last_seq = message["seq"]

    def stop(self) -> None:
        self.halt.set()
        self.join(5)


class SseFailoverClient(threading.Thread):
    """An EventSource over HTTPS: after any disconnect it reconnects to the same address with
    ``Last-Event-ID`` (the last ``id:`` it was sent), and keeps every message's data in order."""

    def __init__(self, host: str, port: int, tls: ssl.SSLContext) -> None:
        super().__init__(daemon=True)
        self.host, self.port, self.tls = host, port, tls
        self.messages: list[dict[str, Any]] = []
        self.hellos: list[dict[str, Any]] = []
        self.last_id: str | None = None
        self.halt = threading.Event()
        self.start()
        wait_for(lambda: self.hellos, 10, "SSE client connected")

    def events(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if not m["type"].startswith("gateway.")]

    def gaps(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == "gateway.gap"]

    @property
    def last_seq(self) -> int | None:
        return None if self.last_id is None else int(self.last_id.rpartition(":")[2])

    def run(self) -> None:
        while not self.halt.is_set():
            conn = http.client.HTTPSConnection(self.host, self.port, context=self.tls, timeout=1)
            try:
                headers = {"Accept": "text/event-stream"}
                if self.last_id is not None:
                    headers["Last-Event-ID"] = self.last_id
                conn.request("GET", "/sse/events", headers=headers)
                resp = conn.getresponse()
                if resp.status == 200:
                    self._read(resp)
            except (OSError, http.client.HTTPException):
                pass
            finally:
                conn.close()
            self.halt.wait(0.05)

    def _read(self, resp: http.client.HTTPResponse) -> None:
        fields: dict[str, str] = {}
        while not self.halt.is_set():
            line = resp.readline()  # a quiet second (TimeoutError): reconnect, resuming
            if not line:
                return  # the stream ended
            text = line.decode().rstrip("\n")
            if text:
                if not text.startswith(":"):
                    name, _, value = text.partition(": ")
                    fields[name] = value
                continue
            if "data" in fields:
                message = json.loads(fields["data"])
                (self.hellos if message["type"] == "gateway.hello" else self.messages).append(message)
                if "id" in fields:
                    self.last_id = fields["id"]
            fields = {}

    def stop(self) -> None:
        self.halt.set()
        self.join(5)
