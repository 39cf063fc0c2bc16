"""emitter_sdk.payload: the SDK accepts exactly the payloads whose wire form is JSON-compatible."""

from __future__ import annotations

import datetime
import math
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emitter_sdk.payload import CHECKED_DEPTH, PayloadError, encode_payload
from emitter_sdk.wire import DECODER, ENCODER, EncodedWireEvent, Entity, WireEvent

finite_floats = st.floats(allow_nan=False, allow_infinity=False)
json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | finite_floats | st.text()
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4)
)
#: Anything msgspec can encode, JSON-compatible or not.
foreign = (
    st.binary()
    | st.builds(msgspec.msgpack.Ext, st.integers(0, 127), st.binary(max_size=8))
    | st.datetimes(timezones=st.just(datetime.UTC))
    | st.sampled_from([math.nan, math.inf, -math.inf])
)
any_values = st.recursive(
    json_scalars | foreign,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text() | st.integers() | st.tuples(st.integers()), inner, max_size=4)
    ),
)


def is_json(value: Any) -> bool:
    """Reference predicate on the Python value as msgspec encodes it."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_json(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(is_json(v) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, bool | int | str)


def nested(leaf: Any, depth: int) -> dict[str, Any]:
    value: Any = {"leaf": leaf}
    for _ in range(depth):
        value = [value]
    return {"x": value}


@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_json_payloads_encode_to_their_msgpack(payload: dict[str, Any]) -> None:
    assert encode_payload(payload) == ENCODER.encode(payload)


@settings(max_examples=300)
@given(st.dictionaries(st.text(), any_values, max_size=4))
def test_a_payload_is_accepted_exactly_when_json_compatible(payload: dict[str, Any]) -> None:
    if is_json(payload):
        assert encode_payload(payload) == ENCODER.encode(payload)
    else:
        with pytest.raises(PayloadError):
            encode_payload(payload)


@pytest.mark.parametrize(
    "payload",
    [
        {"x": {(1, 2): 1}},  # issue 12: validated at decode, failed at the gateway's encode
        {"x": {1: "int key"}},
        {1: "top-level int key"},
        {"x": b"bytes"},
        {"x": [msgspec.msgpack.Ext(1, b"a")]},
        {"when": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)},  # a msgpack timestamp ext
        {"x": object()},
        {"x": 2**64},
        {"x": math.nan},  # JSON has no NaN: it would reach clients as null
        {"x": [1.0, {"y": -math.inf}]},
        {"x": math.inf},
        nested(b"bytes", CHECKED_DEPTH + 4),  # beyond the C check: the exact walk decides
        nested(1, 10_000),  # deeper than msgspec recurses
    ],
)
def test_refused_payloads(payload: dict[Any, Any]) -> None:
    with pytest.raises(PayloadError):
        encode_payload(payload)


def test_valid_payload_nested_beyond_the_fast_check_is_accepted() -> None:
    payload = nested(1, CHECKED_DEPTH + 4)
    assert encode_payload(payload) == ENCODER.encode(payload)


def test_encoded_wire_event_is_byte_identical_to_wire_event() -> None:
    payload = {"progress": 5, "message": "half"}
    fields = ("task.progress", "2026-01-01T00:00:00.000Z", "core", Entity("task", "t"))
    raw = EncodedWireEvent(*fields, msgspec.Raw(encode_payload(payload)), "p1", 7)
    plain = WireEvent(*fields, payload, "p1", 7)
    assert ENCODER.encode(raw) == ENCODER.encode(plain)
    assert DECODER.decode(ENCODER.encode(raw)) == plain
