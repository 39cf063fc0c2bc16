"""Encode an event payload as JSON-compatible msgpack, or refuse it.

The ingest wire format allows a payload that is a map with string keys holding only
JSON-compatible values: nil, bool, int, float, str, arrays and maps with string keys,
nested to any depth.  msgpack can carry more (binary, ext types such as timestamps,
non-string map keys), and msgspec encodes such Python values without complaint; the
gateway could then not turn the event into JSON.  :func:`encode_payload` is the SDK's
one gate: what it returns is exactly the payload's wire form, and it raises
:class:`PayloadError` for anything else.

Cost (measured with ``timeit``, small dict payload): one msgpack encode (~0.15 µs) plus
one typed decode of the bytes just made (~0.2 µs), both in C; the payload is not walked
in Python.  The typed decoder checks nesting up to :data:`CHECKED_DEPTH` levels; only
a payload that it refuses (invalid, or valid but nested deeper) is decoded untyped and
walked in Python to decide exactly, so the slow path costs only refused or unusually
deep payloads.

NaN and ±Infinity are floats msgpack carries but JSON cannot (they would reach clients
as ``null``, a value changed silently): :func:`has_non_finite` finds them, with a C-speed
search of the encoded bytes for a float whose exponent bits are all ones and, only on a
hit (which may be a false one, inside an integer), a walk of the value.  The gateway
applies the same check to every ingested payload.

Invariant: a payload accepted here decodes on the gateway to str-keyed maps, lists and
JSON scalars (finite floats only), so it always has a JSON form.
"""

from __future__ import annotations

import math
import re
from typing import Any, Union

import msgspec

#: Levels of nesting the C-speed check covers (building the decoder type costs ~2 ms at 8).
CHECKED_DEPTH = 8

_SCALARS = (type(None), bool, int, float, str)
_Scalar = Union[None, bool, int, float, str]  # noqa: UP007 - built into a runtime type below


def _json_type(depth: int) -> Any:
    """The msgspec type of JSON values nested at most ``depth`` levels."""
    t: Any = _Scalar
    for _ in range(depth):
        t = Union[None, bool, int, float, str, list[t], dict[str, t]]  # noqa: UP007 - runtime type
    return t


_ENCODE = msgspec.msgpack.Encoder().encode
_CHECK = msgspec.msgpack.Decoder(dict[str, _json_type(CHECKED_DEPTH)]).decode  # type: ignore[misc]
_DECODE_ANY = msgspec.msgpack.Decoder().decode


#: msgpack float64 (0xcb) or float32 (0xca) whose exponent bits are all ones: NaN or ±Infinity.
_NON_FINITE_BYTES = re.compile(rb"\xcb[\x7f\xff][\xf0-\xff]|\xca[\x7f\xff][\x80-\xff]").search


def has_non_finite(data: bytes, value: Any) -> bool:
    """Whether ``value`` (the decoded form of msgpack ``data``) holds a NaN or an infinity.

    Costs one C-speed search of ``data``; ``value`` is walked only when the bytes hold a
    candidate float.
    """
    if _NON_FINITE_BYTES(data) is None:
        return False
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        cls = item.__class__
        if cls is float:
            if not math.isfinite(item):
                return True
        elif cls is dict:
            stack.extend(item.values())
        elif cls is list or cls is tuple:
            stack.extend(item)
    return False


class PayloadError(ValueError):
    """The payload cannot be encoded as JSON-compatible msgpack; the message says why."""


def encode_payload(payload: dict[str, Any]) -> bytes:
    """The payload's msgpack bytes; raises :class:`PayloadError` if it is not JSON-compatible.

    Never raises anything else for a bad payload (unencodable objects, integers beyond
    64 bits, recursion too deep, a dict changed by another thread while encoding).
    """
    try:
        data = _ENCODE(payload)
    except (TypeError, ValueError, OverflowError, RuntimeError) as exc:  # RecursionError is a RuntimeError
        raise PayloadError(str(exc)) from None
    try:
        _CHECK(data)
    except msgspec.ValidationError as exc:
        if not _is_json(data):
            raise PayloadError(f"not JSON-compatible: {exc}") from None
    if has_non_finite(data, payload):
        raise PayloadError("not JSON-compatible: NaN or infinity (JSON has no such number)")
    return data


def _is_json(data: bytes) -> bool:
    """Exact check of msgpack ``data`` at any depth (the slow path, without recursion)."""
    try:
        value = _DECODE_ANY(data)
    except (msgspec.DecodeError, TypeError, ValueError, RuntimeError):
        return False
    if value.__class__ is not dict:
        return False
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if item.__class__ is dict:
            for key, child in item.items():
                if key.__class__ is not str:
                    return False
                stack.append(child)
        elif item.__class__ is list:
            stack.extend(item)
        elif not isinstance(item, _SCALARS):
            return False
    return True
