"""The relay message codec: round trips, and only RelayProtocolError on bad input."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import DecodeLimits, canonical_decode, canonical_encode
from dchat_network import RelayError, RelayMessage, RelayProtocolError
from dchat_network.lowlevel import (
    MAX_BATCH,
    MAX_PREKEY_BUNDLE,
    MAX_PREKEY_PUT,
    MAX_PREKEYS_HELD,
    RelayAck,
    RelayAcked,
    RelayBatch,
    RelayFetch,
    RelayPrekeyBundle,
    RelayPrekeyCount,
    RelayPrekeyGet,
    RelayPrekeyPut,
    RelayPrekeysHeld,
    RelayPut,
    RelayStored,
    decode_relay_message,
    encode_relay_message,
)
from dchat_testing import hostile_bytes

MAX_ENVELOPE = 96 * 1024
MAX_RID = 2**63 - 1

rids = st.integers(0, MAX_RID)
ids = st.binary(min_size=32, max_size=32)
envelopes = st.binary(max_size=2048) | st.just(bytes(MAX_ENVELOPE))
small_envelopes = st.binary(max_size=64)
bundles = st.binary(max_size=MAX_PREKEY_BUNDLE)
# The codec checks only types: the server refuses bad ids and sizes (bad_prekeys).
one_time = st.lists(st.tuples(st.integers(-(2**64), 2**64 - 1), bundles), max_size=4)

messages: st.SearchStrategy[RelayMessage] = st.one_of(
    st.builds(RelayPut, rids, ids, envelopes),
    st.builds(RelayStored, rids, ids),
    st.builds(RelayFetch, rids, ids, st.integers(1, MAX_BATCH)),
    st.builds(
        RelayBatch,
        rids,
        st.lists(st.tuples(ids, small_envelopes), max_size=MAX_BATCH).map(tuple),
    ),
    st.builds(RelayAck, rids, ids, st.lists(ids, max_size=MAX_BATCH).map(tuple)),
    st.builds(RelayAcked, rids, st.integers(0, MAX_BATCH)),
    st.builds(RelayError, rids, st.text(max_size=64), st.text(max_size=512)),
    st.builds(RelayPrekeyPut, rids, ids, bundles, one_time.map(tuple), st.booleans()),
    st.builds(RelayPrekeyCount, rids, ids),
    st.builds(RelayPrekeyGet, rids, ids),
    st.builds(RelayPrekeysHeld, rids, st.integers(0, MAX_PREKEYS_HELD)),
    st.builds(RelayPrekeyBundle, rids, bundles),
)


def body(message: RelayMessage) -> dict[str, Any]:
    """The decoded wire map of a valid message, to mutate."""
    value = canonical_decode(encode_relay_message(message), DecodeLimits(max_size=8 << 20))
    assert isinstance(value, dict)
    return value


def decode_fails(data: bytes) -> None:
    with pytest.raises(RelayProtocolError):
        decode_relay_message(data)


@given(messages)
def test_every_message_round_trips(message: RelayMessage) -> None:
    encoded = encode_relay_message(message)
    assert decode_relay_message(encoded) == message
    assert encode_relay_message(decode_relay_message(encoded)) == encoded


def test_full_batch_of_maximal_envelopes_round_trips() -> None:
    batch = RelayBatch(7, tuple((bytes([i]) * 32, bytes(MAX_ENVELOPE)) for i in range(MAX_BATCH)))
    assert decode_relay_message(encode_relay_message(batch)) == batch


def test_wire_format_is_the_documented_map() -> None:
    put = RelayPut(5, bytes(32), b"env")
    assert encode_relay_message(put) == canonical_encode(
        {"t": "put", "rid": 5, "mb": bytes(32), "env": b"env"}
    )
    assert body(RelayBatch(1, ((bytes(32), b"e"),))) == {
        "t": "batch",
        "rid": 1,
        "items": [[bytes(32), b"e"]],
    }


def test_full_prekey_put_round_trips() -> None:
    big = bytes(MAX_PREKEY_BUNDLE)
    otks = tuple((2**32 - 1 - i, big) for i in range(MAX_PREKEY_PUT))
    put = RelayPrekeyPut(3, bytes(32), big, otks, replace=True)
    assert decode_relay_message(encode_relay_message(put)) == put


def test_prekey_wire_format_is_the_documented_map() -> None:
    put = RelayPrekeyPut(2, bytes(32), b"L", ((9, b"o9"), (1, b"o1")), replace=False)
    assert body(put) == {
        "t": "pk_put",
        "rid": 2,
        "mb": bytes(32),
        "last": b"L",
        "otks": [[9, b"o9"], [1, b"o1"]],  # in the owner's order
        "replace": False,
    }
    assert body(RelayPrekeyCount(3, bytes(32))) == {"t": "pk_count", "rid": 3, "mb": bytes(32)}
    assert body(RelayPrekeyGet(4, bytes(32))) == {"t": "pk_get", "rid": 4, "mb": bytes(32)}
    assert body(RelayPrekeysHeld(5, 7)) == {"t": "pk_held", "rid": 5, "n": 7}
    assert body(RelayPrekeyBundle(6, b"B")) == {"t": "pk_bundle", "rid": 6, "bundle": b"B"}


def test_prekey_examples_in_the_protocol_doc() -> None:
    # The hex examples of docs/protocol.md, "Relay protocol".
    get = RelayPrekeyGet(7, bytes(range(32)))
    assert encode_relay_message(get).hex() == (
        "a3617466706b5f676574626d625820000102030405060708090a0b0c0d0e0f"
        "101112131415161718191a1b1c1d1e1f6372696407"
    )
    assert encode_relay_message(RelayPrekeysHeld(7, 3)).hex() == (
        "a3616e03617467706b5f68656c646372696407"
    )
    put = RelayPrekeyPut(2, bytes(32), b"\x4c", ((5, b"\x6f"),), replace=False)
    assert encode_relay_message(put).hex() == (
        "a6617466706b5f707574626d625820" + "00" * 32 + "6372696402646c617374414c"
        "646f746b73818205416f677265706c616365f4"
    )


@settings(max_examples=500)
@given(hostile_bytes(max_size=512))
def test_random_bytes_give_only_relay_protocol_errors(data: bytes) -> None:
    try:
        message = decode_relay_message(data)
    except RelayProtocolError:
        return
    # Whatever decodes must be a real message that re-encodes to the same bytes.
    assert encode_relay_message(message) == data


# A well-typed pk_put map, to break one field of.
PK_PUT = {"t": "pk_put", "rid": 1, "mb": bytes(32), "last": b"", "otks": [], "replace": True}

cbor_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64 - 1)
    | st.binary(max_size=40)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=10,
)


@settings(max_examples=500)
@given(messages, st.data())
def test_any_field_replaced_by_any_value_gives_only_relay_protocol_errors(
    message: RelayMessage, data: st.DataObject
) -> None:
    value = body(message)
    key = data.draw(st.sampled_from(sorted(value)))
    value[key] = data.draw(cbor_values)
    try:
        decoded = decode_relay_message(canonical_encode(value))
    except RelayProtocolError:
        return
    assert encode_relay_message(decoded) == canonical_encode(value)


@given(messages, st.sampled_from(["x", "extra", "id2", "rid2"]), cbor_values)
def test_extra_fields_are_rejected(message: RelayMessage, key: str, extra: object) -> None:
    value = body(message)
    value[key] = extra
    decode_fails(canonical_encode(value))


@given(messages, st.data())
def test_missing_fields_are_rejected(message: RelayMessage, data: st.DataObject) -> None:
    value = body(message)
    del value[data.draw(st.sampled_from(sorted(value)))]
    decode_fails(canonical_encode(value))


def test_prekey_put_bounds_are_left_to_the_server() -> None:
    # Sizes and id ranges are the relay's rules (bad_prekeys), not the codec's.
    big = bytes(MAX_PREKEY_BUNDLE + 1)
    value = {**PK_PUT, "last": big, "otks": [[-1, b""], [2**64 - 1, big], [-1, b"o"]]}
    put = decode_relay_message(canonical_encode(value))
    assert put == RelayPrekeyPut(1, bytes(32), big, ((-1, b""), (2**64 - 1, big), (-1, b"o")), True)


@pytest.mark.parametrize("t", ["", "PUT", "get", "store", 1, None, b"put", ["put"], {"t": 1}])
def test_unknown_type_tags_are_rejected(t: object) -> None:
    value = body(RelayFetch(1, bytes(32), 1))
    value["t"] = t
    decode_fails(canonical_encode(value))


@pytest.mark.parametrize(
    "value",
    [
        {"t": "put", "rid": 1, "mb": bytes(31), "env": b""},
        {"t": "put", "rid": 1, "mb": bytes(33), "env": b""},
        {"t": "put", "rid": 1, "mb": bytes(32), "env": bytes(MAX_ENVELOPE + 1)},
        {"t": "put", "rid": 1, "mb": "32 chars of text instead of byte", "env": b""},
        {"t": "put", "rid": -1, "mb": bytes(32), "env": b""},
        {"t": "put", "rid": MAX_RID + 1, "mb": bytes(32), "env": b""},
        {"t": "put", "rid": True, "mb": bytes(32), "env": b""},
        {"t": "stored", "rid": 1, "id": bytes(16)},
        {"t": "fetch", "rid": 1, "mb": bytes(32), "max": 0},
        {"t": "fetch", "rid": 1, "mb": bytes(31), "max": 1},
        {"t": "ack", "rid": 1, "mb": b"", "ids": []},
        {"t": "fetch", "rid": 1, "mb": bytes(32), "max": MAX_BATCH + 1},
        {"t": "fetch", "rid": 1, "mb": bytes(32), "max": "1"},
        {"t": "batch", "rid": 1, "items": [[bytes(32), b"e"]] * (MAX_BATCH + 1)},
        {"t": "batch", "rid": 1, "items": [[bytes(32)]]},
        {"t": "batch", "rid": 1, "items": [[bytes(32), b"e", b"x"]]},
        {"t": "batch", "rid": 1, "items": [[bytes(31), b"e"]]},
        {"t": "batch", "rid": 1, "items": [[bytes(32), "e"]]},
        {"t": "batch", "rid": 1, "items": [[bytes(32), bytes(MAX_ENVELOPE + 1)]]},
        {"t": "batch", "rid": 1, "items": [b"not a pair"]},
        {"t": "batch", "rid": 1, "items": {"a": 1}},
        {"t": "ack", "rid": 1, "mb": bytes(32), "ids": [bytes(32)] * (MAX_BATCH + 1)},
        {"t": "ack", "rid": 1, "mb": bytes(32), "ids": [bytes(33)]},
        {"t": "ack", "rid": 1, "mb": bytes(32), "ids": [1]},
        {"t": "ack", "rid": 1, "mb": bytes(32), "ids": bytes(32)},
        {"t": "acked", "rid": 1, "n": MAX_BATCH + 1},
        {"t": "acked", "rid": 1, "n": -1},
        {"t": "error", "rid": 1, "code": "c" * 65, "msg": ""},
        {"t": "error", "rid": 1, "code": "", "msg": "m" * 513},
        {"t": "error", "rid": 1, "code": b"bytes", "msg": ""},
        {"t": "pk_put", "rid": 1, "mb": bytes(32), "last": b"", "otks": [], "replace": 1},
        {"t": "pk_put", "rid": 1, "mb": bytes(32), "last": b"", "otks": [], "replace": None},
        {"t": "pk_put", "rid": 1, "mb": bytes(31), "last": b"", "otks": [], "replace": True},
        {"t": "pk_put", "rid": 1, "mb": bytes(32), "last": "x", "otks": [], "replace": True},
        {**PK_PUT, "otks": [[i, b"o"] for i in range(MAX_PREKEY_PUT + 1)]},
        {**PK_PUT, "otks": [1]},
        {**PK_PUT, "otks": b""},
        {**PK_PUT, "otks": [b"o"]},
        {**PK_PUT, "otks": [[b""]]},
        {**PK_PUT, "otks": [[1]]},
        {**PK_PUT, "otks": [[1, b"o", b"x"]]},
        {**PK_PUT, "otks": [[b"o", 1]]},
        {**PK_PUT, "otks": [["1", b"o"]]},
        {**PK_PUT, "otks": [[True, b"o"]]},
        {**PK_PUT, "otks": [[1, "o"]]},
        {**PK_PUT, "otks": [[None, b"o"]]},
        {"t": "pk_count", "rid": 1, "mb": bytes(33)},
        {"t": "pk_get", "rid": 1, "mb": None},
        {"t": "pk_held", "rid": 1, "n": MAX_PREKEYS_HELD + 1},
        {"t": "pk_held", "rid": 1, "n": -1},
        {"t": "pk_held", "rid": 1, "n": False},
        {"t": "pk_bundle", "rid": 1, "bundle": bytes(MAX_PREKEY_BUNDLE + 1)},
        {"t": "pk_bundle", "rid": 1, "bundle": "text"},
    ],
)
def test_wrong_types_and_oversize_fields_are_rejected(value: dict[str, object]) -> None:
    decode_fails(canonical_encode(value))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        canonical_encode([1, 2]),
        canonical_encode("put"),
        canonical_encode({"rid": 1}),
        canonical_encode({1: "put", "rid": 1}),
        canonical_encode({"t": "fetch", "rid": 1, "mb": bytes(32), "max": 1})
        + b"\x00",  # trailing bytes
        b"\xa3\x61t\x65fetch\x63rid\x01\x63max\x01",  # keys not in canonical order
        b"\xbf\xff",  # indefinite-length map
        b"\xc1\x00",  # a tag
    ],
)
def test_non_canonical_or_non_map_inputs_are_rejected(data: bytes) -> None:
    decode_fails(data)


def test_oversize_input_is_rejected_without_decoding() -> None:
    huge = canonical_encode(
        {"t": "put", "rid": 1, "mb": bytes(32), "env": bytes(8 * 1024 * 1024 + 1)}
    )
    decode_fails(huge)


def test_error_is_also_a_value_error() -> None:
    with pytest.raises(ValueError, match="relay"):
        decode_relay_message(b"\x00")
