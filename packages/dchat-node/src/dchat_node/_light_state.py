"""The wallet's persisted light-client state: one file per chain, written atomically.

Format (deterministic CBOR, docs/protocol.md §16)::

    {"v": 1, "body": bytes, "sum": SHA-256(body)}
    body = {"chain": str, "anchor": 32 bytes, "header": bytes | null, "vals": bytes}

``anchor`` is the hash of the genesis validator set the client started from
(the trust anchor); ``header`` the canonical encoding of the last verified
header (null before the first), ``vals`` the set trusted to sign the header
after it. The checksum catches a damaged file, and the body must then still be
a consistent client (the set hashes to the header's ``next_validators_hash``,
or to the anchor before any header): a file that fails any check is a
:class:`LightStateError`, never a reason to trust something else.

Writes go to a temporary file in the same directory, are fsynced, renamed over
the old file and the directory fsynced, so a crash leaves the old or the new
state, never a torn one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from typing import TYPE_CHECKING, Final

from dchat_chain import BlockHeader, LightClient, ValidatorSet
from dchat_core import DchatError, DecodeLimits, Fields, canonical_decode, canonical_encode

from ._errors import LightStateError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ("MAX_STATE_SIZE", "decode_state", "encode_state", "read_state", "write_state")

MAX_STATE_SIZE: Final = 4 << 20
_LIMITS: Final = DecodeLimits(max_size=MAX_STATE_SIZE, max_depth=3, max_items=64)
_OUTER: Final = frozenset({"v", "body", "sum"})
_BODY: Final = frozenset({"chain", "anchor", "header", "vals"})


def encode_state(client: LightClient, anchor: bytes) -> bytes:
    """The file bytes for ``client``, which started from the set hashing to ``anchor``."""
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


def decode_state(data: bytes) -> tuple[LightClient, bytes]:
    """The client and its anchor from file bytes.

    Raises:
        LightStateError: The bytes are damaged, malformed or inconsistent.
    """
    try:
        outer = Fields(canonical_decode(data, _LIMITS), "light state", _OUTER)
        if outer.get_int("v") != 1:
            raise LightStateError("light state: unsupported version")
        body = outer.get_bytes("body", max_size=MAX_STATE_SIZE)
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


def read_state(path: Path) -> tuple[LightClient, bytes] | None:
    """The state stored at ``path``, or None when there is no file.

    Raises:
        LightStateError: The file is unreadable, too large or corrupt.
    """
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_STATE_SIZE + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LightStateError(f"cannot read {path.name}: {exc.strerror}") from None
    if len(data) > MAX_STATE_SIZE:
        raise LightStateError(f"{path.name} is larger than a light state can be")
    return decode_state(data)


def write_state(path: Path, client: LightClient, anchor: bytes) -> None:
    """Replace the state at ``path`` atomically and durably (tmp, fsync, rename, fsync dir)."""
    data = encode_state(client, anchor)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise LightStateError(f"cannot write {path.name}: {exc.strerror}") from None
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
