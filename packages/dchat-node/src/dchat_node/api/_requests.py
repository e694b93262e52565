"""API routes for message requests, blocking and notices (user role).

``GET /v1/requests``, ``POST /v1/requests/{id}/accept {name}``,
``POST /v1/requests/{id}/ignore``, ``POST /v1/requests/{id}/block``,
``GET /v1/blocked``, ``POST /v1/blocked {identity_id}``,
``DELETE /v1/blocked/{id}``, ``GET /v1/notices``. Same token and error shape
as every route.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from ._roles import user_role

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.params import Depends

    from .._runtime import Node

__all__ = ("add_request_routes",)

Who = Annotated[str, PathParam(min_length=1, max_length=128)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Accept(_Strict):
    name: str = Field(min_length=1, max_length=64)


class Block(_Strict):
    identity_id: str = Field(min_length=1, max_length=128)


def add_request_routes(app: FastAPI, node: Node, auth: list[Depends]) -> None:
    """Add the routes above to ``app``."""

    @app.get("/v1/requests", dependencies=auth)
    async def list_requests() -> dict[str, Any]:
        return {"requests": await user_role(node).requests.listing()}

    @app.post("/v1/requests/{who}/accept", dependencies=auth)
    async def accept(who: Who, body: Accept) -> dict[str, Any]:
        return await user_role(node).requests.accept(who, body.name)

    @app.post("/v1/requests/{who}/ignore", dependencies=auth)
    async def ignore(who: Who) -> dict[str, Any]:
        return {"deleted": await user_role(node).requests.ignore(who)}

    @app.post("/v1/requests/{who}/block", dependencies=auth)
    async def block_requester(who: Who) -> dict[str, Any]:
        return {"deleted": await user_role(node).requests.block(who)}

    @app.get("/v1/blocked", dependencies=auth)
    async def blocked() -> dict[str, Any]:
        return {"blocked": user_role(node).requests.blocked()}

    @app.post("/v1/blocked", dependencies=auth, status_code=201)
    async def block(body: Block) -> dict[str, Any]:
        return {"deleted": await user_role(node).requests.block(body.identity_id)}

    @app.delete("/v1/blocked/{who}", dependencies=auth)
    async def unblock(who: Who) -> dict[str, Any]:
        await user_role(node).requests.unblock(who)
        return {"unblocked": who}

    @app.get("/v1/notices", dependencies=auth)
    async def notices() -> dict[str, Any]:
        user = user_role(node).user
        return {"notices": await user.run(user.agent.notice_rows)}
