"""HTTP routes for burners (token auth, strict bodies, one error shape).

``rate_limited`` (429) when this device made too many burners lately,
``burner_expired`` (410) when a burner's lifetime is over, ``unswept_funds``
(409) when a burner to destroy still holds stealth payments (its keys alone
can move them: sweep first, or ``?force=true`` to give them up; §43). The
same holds for an expired burner whose seed the node still holds for its
stealth funds (``held_burners`` in ``GET /v1/stealth/status``, §47): deleting
it drops the seed (event ``burner_released``, reason ``discarded``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Path as PathParam
from fastapi import Query
from pydantic import Field

from ._guardians import Strict
from ._roles import user_role

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.params import Depends

    from .._runtime import Node

__all__ = ("add_burner_routes",)

BurnerId = Annotated[str, PathParam(min_length=1, max_length=128)]


class CreateBurner(Strict):
    ttl: float = Field(default=86400.0, gt=0, le=365 * 86400.0)
    name: str | None = Field(default=None, min_length=1, max_length=64)


class BurnerContact(Strict):
    name: str = Field(min_length=1, max_length=64)
    card: str = Field(min_length=1, max_length=4096)


class BurnerMessage(Strict):
    to: str = Field(min_length=1, max_length=128)
    text: str = Field(min_length=1, max_length=16000)


def add_burner_routes(app: FastAPI, node: Node, auth: list[Depends]) -> None:
    """Mount ``/v1/burners``."""

    @app.post("/v1/burners", dependencies=auth, status_code=201)
    async def create(body: CreateBurner) -> dict[str, Any]:
        return await user_role(node).burners.create(ttl=body.ttl, name=body.name)

    @app.get("/v1/burners", dependencies=auth)
    async def describe() -> dict[str, Any]:
        return {"burners": await user_role(node).burners.describe()}

    @app.delete("/v1/burners/{burner_id}", dependencies=auth)
    async def discard(burner_id: BurnerId, force: bool = Query(default=False)) -> dict[str, Any]:
        if not force:  # the desk is installed after these routes, read at call time
            await app.state.stealth.refuse_unswept(burner_id)
        if not await app.state.stealth.release(burner_id, "discarded"):  # an expired one's seed
            await user_role(node).burners.discard(burner_id)
        return {"discarded": burner_id}

    @app.post("/v1/burners/{burner_id}/contacts", dependencies=auth, status_code=201)
    async def add_contact(burner_id: BurnerId, body: BurnerContact) -> dict[str, Any]:
        record = await user_role(node).burners.add_contact(burner_id, body.name, body.card)
        return {"name": record.name, "identity_id": record.identity_id}

    @app.post("/v1/burners/{burner_id}/messages", dependencies=auth, status_code=202)
    async def send(burner_id: BurnerId, body: BurnerMessage) -> dict[str, Any]:
        mid = await user_role(node).burners.send(burner_id, body.to, body.text)
        return {"message_id": str(mid)}
