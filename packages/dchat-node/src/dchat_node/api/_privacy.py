"""HTTP routes for metadata privacy settings: cover traffic (token auth, strict bodies).

``GET /v1/privacy/cover`` answers the cover traffic's state (as ``/status``
shows it under ``cover``); ``PUT /v1/privacy/cover`` turns it on (at
``budget`` bytes/s, default :data:`~dchat_messaging.lowlevel.DEFAULT_COVER_BUDGET`
or the node's configured budget) or off. The choice is kept across restarts
and wins over the ``cover_traffic`` setting. A budget too small to carry one
envelope a minute is a 400 ``CoverInputError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from dchat_messaging.lowlevel import DEFAULT_COVER_BUDGET

from ._guardians import Strict
from ._roles import user_role

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.params import Depends

    from .._runtime import Node

__all__ = ("add_privacy_routes",)


class CoverSetting(Strict):
    on: bool
    budget: int | None = Field(default=None, ge=1, le=100_000)  # bytes/s (MAX_COVER_BUDGET)


def add_privacy_routes(app: FastAPI, node: Node, auth: list[Depends]) -> None:
    """Mount ``/v1/privacy/cover``."""

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
