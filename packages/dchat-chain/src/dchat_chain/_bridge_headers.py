"""A light client of the other chain, kept in this chain's state (the bridge's eyes).

Theory of operation. Each chain's genesis may name its counterpart: a chain id
and the validator set that signs the counterpart's block 1. That is the trust
root of a :class:`~dchat_chain.LightClient` stored under ``xlc/client``. Anyone
may feed it the counterpart's headers (``bridge_headers``, or inside a bridge
action), in height order, each with its commit certificate and, when the
header changes the validator set, the new set. For every verified header the
state keeps ``xlc/hdr/<height(8)>`` -> ``{"hash", "app"}``, so a later
transaction can prove the counterpart's state at any verified height.

Headers at or below the client's height are skipped when they equal the
stored ones, so two relayers racing to deliver the same headers do not make
each other's transactions fail. A *different* certified header at a stored
height would be a fork of the counterpart; it is refused (and is evidence
for that chain's slashing, which is not wired up here).

Everything here runs inside a transaction's state layer, so a failure undoes
the header updates together with the rest of the transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from dchat_core import DchatError, DecodeError, DecodeLimits, Fields, canonical_decode

from ._block import BlockHeader
from ._block_commit import CommitCertificate
from ._light import LightClient
from ._merkle import verify_proof
from ._state_records import body_fields, get_record, int_be, put_record
from ._tx_errors import MalformedTransactionError, RejectedTransactionError
from ._validators import ValidatorSet

if TYPE_CHECKING:
    from ._state import StateStore
    from ._tx import Transaction

__all__ = (
    "CLIENT_KEY",
    "MAX_HEADERS",
    "BridgeProofError",
    "bridge_headers",
    "counterpart",
    "deliver_headers",
    "header_key",
    "prove_against",
    "read_headers",
    "seed_bridge",
)

CLIENT_KEY: Final = b"xlc/client"
MAX_HEADERS: Final = 64
_ITEM_LIMITS: Final = DecodeLimits(max_size=64 << 10, max_depth=3, max_items=4096)
_ITEM_FIELDS: Final = frozenset({"header", "cert", "next"})


class BridgeProofError(RejectedTransactionError):
    """A counterpart header, certificate or state proof in a transaction does not hold."""


def header_key(height: int) -> bytes:
    """``xlc/hdr/`` + the 8-byte height of a verified counterpart header."""
    return b"xlc/hdr/" + int_be(height)


def seed_bridge(state: StateStore, params: dict[str, int], fields: Fields) -> int:
    """Genesis hook: store the counterpart's trust root if ``"bridge"`` is present.

    ``"bridge": {"chain": counterpart chain id, "validators": its genesis set}``.
    Allocates no supply (returns 0).
    """
    if not fields.has("bridge"):
        return 0
    bridge = Fields(fields.raw("bridge"), "bridge", frozenset({"chain", "validators"}))
    chain_id = bridge.get_str("chain", max_len=64)
    try:
        validators = ValidatorSet.from_bytes(bridge.get_bytes("validators"))
    except DchatError as exc:
        raise DecodeError(f"bridge validators: {exc}") from None
    state.set(CLIENT_KEY, LightClient(chain_id, validators).to_bytes())
    return 0


def _client(state: StateStore) -> LightClient:
    raw = state.get(CLIENT_KEY)
    if raw is None:
        raise RejectedTransactionError("this chain has no bridge configured")
    return LightClient.from_bytes(raw, check_possession=False, keep=1)


def counterpart(state: StateStore) -> str:
    """The chain id of the counterpart the bridge follows."""
    return _client(state).chain_id


def read_headers(fields: Fields) -> list[bytes]:
    """The optional ``"headers"`` list of a bridge body (items are bytes)."""
    items = fields.get_list("headers", max_len=MAX_HEADERS) if fields.has("headers") else []
    if not all(isinstance(item, bytes) for item in items):
        raise MalformedTransactionError("headers must be a list of encoded header items")
    return items


def _decode_item(item: bytes) -> tuple[BlockHeader, CommitCertificate, ValidatorSet | None]:
    try:
        f = Fields(canonical_decode(item, _ITEM_LIMITS), "header item", _ITEM_FIELDS)
        raw_next: Any = f.raw("next")
        header = BlockHeader.from_obj(f.raw("header"))
        certificate = CommitCertificate.from_obj(f.raw("cert"))
        if raw_next is not None and not isinstance(raw_next, bytes):
            raise DecodeError("header item: next must be bytes or null")
        following = None if raw_next is None else ValidatorSet.from_bytes(raw_next)
    except DchatError as exc:
        raise MalformedTransactionError(f"bad header item: {exc}") from None
    return header, certificate, following


def deliver_headers(state: StateStore, items: list[bytes]) -> None:
    """Verify ``items`` in order and advance the stored light client.

    Raises:
        BridgeProofError: A header or certificate does not verify, or conflicts
            with a header already verified at its height.
    """
    if not items:
        return
    client = _client(state)
    for item in items:
        header, certificate, following = _decode_item(item)
        if header.height <= client.height:
            stored = get_record(state, header_key(header.height))
            if stored is None or stored["hash"] != header.hash():
                raise BridgeProofError("a different header was verified at that height")
            continue
        try:
            client.update(header, certificate, following)
        except DchatError as exc:
            raise BridgeProofError(f"counterpart header refused: {exc}") from None
        put_record(
            state, header_key(header.height), {"hash": header.hash(), "app": header.app_hash}
        )
    state.set(CLIENT_KEY, client.to_bytes())


def bridge_headers(state: StateStore, tx: Transaction) -> None:
    """``bridge_headers {headers}``: advance the counterpart light client."""
    fields = body_fields(tx.body, "bridge_headers", {"headers"})
    items = read_headers(fields)
    if not items:
        raise MalformedTransactionError("no headers")
    deliver_headers(state, items)


def prove_against(
    state: StateStore, at: int, key: bytes, value: bytes | None, proof: bytes
) -> None:
    """Check a counterpart state proof against its verified header ``at``.

    Header ``at`` carries the counterpart's state after block ``at - 1``.

    Raises:
        BridgeProofError: ``at`` is not verified here, or the proof does not hold.
    """
    stored = get_record(state, header_key(at))
    if stored is None:
        raise BridgeProofError(f"counterpart header {at} is not verified here")
    if not verify_proof(stored["app"], key, value, proof):
        raise BridgeProofError("counterpart state proof does not verify")
