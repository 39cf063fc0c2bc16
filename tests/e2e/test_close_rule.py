"""The SPEC's close rule, over real sockets: a close the gateway starts reaches the client.

The gateway stops reading, sends the close frame and waits for the peer's close
(or ``--close-timeout``); it never resets the connection under the close frame,
even while the client is still sending.  Each client here floods from a thread
and reads nothing until the gateway has decided to close it — so, as in the
issue, the close frame is still unread when more of the flood arrives.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from websockets.frames import Frame, Opcode

from tests.conftest import Gateway, wait_for
from tests.rawws import RawWs


@contextmanager
def flooding(client: RawWs, payload: bytes) -> Iterator[None]:
    """Send masked text frames of ``payload`` from a thread until the block ends (or the socket fails)."""
    chunk = Frame(Opcode.TEXT, payload).serialize(mask=True, extensions=[]) * 16
    stop = threading.Event()

    def flood() -> None:
        try:
            while not stop.is_set():
                client.send_raw(chunk)
        except OSError:
            pass

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(15)
        assert not thread.is_alive()


def test_a_client_flooding_garbage_text_frames_sees_1008(gateway_factory) -> None:
    gateway: Gateway = gateway_factory("--client-msg-rate", "20")
    client = RawWs(gateway.ws_url)
    with flooding(client, b"garbage " * 64):
        wait_for(lambda: gateway.status()["clients"]["closed_by_limit"]["rate_limited"] == 1, what="the 1008")
    client.read_to_end(10)
    assert client.close_code == 1008
    assert client.messages[-1] == {"type": "gateway.error", "error": "message rate exceeded"}


def test_a_client_sending_on_after_an_oversized_frame_sees_1009(gateway_factory) -> None:
    gateway: Gateway = gateway_factory("--max-frame-bytes", "1024", "--client-msg-rate", "1000000")
    client = RawWs(gateway.ws_url)
    client.send_text("x" * 4096)
    with flooding(client, b"x" * 512):
        wait_for(lambda: gateway.status()["clients"]["closed_by_limit"]["frame_too_big"] == 1, what="the 1009")
    client.read_to_end(10)
    assert client.close_code == 1009


def test_a_client_still_sending_at_shutdown_sees_1001(gateway_factory) -> None:
    gateway: Gateway = gateway_factory("--client-msg-rate", "1000000")
    client = RawWs(gateway.ws_url)
    with flooding(client, b'{"type": "ping"}'):
        wait_for(lambda: gateway.status()["clients"]["count"] == 1, what="the client joined")
        assert gateway.proc is not None
        gateway.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: '"gateway.stopping"' in gateway.logs(), what="the shutdown began")
    client.read_to_end(10)
    assert client.close_code == 1001
    assert gateway.proc.wait(10) == 0
