"""Relay routes of the node API (relay role), and a user's home relays.

* ``POST /v1/relay/receipts/batch``: seal the receipts given to this relay
  since the last seal into a Merkle batch (kept in the relay's database for
  validators' audits) and answer ``{"root": hex | null, "count": leaves,
  "receipts": n, "taken": receipts accepted since start}``; the operator's
  ``dchat-node relay claim`` then claims it on the chat chain (docs/protocol.md,
  section 5) and reports the claim with
* ``POST /v1/relay/receipts/claimed`` ``{"root": hex}``: the batch was claimed
  now (older batches are pruned once this claim is past the audit window);
  ``{"known": bool}``. A relay with ``chat_node`` set claims on its own
  (``[node.relay_claims]``) and needs neither.
* ``GET /v1/relay/status``: what an operator watches on one relay: its node
  id and link address, its load (links open, held pulls, envelopes stored and
  delivered since start, refusals by code) and its quota use (mailboxes
  holding mail, their entries and bytes against the disk budget, the
  per-mailbox quota), its put authorization (token hashes, contact rings and
  their keys held, deposits by how they were authorized), its receipts
  (taken since start, pending, sealed batches held and unclaimed, the last
  claim's time, automatic claims made and failed since start, or null
  without them) and its paid tokens (sold, redeemed, refused since start,
  spent this epoch, price, payee; null when it sells none). Chain-side figures (listing,
  bond, score, earnings by uptime and by delivery) are not the relay's to
  vouch for: ``dchat-node relay status`` reads them through light clients and
  shows them beside this document.

The receipt book is used where the relay server uses it, in the database
worker, so a seal never races a receipt being taken (and its store, the
database, may be used).

A user node that discovered its home relays from the directory
(``cli/_relays.py``) adds them to ``GET /status`` as ``home_relays``
(``NODEID@HOST:PORT``, in pinning order).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio
from pydantic import BaseModel, ConfigDict, Field

from dchat_chain.lowlevel import HomeRelays, PinnedRelaysError

from .._errors import NodeStateError
from ._relay_tokens import token_status
from ._roles import relay_role

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.params import Depends

    from dchat_network.lowlevel import ClaimPolicy, ReceiptBook

    from .._runtime import Node

__all__ = ("HOME_RELAYS_FILE", "add_relay_routes", "home_relays", "relay_status")

HOME_RELAYS_FILE = "home-relays.json"


def _seal(book: ReceiptBook, now: float) -> dict[str, Any]:
    batch = book.seal(now)
    if batch is None:
        return {"root": None, "count": 0, "receipts": 0, "taken": book.taken}
    return {
        "root": batch.root.hex(),
        "count": batch.count,
        "receipts": len(batch.receipts),
        "taken": book.taken,
    }


class ClaimedBatch(BaseModel):
    """``POST /v1/relay/receipts/claimed``: the root of the batch just claimed."""

    model_config = ConfigDict(extra="forbid")
    root: str = Field(pattern="^[0-9a-f]{64}$")


def _claimed(book: ReceiptBook, root: bytes, now: float) -> bool:
    known = root in book.batches
    book.claimed(root, now)
    return known


def _receipts(book: ReceiptBook | None, claims: ClaimPolicy | None) -> dict[str, Any] | None:
    if book is None:
        return None
    book.load()
    return {
        "taken": book.taken,
        "pending": book.pending,
        "batches": len(book.batches),
        "unclaimed": len(book.unclaimed()),
        "last_claim": book.last_claim(),
        "auto_claims": None if claims is None else claims.claims,
        "auto_claim_failures": None if claims is None else claims.failures,
    }


async def relay_status(node: Node) -> dict[str, Any]:
    """The ``/v1/relay/status`` document."""
    role = relay_role(node)
    host, db = role.service, role.store.db
    server, limits = host.server, host.limits
    mailboxes = await role.store.run(db.mailboxes.mailbox_count)
    entries, size = await role.store.run(db.mailboxes.usage)
    receipts = await role.store.run(_receipts, server.receipts, role.claims)
    budget = limits.disk_budget
    return {
        "node_id": None if node.node_id is None else str(node.node_id),
        "link": node.link_address,
        "uptime": round(node.clock.now() - node.started_at, 3),
        "load": {
            "links_open": host.links.open,
            "links_accepted": host.links.accepted,
            "parked_pulls": host.parked,
            "stored": server.stored,
            "stored_bytes": server.stored_bytes,
            "delivered": server.delivered,
            "refusals": dict(server.refusals),
        },
        "put_auth": {  # per-contact pseudonyms (token hashes) and contact rings (section 41)
            "token_hashes": server.authorizer.tokens_held,
            "rings": server.authorizer.rings.rings,
            "ring_keys": server.authorizer.rings.keys_held,
            "authorized": dict(server.authorizer.counts),
        },
        "quota": {
            "mailboxes": mailboxes,
            "entries": entries,
            "bytes": size,
            "disk_budget": budget,
            "disk_used": None if not budget else round(size / budget, 6),
            "mailbox_quota": limits.mailbox_quota,
        },
        "receipts": receipts,
        "tokens": token_status(server.tokens, node.clock.now()),
    }


async def home_relays(node: Node) -> dict[str, Any]:
    """``{"home_relays": [...]}`` for a user node that pinned some, else ``{}``."""
    path = trio.Path(node.config.data_dir / HOME_RELAYS_FILE)
    if node.config.role != "user" or not await path.exists():
        return {}
    try:
        return {"home_relays": list(HomeRelays.from_json(await path.read_text()).addresses)}
    except (OSError, PinnedRelaysError):
        return {"home_relays": None}


def add_relay_routes(app: FastAPI, node: Node, auth: list[Depends]) -> None:
    """Register the relay routes."""

    @app.post("/v1/relay/receipts/batch", dependencies=auth)
    async def seal_receipts() -> dict[str, Any]:
        role = relay_role(node)
        book = role.service.server.receipts
        if book is None:
            raise NodeStateError("not_ready", "the relay has not started")
        result: dict[str, Any] = await role.store.run(_seal, book, node.clock.now())
        return result

    @app.post("/v1/relay/receipts/claimed", dependencies=auth)
    async def claimed(body: ClaimedBatch) -> dict[str, Any]:
        role = relay_role(node)
        book = role.service.server.receipts
        if book is None:
            raise NodeStateError("not_ready", "the relay has not started")
        root = bytes.fromhex(body.root)
        known = await role.store.run(_claimed, book, root, node.clock.now())
        return {"known": known}

    @app.get("/v1/relay/status", dependencies=auth)
    async def status() -> dict[str, Any]:
        return await relay_status(node)
