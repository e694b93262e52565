"""Canonical binary encoding: deterministic CBOR (RFC 8949 section 4.2.1).

Everything dchat signs, hashes or sends is encoded here. The accepted data model is
deliberately small: ``None``, ``bool``, integers in [-2**64, 2**64 - 1], ``bytes``,
``str``, ``list`` (and ``tuple`` when encoding) and ``dict`` with ``str`` or ``int``
keys. No floats, tags, undefined or indefinite lengths.

Encoding is deterministic: shortest-form heads and map keys sorted by the bytewise
order of their encodings. Decoding is *total and strict*: any input that is not
exactly the canonical encoding of an allowed value (trailing bytes, non-shortest
heads, unsorted or duplicate keys, invalid UTF-8, excessive size, depth or item
count) raises :class:`~dchat_core.DecodeError`. A decoded value therefore re-encodes
to the same bytes, which keeps signatures over encodings unambiguous.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Final

from ._errors import DecodeError, DecodeLimitError, EncodingError

__all__ = ("DecodeLimits", "canonical_decode", "canonical_encode")

_MAX_UINT: Final = 2**64 - 1


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Bounds applied while decoding untrusted bytes."""

    max_size: int = 1 << 20
    max_depth: int = 16
    max_items: int = 4096


DEFAULT_LIMITS: Final = DecodeLimits()


def _head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes((major << 5 | value,))
    if value < 0x100:
        return bytes((major << 5 | 24, value))
    if value < 0x10000:
        return bytes((major << 5 | 25,)) + struct.pack(">H", value)
    if value < 0x100000000:
        return bytes((major << 5 | 26,)) + struct.pack(">I", value)
    return bytes((major << 5 | 27,)) + struct.pack(">Q", value)


def _encode_into(out: bytearray, value: Any, depth: int) -> None:
    # The exact built-in types first, by one type lookup (this encodes every state
    # record, message and transaction); anything else takes the general path below.
    kind = type(value)
    if kind is bytes:
        n = len(value)
        if n < 24:
            out.append(0x40 | n)
        else:
            out += _head(2, n)
        out += value
    elif kind is str:
        raw = value.encode("utf-8")
        n = len(raw)
        if n < 24:
            out.append(0x60 | n)
        else:
            out += _head(3, n)
        out += raw
    elif kind is int and 0 <= value < 24:
        out.append(value)
    elif kind is dict:
        _encode_map(out, value, depth)
    elif kind is list or kind is tuple:
        n = len(value)
        if depth > 64 or (n and depth == 64):  # the items would nest 65 deep
            raise EncodingError("value nests too deeply to encode")
        if n < 24:
            out.append(0x80 | n)
        else:
            out += _head(4, n)
        for item in value:
            _encode_into(out, item, depth + 1)
    else:
        _encode_other(out, value, depth)


def _encode_other(out: bytearray, value: Any, depth: int) -> None:
    if depth > 64:
        raise EncodingError("value nests too deeply to encode")
    if value is None:
        out.append(0xF6)
    elif value is True:
        out.append(0xF5)
    elif value is False:
        out.append(0xF4)
    elif isinstance(value, int):
        if 0 <= value <= _MAX_UINT:
            out += _head(0, value)
        elif -_MAX_UINT - 1 <= value < 0:
            out += _head(1, -1 - value)
        else:
            raise EncodingError("integer out of the 64-bit CBOR range")
    elif isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        out += _head(2, len(raw)) + raw
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        out += _head(3, len(raw)) + raw
    elif isinstance(value, list | tuple):
        out += _head(4, len(value))
        for item in value:
            _encode_into(out, item, depth + 1)
    elif isinstance(value, dict):
        _encode_map(out, value, depth)
    else:
        raise EncodingError(f"cannot canonically encode {type(value).__name__}")


def _map_key(key: Any) -> bytes:
    """The encoding of a map key (cached: records use the same few names again and again)."""
    raw = _KEYS.get(key) if type(key) is str else None
    if raw is None:
        if isinstance(key, bool) or not isinstance(key, int | str):
            raise EncodingError("map keys must be str or int")
        raw = canonical_encode(key)
        if type(key) is str and len(key) <= 32 and len(_KEYS) < 4096:
            _KEYS[key] = raw
    return raw


_KEYS: dict[str, bytes] = {}


_ORDERS: dict[tuple[str, ...], tuple[tuple[str, bytes], ...]] = {}
"""For maps whose keys are all text: the keys in canonical order with their
encodings, by the keys in insertion order. Records are built by the same few
dict literals again and again, so the sort is done once per shape."""


def _key_order(keys: tuple[Any, ...]) -> tuple[tuple[Any, bytes], ...]:
    """The keys with their encodings, sorted by encoding (validated, and cached for text)."""
    order = _ORDERS.get(keys)
    if order is None:
        # Keys encode uniquely, so the sort never compares two keys.
        order = tuple(sorted(((key, _map_key(key)) for key in keys), key=lambda e: e[1]))
        # Only all-text shapes: a tuple with 1 would equal one with True (bools are refused).
        if len(_ORDERS) < 1024 and len(keys) <= 64 and all(type(k) is str for k in keys):
            _ORDERS[keys] = order
    return order


def _encode_map(out: bytearray, value: dict[Any, Any], depth: int) -> None:
    n = len(value)
    if depth > 64 or (n and depth == 64):  # the items would nest 65 deep
        raise EncodingError("value nests too deeply to encode")
    order = _key_order(tuple(value))
    if n < 24:
        out.append(0xA0 | n)
    else:
        out += _head(5, n)
    for key, raw_key in order:
        out += raw_key
        _encode_into(out, value[key], depth + 1)


def canonical_encode(value: Any) -> bytes:
    """Encode ``value`` as deterministic CBOR.

    Raises:
        EncodingError: ``value`` holds a type outside the data model.
    """
    out = bytearray()
    _encode_into(out, value, 0)
    return bytes(out)


_SIMPLE: Final = {0xF4: False, 0xF5: True, 0xF6: None}
_TRUNCATED: Final = "truncated input"
_NOT_SHORTEST: Final = "non-canonical integer or length head"


class _Decoder:
    """One pass over ``data``; each step takes a position and returns (value, next position).

    Written for CPython speed (this decodes every transaction, proposal and block):
    positions are passed around instead of kept on ``self``, and the two shapes
    that dominate the chain's traffic are handled without a call per item: byte
    strings inside a list (a block's transactions) and short text keys of a map
    (every record's field names). Both fast paths apply exactly the checks of
    the general path: shortest-form heads, bounds, sorted unique keys, UTF-8,
    depth and item limits.
    """

    __slots__ = ("_data", "_items", "_max_depth", "_max_items", "_size")

    def __init__(self, data: bytes, limits: DecodeLimits) -> None:
        self._data = data
        self._size = len(data)
        self._max_depth = limits.max_depth
        self._max_items = limits.max_items
        self._items = 0

    def _long_head(self, pos: int, info: int) -> tuple[int, int]:
        # The argument of a head whose additional information is 24..31.
        if info > 27:
            raise DecodeError("indefinite lengths and reserved heads are not allowed")
        size = 1 << (info - 24)
        end = pos + size
        if end > self._size:
            raise DecodeError(_TRUNCATED)
        value = int.from_bytes(self._data[pos:end], "big")
        if value < (24 if size == 1 else 1 << (4 * size)):
            raise DecodeError(_NOT_SHORTEST)
        return value, end

    def _count(self, n: int) -> None:
        self._items += n
        if self._items > self._max_items:
            raise DecodeLimitError("too many items")

    def item(self, pos: int, depth: int) -> tuple[Any, int]:
        data = self._data
        if pos >= self._size:
            raise DecodeError(_TRUNCATED)
        initial = data[pos]
        pos += 1
        major, arg = initial >> 5, initial & 0x1F
        if arg > 23:
            arg, pos = self._long_head(pos, arg)
        if major == 2 or major == 3:
            end = pos + arg
            if end > self._size:
                raise DecodeError(_TRUNCATED)
            if major == 2:
                return data[pos:end], end
            try:
                return data[pos:end].decode("utf-8"), end
            except UnicodeDecodeError:
                raise DecodeError("invalid UTF-8 in text string") from None
        if major == 0:
            return arg, pos
        if major == 1:
            return -1 - arg, pos
        if major == 4:
            return self._list(pos, arg, depth)
        if major == 5:
            return self._map(pos, arg, depth)
        if major == 7:
            if initial not in _SIMPLE:
                raise DecodeError("only false, true and null simple values are allowed")
            return _SIMPLE[initial], pos
        raise DecodeError("tags are not allowed")

    def _enter(self, count: int, depth: int) -> None:
        self._count(count)
        if count and depth >= self._max_depth:
            raise DecodeLimitError("nesting too deep")

    def _list(self, pos: int, count: int, depth: int) -> tuple[list[Any], int]:
        self._enter(count, depth)
        data, size, item = self._data, self._size, self.item
        out: list[Any] = []
        append = out.append
        for _ in range(count):
            initial = data[pos] if pos < size else 0
            if not 0x40 <= initial <= 0x59:  # not a byte string shorter than 64 KiB
                value, pos = item(pos, depth + 1)
                append(value)
                continue
            if initial < 0x58:
                start, length = pos + 1, initial - 0x40
            elif initial == 0x58:
                start = pos + 2
                if start > size:
                    raise DecodeError(_TRUNCATED)
                length = data[pos + 1]
                if length < 24:
                    raise DecodeError(_NOT_SHORTEST)
            else:
                start = pos + 3
                if start > size:
                    raise DecodeError(_TRUNCATED)
                length = data[pos + 1] << 8 | data[pos + 2]
                if length < 0x100:
                    raise DecodeError(_NOT_SHORTEST)
            pos = start + length
            if pos > size:
                raise DecodeError(_TRUNCATED)
            append(data[start:pos])
        return out, pos

    def _map(self, pos: int, count: int, depth: int) -> tuple[dict[Any, Any], int]:
        self._enter(2 * count, depth)
        data, size, item = self._data, self._size, self.item
        result: dict[Any, Any] = {}
        previous = b""
        for _ in range(count):
            start = pos
            initial = data[pos] if pos < size else 0
            if 0x60 <= initial < 0x78:  # text of fewer than 24 bytes: the usual field name
                pos += 1 + initial - 0x60
                if pos > size:
                    raise DecodeError(_TRUNCATED)
                raw_key = data[start:pos]
                try:
                    key: Any = raw_key[1:].decode("utf-8")
                except UnicodeDecodeError:
                    raise DecodeError("invalid UTF-8 in text string") from None
            else:
                key, pos = item(pos, depth + 1)
                if isinstance(key, bool) or not isinstance(key, int | str):
                    raise DecodeError("map keys must be str or int")
                raw_key = data[start:pos]
            if raw_key <= previous:
                raise DecodeError("map keys unsorted or duplicated")
            previous = raw_key
            result[key], pos = item(pos, depth + 1)
        return result, pos


def canonical_decode(data: bytes, limits: DecodeLimits = DEFAULT_LIMITS) -> Any:
    """Decode canonical CBOR from untrusted ``data``.

    Raises:
        DecodeLimitError: the input breaks one of ``limits``.
        DecodeError: the input is not exactly one canonical value of the data model.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError("input must be bytes")
    raw = bytes(data)
    if len(raw) > limits.max_size:
        raise DecodeLimitError("input too large")
    if limits.max_depth < 0:
        raise DecodeLimitError("nesting too deep")
    value, end = _Decoder(raw, limits).item(0, 0)
    if end != len(raw):
        raise DecodeError("trailing bytes after value")
    return value
