"""A light client's persisted state: the bytes a wallet keeps per chain.

Format (deterministic CBOR, docs/protocol.md §16)::

    {"v": 1, "body": bytes, "sum": SHA-256(body)}
    body = {"chain": str, "anchor": 32 bytes, "header": bytes | null, "vals": bytes}

``anchor`` is the hash of the genesis validator set the client started from
(the trust anchor); ``header`` the canonical encoding of the last verified
header (null before the first), ``vals`` the set trusted to sign the header
after it. The checksum catches a damaged file, and the body must then still be
a consistent client (the set hashes to the header's ``next_validators_hash``,
or to the anchor before any header): bytes that fail any check are a
:class:`LightStateError`, never a reason to trust something else. Where the
bytes live (a file written atomically) is the shell's business; the name it
gives them is :func:`light_state_name` (the chain id with every character
outside ``A-Z a-z 0-9 . _ -`` replaced, so no chain id can name a path).
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from dchat_core import DchatError, DecodeLimits, Fields, canonical_decode, canonical_encode

from ._block import BlockHeader
from ._errors import LightStateError
from ._light import LightClient
from ._validators import ValidatorSet

__all__ = ("MAX_LIGHT_STATE_SIZE", "decode_light_state", "encode_light_state", "light_state_name")

MAX_LIGHT_STATE_SIZE: Final = 4 << 20
_LIMITS: Final = DecodeLimits(max_size=MAX_LIGHT_STATE_SIZE, max_depth=3, max_items=64)
_OUTER: Final = frozenset({"v", "body", "sum"})
_BODY: Final = frozenset({"chain", "anchor", "header", "vals"})


def light_state_name(chain_id: str) -> str:
    """The file name of the light state of ``chain_id`` (one path component)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", chain_id) + ".light"


def encode_light_state(client: LightClient, anchor: bytes) -> bytes:
    """The stored bytes for ``client``, which started from the set hashing to ``anchor``."""
    header = client.header(client.height) if client.height else None
    body = canonical_encode(
        {
            "chain": client.chain_id,
            "anchor": anchor,
            "header": None if header is None else canonical_encode(header.to_obj()),
            "vals": client.validators.to_bytes(),
        }
    )
    return canonical_encode({"v": 1, "body": body, "sum": hashlib.sha256(body).digest()})


def decode_light_state(data: bytes) -> tuple[LightClient, bytes]:
    """The client and its anchor from stored bytes.

    Raises:
        LightStateError: The bytes are damaged, malformed or inconsistent.
    """
    try:
        outer = Fields(canonical_decode(data, _LIMITS), "light state", _OUTER)
        if outer.get_int("v") != 1:
            raise LightStateError("light state: unsupported version")
        body = outer.get_bytes("body", max_size=MAX_LIGHT_STATE_SIZE)
        if hashlib.sha256(body).digest() != outer.get_bytes("sum", size=32):
            raise LightStateError("light state: checksum mismatch (the file is damaged)")
        f = Fields(canonical_decode(body, _LIMITS), "light state body", _BODY)
        chain = f.get_str("chain", max_len=64)
        anchor = f.get_bytes("anchor", size=32)
        raw_header = f.raw("header")
        vals = ValidatorSet.from_bytes(f.get_bytes("vals"), check_possession=False)
        if raw_header is None:
            if vals.hash() != anchor:
                raise LightStateError("light state: the set is not the anchor")
            return LightClient(chain, vals), anchor
        if not isinstance(raw_header, bytes):
            raise LightStateError("light state: header must be bytes")
        header = BlockHeader.from_obj(canonical_decode(raw_header, _LIMITS))
        if header.chain_id != chain:
            raise LightStateError("light state: the header is for another chain")
        return LightClient.from_trusted_header(header, vals), anchor
    except LightStateError:
        raise
    except (DchatError, ValueError, TypeError) as exc:
        raise LightStateError(f"light state is corrupt: {exc}") from None
