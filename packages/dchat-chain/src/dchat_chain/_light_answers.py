"""Strict parsing of what an untrusted node answers a light client.

Two documents of the node API (``docs/protocol.md`` §15; the validator side
writes them in :mod:`._light_serve`): a page of ``GET /v1/chain/headers`` and
the proof part of a proven answer. Both come from a node the client does not
trust, so parsing is total and bounded: every field is checked for type and
size, a header must be canonically encoded, and anything else is a
:class:`ChainAnswerError`. Parsing checks structure only; the light client
verifies what was parsed (certificates, hand-offs, Merkle proofs).
"""

from __future__ import annotations

import re
from typing import Any, Final

from dchat_core import DchatError, DecodeLimits, canonical_decode, canonical_encode

from ._block import BlockHeader
from ._block_commit import CommitCertificate
from ._errors import ChainAnswerError
from ._validators import ValidatorSet

__all__ = ("parse_headers", "parse_proof")

_HEADER_LIMITS: Final = DecodeLimits(max_size=4096, max_depth=2, max_items=64)
_ITEM_KEYS: Final = frozenset({"height", "header", "certificate", "next_validators"})
_HEX: Final = re.compile(r"(?:[0-9a-f]{2})*")


def _hex(value: Any, what: str, max_bytes: int) -> bytes:
    if not isinstance(value, str) or len(value) > 2 * max_bytes or not _HEX.fullmatch(value):
        raise ChainAnswerError(f"{what} is not hex of at most {max_bytes} bytes")
    return bytes.fromhex(value)


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 53:
        raise ChainAnswerError(f"{what} is not a height")
    return value


def _header(raw: bytes) -> BlockHeader:
    try:
        header = BlockHeader.from_obj(canonical_decode(raw, _HEADER_LIMITS))
    except DchatError as exc:
        raise ChainAnswerError(f"malformed header: {exc}") from None
    if canonical_encode(header.to_obj()) != raw:
        raise ChainAnswerError("header is not canonically encoded")
    return header


def parse_headers(
    doc: Any, limit: int
) -> list[tuple[BlockHeader, CommitCertificate, ValidatorSet | None]]:
    """The items of a ``/v1/chain/headers`` answer (structure only; nothing verified).

    Raises:
        ChainAnswerError: The answer is malformed or longer than ``limit``.
    """
    items = doc.get("headers") if isinstance(doc, dict) else None
    if not isinstance(items, list) or len(items) > limit:
        raise ChainAnswerError(f"a headers page is a list of at most {limit} items")
    out = []
    for item in items:
        if not isinstance(item, dict) or set(item) != _ITEM_KEYS:
            raise ChainAnswerError("a headers item has unexpected fields")
        header = _header(_hex(item["header"], "header", 4096))
        if _int(item["height"], "height") != header.height:
            raise ChainAnswerError("a headers item names another height than its header")
        try:
            cert = CommitCertificate.from_bytes(_hex(item["certificate"], "certificate", 1024))
            following = None
            if item["next_validators"] is not None:
                raw_set = _hex(item["next_validators"], "next_validators", 1 << 20)
                following = ValidatorSet.from_bytes(raw_set)  # proofs of possession checked
        except ChainAnswerError:
            raise
        except DchatError as exc:
            raise ChainAnswerError(f"malformed headers item: {exc}") from None
        out.append((header, cert, following))
    return out


def parse_proof(doc: Any) -> tuple[int, bytes, bytes | None, bytes]:
    """(state height, app hash, value, proof) of a proven answer (structure only).

    Raises:
        ChainAnswerError: The answer is malformed or inconsistent.
    """
    if not isinstance(doc, dict):
        raise ChainAnswerError("the answer is not an object")
    height = _int(doc.get("height"), "height")
    if doc.get("header_height") != height + 1:
        raise ChainAnswerError("the answer's state is not the one header height + 1 proves")
    app_hash = _hex(doc.get("app_hash"), "app_hash", 64)
    raw = doc.get("value")
    value = None if raw is None else _hex(raw, "value", 1 << 20)
    return height, app_hash, value, _hex(doc.get("proof"), "proof", 16 << 10)
