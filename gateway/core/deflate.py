"""permessage-deflate (RFC 7692) for the gateway's own frames: each event compressed once per window size.

aiohttp can negotiate the extension, but it compresses inside each connection's
writer, once per message *per client*; the gateway writes prebuilt frames to the
transport instead.  So the handshake is aiohttp's, answered always with
``server_no_context_takeover`` (RFC 7692 §7.1.1.1 lets a server add it unasked):
then no compressed message refers to an earlier one, and one compressed frame is
valid for every client that negotiated the same server window (``wbits``, 9–15; 15
unless the client asked for less).  Events are compressed lazily, the first time a
client with that window needs them, and the frame is kept on the ring entry, so
N clients cost one compression per event and window, not N.

Pure (no I/O).  Invariants: :func:`deflate_frame` returns a complete server frame
(FIN, RSV1 set when compressed, no mask) whose payload inflates to exactly the
input; when compression would not make the message smaller the plain frame is
returned instead (RSV1 clear, which the extension allows per message).  Control
messages are never compressed.  Memory: one ``zlib`` compressor per window size in
use (at most seven), reset after every message by a full flush.
"""

from __future__ import annotations

import zlib

from gateway.core.protocol import ws_frame

#: Window sizes zlib can produce raw deflate streams for (RFC 7692 allows 8, zlib does not).
WBITS = range(9, 16)
#: The flush marker a sender removes from the end of each message (RFC 7692 §7.2.1).
_TAIL = b"\x00\x00\xff\xff"

_COMPRESSORS: dict[int, zlib._Compress] = {}


def deflate(data: bytes, wbits: int) -> bytes:
    """``data`` as one permessage-deflate message payload, independent of every earlier one."""
    c = _COMPRESSORS.get(wbits)
    if c is None:
        if wbits not in WBITS:
            raise ValueError(f"window bits must be 9..15, got {wbits}")
        c = _COMPRESSORS[wbits] = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -wbits)
    # A full flush ends the message on a byte boundary with an empty stored block
    # (the 4-byte tail the receiver re-appends) and forgets the history: no context takeover.
    out = c.compress(data) + c.flush(zlib.Z_FULL_FLUSH)
    return out[:-4] if out.endswith(_TAIL) else out


def deflate_frame(json: bytes, plain_frame: bytes, wbits: int) -> bytes:
    """The text frame for ``json`` compressed with ``wbits``, or ``plain_frame`` when that is not smaller."""
    payload = deflate(json, wbits)
    if len(payload) >= len(json):
        return plain_frame
    return ws_frame(payload, rsv1=True)


def extension_header(wbits: int) -> str:
    """``Sec-WebSocket-Extensions`` of the handshake response accepting an offer with this server window."""
    header = "permessage-deflate; server_no_context_takeover"
    return header if wbits == 15 else f"{header}; server_max_window_bits={wbits}"
