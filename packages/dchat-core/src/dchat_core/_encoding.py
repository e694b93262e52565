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


def _encode_map(out: bytearray, value: dict[Any, Any], depth: int) -> None:
    entries: list[tuple[bytes, Any]] = []
    for key, item in value.items():
        if isinstance(key, bool) or not isinstance(key, int | str):
            raise EncodingError("map keys must be str or int")
        entries.append((canonical_encode(key), item))
    entries.sort(key=lambda kv: kv[0])
    out += _head(5, len(entries))
    for raw_key, item in entries:
        out += raw_key
        _encode_into(out, item, depth + 1)


def canonical_encode(value: Any) -> bytes:
    """Encode ``value`` as deterministic CBOR.

    Raises:
        EncodingError: ``value`` holds a type outside the data model.
    """
    out = bytearray()
    _encode_into(out, value, 0)
    return bytes(out)


class _Decoder:
    __slots__ = ("_data", "_items", "_limits", "_pos")

    def __init__(self, data: bytes, limits: DecodeLimits) -> None:
        self._data = data
        self._pos = 0
        self._limits = limits
        self._items = 0

    def _take(self, n: int) -> bytes:
        end = self._pos + n
        if end > len(self._data):
            raise DecodeError("truncated input")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def _read_head(self) -> tuple[int, int, int]:
        start = self._pos
        (initial,) = self._take(1)
        major, info = initial >> 5, initial & 0x1F
        if info < 24:
            return major, info, start
        if info > 27:
            raise DecodeError("indefinite lengths and reserved heads are not allowed")
        size = 1 << (info - 24)
        value = int.from_bytes(self._take(size), "big")
        minimum = 24 if size == 1 else 1 << (4 * size)
        if value < minimum:
            raise DecodeError("non-canonical integer or length head")
        return major, value, start

    def _count(self, n: int) -> None:
        self._items += n
        if self._items > self._limits.max_items:
            raise DecodeLimitError("too many items")

    def decode(self, depth: int) -> Any:
        if depth > self._limits.max_depth:
            raise DecodeLimitError("nesting too deep")
        major, arg, start = self._read_head()
        if major == 0:
            return arg
        if major == 1:
            return -1 - arg
        if major == 2:
            return self._take(arg)
        if major == 3:
            try:
                return self._take(arg).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DecodeError("invalid UTF-8 in text string") from exc
        if major == 4:
            self._count(arg)
            return [self.decode(depth + 1) for _ in range(arg)]
        if major == 5:
            return self._decode_map(arg, depth)
        if major == 7:
            simple = {20: False, 21: True, 22: None}
            if self._data[start] & 0x1F != arg or arg not in simple:
                raise DecodeError("only false, true and null simple values are allowed")
            return simple[arg]
        raise DecodeError("tags are not allowed")

    def _decode_map(self, count: int, depth: int) -> dict[Any, Any]:
        self._count(2 * count)
        result: dict[Any, Any] = {}
        previous = b""
        for _ in range(count):
            key_start = self._pos
            key = self.decode(depth + 1)
            raw_key = self._data[key_start : self._pos]
            if isinstance(key, bool) or not isinstance(key, int | str):
                raise DecodeError("map keys must be str or int")
            if raw_key <= previous:
                raise DecodeError("map keys unsorted or duplicated")
            previous = raw_key
            result[key] = self.decode(depth + 1)
        return result

    def finish(self) -> None:
        if self._pos != len(self._data):
            raise DecodeError("trailing bytes after value")


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
    decoder = _Decoder(raw, limits)
    value = decoder.decode(0)
    decoder.finish()
    return value
