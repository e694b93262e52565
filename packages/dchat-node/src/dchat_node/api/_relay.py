"""The relay operator's route of the node API (relay role), and a user's home relays.

``GET /v1/relay/status``: what an operator watches on one relay: its node id
and link address, its load (links open, held pulls, envelopes stored and
delivered since start, refusals by code) and its quota use (mailboxes holding
mail, their entries and bytes against the disk budget, the per-mailbox
quota). Chain-side figures (listing, bond, score, earnings) are not the
relay's to vouch for: ``dchat-node relay status`` reads them through light
clients and shows them beside this document.

A user node that discovered its home relays from the directory
(``cli/_relays.py``) adds them to ``GET /status`` as ``home_relays``
(``NODEID@HOST:PORT``, in pinning order).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from dchat_chain.lowlevel import HomeRelays, PinnedRelaysError

from .._errors import NodeStateError
from ..relay._role import RelayRole

if TYPE_CHECKING:
    from collections.abc import Sequence

    from fastapi import FastAPI
    from fastapi.params import Depends

    from .._runtime import Node

__all__ = ("HOME_RELAYS_FILE", "add_relay_routes", "home_relays", "relay_status")

HOME_RELAYS_FILE = "home-relays.json"


def _relay_role(node: Node) -> RelayRole:
    if not isinstance(node.role, RelayRole):
        raise NodeStateError("wrong_role", "this node does not have the relay role")
    return node.role


async def relay_status(node: Node) -> dict[str, Any]:
    """The ``/v1/relay/status`` document."""
    role = _relay_role(node)
    host, db = role.service, role.store.db
    server, limits = host.server, host.limits
    mailboxes = await role.store.run(db.mailboxes.mailbox_count)
    entries, size = await role.store.run(db.mailboxes.usage)
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
        "quota": {
            "mailboxes": mailboxes,
            "entries": entries,
            "bytes": size,
            "disk_budget": budget,
            "disk_used": None if not budget else round(size / budget, 6),
            "mailbox_quota": limits.mailbox_quota,
        },
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


def add_relay_routes(app: FastAPI, node: Node, auth: Sequence[Depends]) -> None:
    """Install ``GET /v1/relay/status`` on ``app``."""

    @app.get("/v1/relay/status", dependencies=list(auth))
    async def status() -> dict[str, Any]:
        return await relay_status(node)
