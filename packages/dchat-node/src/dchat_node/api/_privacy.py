"""HTTP routes for metadata privacy: onion mode per identity and per burner (protocol §39).

``PUT /v1/privacy/onion`` ``{"on": bool, "identity": burner id (optional)}``
turns onion mode on or off for the node's identity, or for one of its live
burners; ``GET /v1/privacy/onion`` shows the modes and the onion relays.
With onion mode on, each envelope the identity sends is deposited through
three relays (:class:`dchat_network.lowlevel.OnionPool`), so the recipient's
mailbox relay never sees the sender's address. ``not_found`` (404) for an
identity that is neither ours nor a live burner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from dchat_core import IdentityId

from .._errors import NodeStateError
from ._guardians import Strict
from ._roles import user_role

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.params import Depends

    from .._runtime import Node

__all__ = ("add_privacy_routes", "onion_status")


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
    """The ``onion`` part of ``/status`` (user nodes): each local identity's mode."""
    if node.config.role != "user" or user_role(node).user.engines.main() is None:
        return {}
    role = user_role(node)
    ids = [await _local(node, None)]
    ids += [IdentityId.parse(row["burner_id"]) for row in await role.burners.describe()]
    engines = role.user.engines
    modes = await role.user.run(lambda: {str(i): engines.onion_mode(i) for i in ids})
    relays = [str(relay) for relay in node.config.onion_relays]
    return {"onion": {"identities": modes, "relays": relays}}


def add_privacy_routes(app: FastAPI, node: Node, auth: list[Depends]) -> None:
    """Mount ``/v1/privacy``."""

    @app.get("/v1/privacy/onion", dependencies=auth)
    async def show() -> dict[str, Any]:
        return await onion_status(node) or {"onion": {"identities": {}, "relays": []}}

    @app.put("/v1/privacy/onion", dependencies=auth)
    async def set_mode(body: OnionMode) -> dict[str, Any]:
        identity = await _local(node, body.identity)
        if body.on and len(node.config.onion_relays) < 2:
            raise NodeStateError("no_onion_relays", "configure two or more onion_relays first")
        engines = user_role(node).user.engines
        await user_role(node).user.run(engines.set_onion_mode, identity, body.on)
        return await onion_status(node)
