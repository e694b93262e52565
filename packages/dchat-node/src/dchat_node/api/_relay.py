"""Relay routes of the node API (relay role): the delivery receipts it holds.

* ``POST /v1/relay/receipts/batch``: seal the receipts given to this relay
  since the last call into a Merkle batch (kept in memory for validators'
  audits) and answer ``{"root": hex | null, "count": leaves, "receipts": n,
  "taken": receipts accepted since start}``; the operator's ``dchat-node relay
  claim`` then claims it on the chat chain (docs/protocol.md, section 5).

The book is used where the relay server uses it, in the database worker, so a
seal never races a receipt being taken.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._errors import NodeStateError
from ._roles import relay_role

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.params import Depends

    from dchat_network.lowlevel import ReceiptBook

    from .._runtime import Node

__all__ = ("add_relay_routes",)


def _seal(book: ReceiptBook) -> dict[str, Any]:
    batch = book.seal()
    if batch is None:
        return {"root": None, "count": 0, "receipts": 0, "taken": book.taken}
    return {
        "root": batch.root.hex(),
        "count": batch.count,
        "receipts": len(batch.receipts),
        "taken": book.taken,
    }


def add_relay_routes(app: FastAPI, node: Node, auth: list[Depends]) -> None:
    """Register the relay routes."""

    @app.post("/v1/relay/receipts/batch", dependencies=auth)
    async def seal_receipts() -> dict[str, Any]:
        role = relay_role(node)
        book = role.service.server.receipts
        if book is None:
            raise NodeStateError("not_ready", "the relay has not started")
        result: dict[str, Any] = await role.store.run(_seal, book)
        return result
