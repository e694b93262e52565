"""Chain routes of the node API (validator role).

Routes (bearer token like the rest of the API; binary values are hex):

* ``GET  /v1/chain/status``: height, last block hash, app hash, round, validator set, peers
* ``GET  /v1/chain/blocks/{height}``: header, transaction hashes, commit certificate
* ``GET  /v1/chain/blocks/{height}/txs``: the block's raw transactions (hex), which a
  wallet scanning for stealth payments checks against the certified header (§43)
* ``GET  /v1/chain/headers?from=H&limit=N``: up to N (at most 64) canonical headers
  from H with their commit certificates and, where a header changes the
  validator set, the new set (what a light client needs; docs/protocol.md §15)
* ``GET  /v1/chain/txs/{hash}``: ``committed`` (height, index, code), ``pending`` or ``unknown``
* ``POST /v1/chain/txs``: ``{"txs": [hex, ...]}`` (at most 2,048) into the mempool
* ``GET  /v1/chain/accounts/{key}``: balance and nonce with a Merkle proof against
  the app hash after block ``height`` (the *certified* state: header
  ``height + 1``, stored with its certificate, carries that app hash), and
  ``next_nonce``: the nonce the account's next transaction should carry (the
  newest committed nonce advanced past
  the account's transactions queued in this node's mempool; not covered by
  the proof)
* ``GET  /v1/chain/channels/{id}``: a payment channel's on-chain record (or null)
  with a Merkle proof (currency chain)
* ``GET  /v1/chain/identities/{id}``, ``GET /v1/chain/relays/{id}``: an identity's
  registration record, a relay's directory entry (or null) with a Merkle proof
  (chat chain)
* ``GET  /v1/chain/handles/{name}``: the slot of a public handle (``handle/<skeleton>``)
  with a Merkle proof and the record decoded (chat chain; the decoded part is a
  convenience, a light client checks the proven value)
* ``GET  /v1/chain/state/{key}``: any state key (hex, at most 128 bytes) with its
  Merkle proof, the value raw (hex): what a light client reads when no route
  decodes the record, e.g. the relay index ``relayidx`` or a relay bond
* ``GET  /v1/chain/relays``: every relay the chat chain lists (committed state,
  no proof: a scan, which a currency validator's prober reads from its own
  operator's chat validator; docs/operations.md, "Relay probes")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import Path as PathParam
from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from dchat_chain.lowlevel import (
    MAX_HEADERS,
    CorruptStoreError,
    NotCertifiedError,
    account_key,
    answer_fields,
    block_txs_answer,
    certified_query,
    handle_key,
    headers_page,
    relay_directory,
    tx_hash,
    verify_proof,
)
from dchat_core import NodeId, canonical_decode

from .._errors import NodeStateError
from ._roles import validator_service

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from fastapi import FastAPI
    from fastapi.params import Depends

    from dchat_chain import Block, CommitCertificate
    from dchat_chain.lowlevel import AppQueryResult, StateStore

    from .._runtime import Node
    from ..validator._service import ValidatorService

__all__ = ("add_chain_routes",)

T = TypeVar("T")

HEX_32 = r"^[0-9a-f]{64}$"
HANDLE = r"^[a-z0-9-]{3,32}$"  # a normalised handle (dchat_chain.lowlevel.normalize_handle)
HEX_KEY = r"^([0-9a-f]{2}){1,128}$"


class SubmitTxs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    txs: list[Annotated[str, Field(max_length=2 * 32768, pattern=r"^([0-9a-f]{2})+$")]] = Field(
        min_length=1, max_length=2048
    )


def _service(node: Node) -> ValidatorService:
    return validator_service(node)


def chain_status(service: ValidatorService) -> dict[str, Any]:
    """The ``/v1/chain/status`` document."""
    return service.status()


def proven(service: ValidatorService, key: bytes) -> AppQueryResult:
    """``key`` in the newest state a stored, certified header proves (``certified_query``)."""
    try:
        return certified_query(service.app, service.blocks.height(), key)
    except NotCertifiedError as exc:
        raise NodeStateError("not_ready", str(exc)) from None


async def _read_store(node: Node, read: Callable[..., T], *args: Any) -> T:
    """Run a block-store read in the store's worker thread; a damaged store is ``corrupt_store``."""
    try:
        return await node.store.run(read, *args)
    except CorruptStoreError as exc:
        raise NodeStateError("corrupt_store", str(exc)) from None


def _cert_json(cert: CommitCertificate | None) -> dict[str, Any] | None:
    if cert is None:
        return None
    return {
        "height": cert.height,
        "round": cert.round,
        "block_hash": cert.block_hash.hex(),
        "signers": cert.signers.hex(),
        "signature": cert.signature.to_bytes().hex(),
    }


def block_json(
    block: Block, cert: CommitCertificate | None, txs: Sequence[bytes]
) -> dict[str, Any]:
    """A block as the API shows it."""
    h = block.header
    return {
        "height": h.height,
        "hash": block.hash().hex(),
        "round": h.round,
        "time_ms": h.time_ms,
        "prev_block_hash": h.prev_block_hash.hex(),
        "txs_root": h.txs_root.hex(),
        "app_hash": h.app_hash.hex(),
        "validators_hash": h.validators_hash.hex(),
        "proposer": h.proposer_id.hex(),
        "txs": [t.hex() for t in txs],
        "certificate": _cert_json(cert),
    }


def add_chain_routes(app: FastAPI, node: Node, auth: list[Depends]) -> None:
    """Install the ``/v1/chain`` routes on ``app``."""

    @app.get("/v1/chain/status", dependencies=auth)
    async def status() -> dict[str, Any]:
        return chain_status(_service(node))

    @app.get("/v1/chain/blocks/{height}", dependencies=auth)
    async def block(height: Annotated[int, PathParam(ge=1, le=1 << 53)]) -> dict[str, Any]:
        service = _service(node)
        loaded = await _read_store(node, service.blocks.range, height, 1)
        if not loaded:
            raise NodeStateError("not_found", f"no block at height {height}")
        blk, cert = loaded[0]
        return block_json(blk, cert, [tx_hash(t) for t in blk.txs])

    @app.get("/v1/chain/blocks/{height}/txs", dependencies=auth)
    async def block_txs(height: Annotated[int, PathParam(ge=1, le=1 << 53)]) -> dict[str, Any]:
        answer = await _read_store(node, block_txs_answer, _service(node).blocks, height)
        if answer is None:
            raise NodeStateError("not_found", f"no block at height {height}")
        return answer

    @app.get("/v1/chain/headers", dependencies=auth)
    async def headers(
        start: Annotated[int, Query(alias="from", ge=1, le=1 << 53)],
        limit: Annotated[int, Query(ge=1, le=MAX_HEADERS)] = MAX_HEADERS,
    ) -> dict[str, Any]:
        service = _service(node)
        return await _read_store(
            node, headers_page, service.blocks, service.sets, service.app.chain_id, start, limit
        )

    @app.get("/v1/chain/txs/{digest}", dependencies=auth)
    async def tx_status(digest: Annotated[str, PathParam(pattern=HEX_32)]) -> dict[str, Any]:
        service = _service(node)
        raw = bytes.fromhex(digest)
        found = service.app.index.get(raw)
        if found is not None:
            return {
                "hash": digest,
                "status": "committed",
                "height": found.height,
                "index": found.index,
                "code": found.code,
                "log": found.log,
            }
        state = "pending" if raw in service.app.mempool else "unknown"
        return {"hash": digest, "status": state}

    @app.post("/v1/chain/txs", dependencies=auth, status_code=202)
    async def submit(body: SubmitTxs) -> dict[str, Any]:
        results = await _service(node).submit([bytes.fromhex(t) for t in body.txs])
        return {"results": results}

    @app.get("/v1/chain/accounts/{key}", dependencies=auth)
    async def account(key: Annotated[str, PathParam(pattern=HEX_32)]) -> dict[str, Any]:
        service = _service(node)
        doc, value = _proved(service, account_key(bytes.fromhex(key)))
        balance, nonce = (
            (0, 0) if value is None else (int.from_bytes(value[:8]), int.from_bytes(value[8:]))
        )
        return {
            "account": key,
            "balance": balance,
            "nonce": nonce,
            "next_nonce": _next_nonce(service, bytes.fromhex(key)),
            **doc,
            "validator": _validator_record(service, bytes.fromhex(key)),
        }

    @app.get("/v1/chain/channels/{chan}", dependencies=auth)
    async def channel(chan: Annotated[str, PathParam(pattern=HEX_32)]) -> dict[str, Any]:
        return channel_json(_on_chain(_service(node), "currency"), bytes.fromhex(chan))

    @app.get("/v1/chain/identities/{ident}", dependencies=auth)
    async def identity(ident: Annotated[str, PathParam(pattern=HEX_32)]) -> dict[str, Any]:
        return identity_json(_on_chain(_service(node), "chat"), bytes.fromhex(ident))

    @app.get("/v1/chain/handles/{name}", dependencies=auth)
    async def handle(name: Annotated[str, PathParam(pattern=HANDLE)]) -> dict[str, Any]:
        return handle_json(_on_chain(_service(node), "chat"), name)

    @app.get("/v1/chain/relays", dependencies=auth)
    async def relays() -> dict[str, Any]:
        service = _on_chain(_service(node), "chat")
        state = service.app.inner.state
        listed = [
            {"identity": i.hex(), **_relay_record(r), "last_batch": _last_batch(state, i, r["n"])}
            for i, r in relay_directory(state)
        ]
        return {"height": service.app.inner.height, "relays": listed}

    @app.get("/v1/chain/relays/{ident}", dependencies=auth)
    async def relay(ident: Annotated[str, PathParam(pattern=HEX_32)]) -> dict[str, Any]:
        return relay_json(_on_chain(_service(node), "chat"), bytes.fromhex(ident))

    @app.get("/v1/chain/state/{key}", dependencies=auth)
    async def state(key: Annotated[str, PathParam(pattern=HEX_KEY)]) -> dict[str, Any]:
        doc, _ = _proved(_service(node), bytes.fromhex(key))
        return {"key": key, **doc}


def channel_json(service: ValidatorService, chan: bytes) -> dict[str, Any]:
    """The ``/v1/chain/channels/{id}`` document: the record, its proof and the root."""
    answer = proven(service, b"chan/" + chan)
    value = answer.value
    record = None
    if value is not None:
        raw = canonical_decode(value)
        record = {
            "a": raw["a"].hex(),
            "b": raw["b"].hex(),
            "deposit_a": raw["da"],
            "deposit_b": raw["db"],
            "status": "open" if raw["st"] == 0 else "closing",
            "seq": raw["seq"],
            "balance_a": raw["ba"],
            "balance_b": raw["bb"],
            "closer": raw["closer"].hex() if "closer" in raw else None,
            "until": raw.get("until"),
        }
    return {"channel": chan.hex(), **answer_fields(answer), "record": record}


def _proved(service: ValidatorService, key: bytes) -> tuple[dict[str, Any], bytes | None]:
    """A committed value's proof document and the value (None if absent)."""
    answer = proven(service, key)
    value = answer.value
    doc = {
        **answer_fields(answer),
        "proof_valid": verify_proof(answer.app_hash, answer.key, value, answer.proof),
    }
    return doc, value


def identity_json(service: ValidatorService, identity: bytes) -> dict[str, Any]:
    """The ``/v1/chain/identities/{id}`` document (chat chain, ``id/<id>``)."""
    doc, value = _proved(service, b"id/" + identity)
    record = None
    if value is not None:
        raw = canonical_decode(value)
        record = {
            "key": raw["key"].hex(),
            "document": raw["doc"].hex(),
            "version": raw["ver"],
            "guardians": [g.hex() for g in raw["g"]],
            "threshold": raw["th"],
        }
    return {"identity": identity.hex(), **doc, "record": record}


def relay_json(service: ValidatorService, identity: bytes) -> dict[str, Any]:
    """The ``/v1/chain/relays/{id}`` document (chat chain, ``relay/<id>``)."""
    doc, value = _proved(service, b"relay/" + identity)
    record = None if value is None else _relay_record(canonical_decode(value))
    return {"identity": identity.hex(), **doc, "record": record}


def handle_json(service: ValidatorService, name: str) -> dict[str, Any]:
    """The ``/v1/chain/handles/{name}`` document (chat chain, ``handle/<skeleton>``)."""
    doc, value = _proved(service, handle_key(name))
    record = None
    if value is not None:
        raw = canonical_decode(value)
        record = {
            "name": raw["name"],
            "identity": raw["id"].hex(),
            "expires": raw["exp"],
            "relays": raw["relays"],
            "mailbox": raw["mb"].hex(),
        }
    return {"handle": name, **doc, "record": record}


def _relay_record(raw: dict[str, Any]) -> dict[str, Any]:
    endpoint = raw["ep"]
    if "node" in raw and "@" not in endpoint:  # the NODEID@HOST:PORT form probers dial
        endpoint = f"{NodeId.derive(raw['node'])}@{endpoint}"
    record = {
        "endpoint": endpoint,
        "region": raw["region"],
        "stake_ref": raw["stake"].hex(),
        "receipt_batches": raw["n"],
    }
    if "node" in raw:
        record["node_key"] = raw["node"].hex()
    return record | {k: raw[k] for k in ("tags", "label") if k in raw}


def _last_batch(state: StateStore, identity: bytes, batches: int) -> dict[str, Any] | None:
    """A relay's last claimed receipt batch (what probing validators audit), or None."""
    raw = batches and state.committed_get(b"rcpt/" + identity + (batches - 1).to_bytes(8, "big"))
    if not raw:
        return None
    batch = canonical_decode(raw)
    return {"root": batch["root"].hex(), "count": batch["count"]}


def _on_chain(service: ValidatorService, kind: str) -> ValidatorService:
    if service.app.kind != kind:
        raise NodeStateError("wrong_chain", f"this validator runs the {service.app.kind} chain")
    return service


def _next_nonce(service: ValidatorService, owner: bytes) -> int:
    # From the newest committed state, not the certified one a block behind it.
    return service.app.mempool.next_nonce(owner, service.app.inner.account(owner).nonce)


def _validator_record(service: ValidatorService, owner: bytes) -> dict[str, Any] | None:
    raw = service.app.query(b"val/" + owner).value
    if raw is None:
        return None
    record = canonical_decode(raw)
    return {"stake": record["stake"], "power": record["power"], "tombstoned": record["tomb"]}
