"""Canonical CBOR: deterministic encoding and strict, total, bounded decoding."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_core import (
    DecodeError,
    DecodeLimitError,
    DecodeLimits,
    EncodingError,
    canonical_decode,
    canonical_encode,
)
from dchat_testing import hostile_bytes

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.binary(max_size=64)
    | st.text(max_size=32)
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=8) | st.integers(-1000, 1000), children, max_size=5)
    ),
    max_leaves=30,
)


@given(values)
def test_roundtrip_and_reencode_is_identical(value: object) -> None:
    encoded = canonical_encode(value)
    assert canonical_decode(encoded) == value
    assert canonical_encode(canonical_decode(encoded)) == encoded


@given(values)
def test_cbor2_agrees_on_the_value(value: object) -> None:
    assert cbor2.loads(canonical_encode(value)) == value


@given(hostile_bytes(max_size=256))
def test_arbitrary_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    try:
        value = canonical_decode(data)
    except DecodeError:
        return
    assert canonical_encode(value) == data


def test_known_bytes_rfc8949_examples() -> None:
    assert canonical_encode(0) == bytes.fromhex("00")
    assert canonical_encode(24) == bytes.fromhex("1818")
    assert canonical_encode(-1) == bytes.fromhex("20")
    assert canonical_encode(1_000_000) == bytes.fromhex("1a000f4240")
    assert canonical_encode(2**64 - 1) == bytes.fromhex("1bffffffffffffffff")
    assert canonical_encode(b"\x01\x02") == bytes.fromhex("420102")
    assert canonical_encode("IETF") == bytes.fromhex("6449455446")
    assert canonical_encode([1, [2, 3]]) == bytes.fromhex("8201820203")
    # Keys sorted by the bytes of their encodings: 10 (0x0a) < 100 (0x1864) < -1 (0x20) < "z"
    assert canonical_encode({"z": 1, -1: 2, 100: 3, 10: 4}) == bytes.fromhex(
        "a40a04186403200261" + "7a01"
    )


@pytest.mark.parametrize(
    "hex_input",
    [
        "1817",  # 23 in a one-byte head: not shortest
        "190010",  # 16 in a two-byte head
        "5f4101ff",  # indefinite-length bytes
        "c11a514b67b0",  # a tag
        "f93c00",  # a float
        "f7",  # undefined
        "a2616101616101",  # duplicate key
        "a2616201616101",  # unsorted keys
        "6261",  # truncated text
        "62c328",  # invalid UTF-8
        "0000",  # trailing bytes
        "a1f401",  # bool as map key
        "",  # empty
        "1c",  # reserved head
        # The same rules inside a list of byte strings and for short text keys,
        # which the decoder handles on a fast path:
        "81580401020304",  # a 4-byte string with a one-byte length head
        "8259000401020304",  # a short string with a two-byte length head
        "82410158",  # truncated length head
        "8241015902",  # truncated two-byte length head
        "824101430102",  # truncated byte string
        "a2616201616201",  # duplicate text keys
        "a161c301",  # invalid UTF-8 in a key
        "a16201",  # truncated key
        "a1",  # a map with nothing in it
        "a1617a",  # a key without a value
        "a161610080",  # trailing bytes after a map
    ],
)
def test_non_canonical_or_malformed_is_rejected(hex_input: str) -> None:
    with pytest.raises(DecodeError):
        canonical_decode(bytes.fromhex(hex_input))


@given(values, st.data())
def test_damaged_encodings_decode_canonically_or_raise(value: object, data: st.DataObject) -> None:
    encoded = bytearray(canonical_encode([value, b"\x00" * 30, {"key": value}]))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(encoded) - 1))
        encoded[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(encoded)))
    damaged = bytes(encoded[:cut])
    try:
        decoded = canonical_decode(damaged)
    except DecodeError:
        return
    assert canonical_encode(decoded) == damaged


def test_limits_hold_on_lists_of_byte_strings_and_maps() -> None:
    with pytest.raises(DecodeLimitError):
        canonical_decode(canonical_encode([[b"x"]]), DecodeLimits(max_depth=1))
    with pytest.raises(DecodeLimitError):
        canonical_decode(canonical_encode([{"a": 1}]), DecodeLimits(max_depth=1))
    assert canonical_decode(canonical_encode([[], {}]), DecodeLimits(max_depth=1)) == [[], {}]
    with pytest.raises(DecodeLimitError):
        canonical_decode(canonical_encode([b"x"] * 11), DecodeLimits(max_items=10))
    many_keys = canonical_encode({str(i): i for i in range(6)})
    with pytest.raises(DecodeLimitError):
        canonical_decode(many_keys, DecodeLimits(max_items=10))


def test_limits_are_enforced() -> None:
    deep = b"\x81" * 40 + b"\x00"
    with pytest.raises(DecodeLimitError):
        canonical_decode(deep)
    with pytest.raises(DecodeLimitError):
        canonical_decode(canonical_encode(b"x" * 100), DecodeLimits(max_size=50))
    with pytest.raises(DecodeLimitError):
        canonical_decode(canonical_encode(list(range(100))), DecodeLimits(max_items=10))


def test_huge_declared_length_fails_fast() -> None:
    with pytest.raises(DecodeError):
        canonical_decode(bytes.fromhex("5bffffffffffffffff"))
    with pytest.raises(DecodeError):
        canonical_decode(bytes.fromhex("9bffffffffffffffff"))


def test_unencodable_values_raise_encoding_error() -> None:
    for bad in (1.5, {1, 2}, object(), 2**64, -(2**64) - 1, {(1,): 2}, {True: 1}):
        with pytest.raises(EncodingError):
            canonical_encode(bad)


def _nested(depth: int, leaf: object, *, as_map: bool = False) -> object:
    value = leaf
    for _ in range(depth):
        value = {"k": value} if as_map else [value]
    return value


@pytest.mark.parametrize("as_map", [False, True])
def test_encoding_refuses_values_nested_past_64_levels(as_map: bool) -> None:
    # Items may sit 64 containers deep, not 65, whatever shape gets them there.
    for leaf in (1, b"x", "x", None):
        canonical_encode(_nested(64, leaf, as_map=as_map))
        with pytest.raises(EncodingError):
            canonical_encode(_nested(65, leaf, as_map=as_map))
    canonical_encode(_nested(64, [], as_map=as_map))  # an empty container holds nothing
    with pytest.raises(EncodingError):
        canonical_encode(_nested(65, {}, as_map=as_map))


def test_subclasses_of_the_data_model_encode_as_their_base_types() -> None:
    class Number(int):
        pass

    class Text(str):
        pass

    assert canonical_encode(Number(300)) == canonical_encode(300)
    assert canonical_encode({Text("a"): Number(1)}) == canonical_encode({"a": 1})
    assert canonical_encode(bytearray(b"ab")) == canonical_encode(b"ab")
    assert canonical_encode((1, "two")) == canonical_encode([1, "two"])


@given(st.dictionaries(st.text(max_size=6), st.integers(0, 5), max_size=8), st.randoms())
def test_map_order_does_not_depend_on_insertion_order(value: dict[str, int], rnd: object) -> None:
    # The key order of a map shape is remembered; any insertion order of the same
    # keys must still encode to the same canonical bytes.
    items = list(value.items())
    rnd.shuffle(items)  # type: ignore[attr-defined]
    assert canonical_encode(dict(items)) == canonical_encode(value)
    assert cbor2.loads(canonical_encode(dict(items))) == value


def test_remembered_map_shapes_never_let_a_bool_key_through() -> None:
    # (1,) == (True,): a remembered shape of int keys must not admit a bool key.
    for good in ({1: "a"}, {"a": 1, 1: 2}):
        canonical_encode(good)
    for bad in ({True: "a"}, {"a": 1, True: 2}):
        with pytest.raises(EncodingError):
            canonical_encode(bad)
    canonical_encode({"x": 1})
    with pytest.raises(EncodingError):
        canonical_encode({"x": 1.5})  # a remembered shape still checks its values
