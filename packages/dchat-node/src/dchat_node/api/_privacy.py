"""HTTP routes for metadata privacy settings: cover traffic, onion mode (token auth, strict bodies).

``GET /v1/privacy/cover`` answers the cover traffic's state (as ``/status``
shows it under ``cover``); ``PUT /v1/privacy/cover`` turns it on (at
``budget`` bytes/s, default :data:`~dchat_messaging.lowlevel.DEFAULT_COVER_BUDGET`
or the node's configured budget) or off. The choice is kept across restarts
and wins over the ``cover_traffic`` setting. A budget too small to carry one
envelope a minute is a 400 ``CoverInputError``.

``PUT /v1/privacy/onion`` ``{"on": bool, "identity": burner id (optional)}``
turns onion mode on or off for the node's identity, or for one of its live
burners; ``GET /v1/privacy/onion`` shows the modes, the onion relays, where routes
come from (``routes``: ``directory`` with relay discovery on and no
``onion_relays``, else ``manual``), the node's onion ``guards`` (directory
routes only: ``address``, ``since``, ``until`` when it rotates, ``down_since``
when it stopped answering; every route the node sends starts at one, see
:class:`dchat_chain.lowlevel.GuardedRoutes`) and why the last route could not be chosen
(``route_error``, e.g. ``NoDiverseRouteError: ...``; envelopes then wait, they
never go direct), and ``reply_blocks``: single-use reply blocks (protocol
§45) ``held`` from peers, ``given`` to peers and not used yet, ``peers``
that gave some, the configured ``supply`` and what became of the
``answers`` sent under blocks (``stored``, ``no_reply_block``, ...), as
``/status`` shows them under ``onion``. With onion mode on, each envelope
the identity sends is deposited through three relays
(:class:`dchat_network.lowlevel.OnionPool`, protocol §39), so the
recipient's mailbox relay never sees the sender's address. ``not_found``
(404) for an identity that is neither ours nor a live burner,
``no_onion_relays`` (409) to turn it on with fewer than two ``onion_relays``
and no directory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from dchat_core import IdentityId
from dchat_messaging.lowlevel import DEFAULT_COVER_BUDGET

from .._errors import NodeStateError
from ._guardians import Strict
from ._roles import user_role

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.params import Depends

    from .._runtime import Node

__all__ = ("add_privacy_routes", "onion_status")


class CoverSetting(Strict):
    on: bool
    budget: int | None = Field(default=None, ge=1, le=100_000)  # bytes/s (MAX_COVER_BUDGET)


class OnionMode(Strict):
    on: bool
    identity: str | None = Field(default=None, min_length=1, max_length=128)


async def _local(node: Node, text: str | None) -> IdentityId:
    """The node's identity (``None``), or the live burner ``text``."""
    role = user_role(node)
    main = role.user.engines.main()
    if main is None:
        raise NodeStateError("no_identity", "create an identity first")
    if text is None or text == str(main.keys.identity):
        return main.keys.identity
    burners = {row["burner_id"] for row in await role.burners.describe()}
    if text not in burners:
        raise NodeStateError("not_found", "no such identity or live burner here")
    return IdentityId.parse(text)


async def onion_status(node: Node) -> dict[str, Any]:
    """The ``onion`` part of ``/status`` (user nodes): each local identity's mode, the routes."""
    if node.config.role != "user":
        return {}
    role = user_role(node)
    pool = role.user.pool
    # Where routes come from, and why onions wait (e.g. NoDiverseRouteError): never a direct put.
    guards = role.user.guards
    routes = {
        "relays": [str(relay) for relay in node.config.onion_relays],
        "routes": "directory" if pool.from_directory else "manual",
        "route_error": pool.route_error,
        "guards": [] if guards is None else guards.rows(),
    }
    if role.user.engines.main() is None:
        return {"onion": {"identities": {}} | routes}
    ids = [await _local(node, None)]
    ids += [IdentityId.parse(row["burner_id"]) for row in await role.burners.describe()]
    engines = role.user.engines
    modes = await role.user.run(lambda: {str(i): engines.onion_mode(i) for i in ids})
    now = role.user.now()
    counts = await role.user.run(role.user.agent.replies.counts, now)
    answers = dict(role.user.pool.reply_results)
    blocks = {**counts, "supply": node.config.reply_blocks, "answers": answers}
    return {"onion": {"identities": modes, "reply_blocks": blocks} | routes}


def add_privacy_routes(app: FastAPI, node: Node, auth: list[Depends]) -> None:
    """Mount ``/v1/privacy/cover`` and ``/v1/privacy/onion``."""

    @app.get("/v1/privacy/cover", dependencies=auth)
    async def cover_state() -> dict[str, Any]:
        return user_role(node).user.agent.cover.status()

    @app.put("/v1/privacy/cover", dependencies=auth)
    async def set_cover(body: CoverSetting) -> dict[str, Any]:
        role = user_role(node)
        user, cover = role.user, role.user.agent.cover
        budget = 0
        if body.on:
            budget = body.budget or cover.budget or node.config.cover_traffic
            budget = budget or DEFAULT_COVER_BUDGET
        cover.set_budget(budget)  # in this thread: the sender reads it here
        await user.run(cover.save)
        user.mailboxes_changed()  # the cover tags' links start or stop
        role.cover.wake()
        return cover.status()

    @app.get("/v1/privacy/onion", dependencies=auth)
    async def show() -> dict[str, Any]:
        return await onion_status(node) or {"onion": {"identities": {}, "relays": []}}

    @app.put("/v1/privacy/onion", dependencies=auth)
    async def set_mode(body: OnionMode) -> dict[str, Any]:
        identity = await _local(node, body.identity)
        from_directory = user_role(node).user.pool.from_directory
        if body.on and not from_directory and len(node.config.onion_relays) < 2:
            raise NodeStateError(
                "no_onion_relays", "turn on relay_discovery or configure two or more onion_relays"
            )
        engines = user_role(node).user.engines
        await user_role(node).user.run(engines.set_onion_mode, identity, body.on)
        return await onion_status(node)
