"""Devices, pairing, sync, settings and profiles: the services and their API routes.

:func:`add_identity_routes` exposes the device, pairing, sync and profile
services of a user node (:class:`~._user_role.IdentityFeatures`)
under the node's token auth with strict bodies and the one error shape.
Pairing is asynchronous: ``POST`` starts a session and returns at once, the
client polls ``GET /v1/devices/pairing`` for the SAS and the outcome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from dchat_identity import (
    DocumentChainError,
    ForgedRecordError,
    PairingCodeError,
    RevokedDeviceError,
    Visibility,
)

from ..user._pairing import error_code
from ._roles import user_role

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from fastapi.params import Depends

    from .._runtime import Node
    from ..user._role import IdentityFeatures

__all__ = ("add_identity_routes", "identity_json")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartLink(_Strict):
    ttl: float = Field(default=120.0, ge=1.0, le=600.0)


class Join(_Strict):
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=64)
    timeout: float = Field(default=120.0, ge=1.0, le=600.0)


class Abort(_Strict):
    reason: Literal["cancelled", "sas_mismatch"] = "cancelled"


class Revoke(_Strict):
    device: str = Field(min_length=1, max_length=64)


class Setting(_Strict):
    value: str = Field(max_length=1000)


class MarkRead(_Strict):
    peer: str = Field(min_length=1, max_length=128)
    message_id: str = Field(min_length=1, max_length=64)


class SetProfile(_Strict):
    display_name: str | None = Field(default=None, max_length=64)
    bio: str | None = Field(default=None, max_length=500)
    status: str | None = Field(default=None, max_length=140)
    avatar: str | None = Field(default=None, max_length=256)
    visibility: Literal["public", "contacts", "nobody"]


class RequestProfile(_Strict):
    who: str = Field(min_length=1, max_length=4096)


async def identity_json(node: Node) -> dict[str, Any]:
    """``GET /v1/identity``: id, name, card, currency account, role, document version, devices."""
    features = user_role(node).features
    card = await features.devices.card()
    local = await features.devices.load()
    out: dict[str, Any] = {
        "identity_id": str(card.identity_id),
        "name": card.name,
        "card": card.to_text(),
        "account": card.identity_key.to_bytes().hex(),  # where payments to us go (protocol §25)
        "role": "primary" if user_role(node).user.has_identity else "linked",
        "this_device": None if local is None else local.device_key.public_key.to_bytes().hex(),
    }
    if user_role(node).user.has_identity and await user_role(node).documents.restoring():
        # Restored from the phrase; the document comes back from contacts (resync).
        out.update(document_seq=None, devices=[], restoring=True)
        return out
    chain = await features.devices.chain()
    out["document_seq"] = chain.head.seq
    out["devices"] = await features.devices.listing()
    out["restoring"] = False
    return out


def add_identity_routes(app: FastAPI, node: Node, auth: list[Depends]) -> None:
    """Register the device, pairing, sync, settings and profile routes."""
    _install_errors(app)

    def f() -> IdentityFeatures:
        return user_role(node).features

    @app.get("/v1/devices", dependencies=auth)
    async def list_devices() -> dict[str, Any]:
        chain = await f().devices.chain()
        return {"document_seq": chain.head.seq, "devices": await f().devices.listing()}

    @app.post("/v1/devices/link", dependencies=auth, status_code=201)
    async def start_link(body: StartLink) -> dict[str, Any]:
        return await f().pairing.start_host(body.ttl)

    @app.post("/v1/devices/join", dependencies=auth, status_code=201)
    async def join(body: Join) -> dict[str, Any]:
        return await f().pairing.start_join(body.code, body.name, body.timeout)

    @app.get("/v1/devices/pairing", dependencies=auth)
    async def pairing() -> dict[str, Any]:
        return await f().pairing.status()

    @app.post("/v1/devices/pairing/confirm", dependencies=auth)
    async def confirm() -> dict[str, Any]:
        return await f().pairing.confirm()

    @app.post("/v1/devices/pairing/abort", dependencies=auth)
    async def abort(body: Abort) -> dict[str, Any]:
        return await f().pairing.abort(body.reason)

    @app.post("/v1/devices/revoke", dependencies=auth)
    async def revoke(body: Revoke) -> dict[str, Any]:
        cert = await f().devices.revoke(body.device)
        chain = await f().devices.chain()
        return {"revoked": cert.device_key.to_bytes().hex(), "document_seq": chain.head.seq}

    @app.get("/v1/sync", dependencies=auth)
    async def sync_state() -> dict[str, Any]:
        return await f().sync.snapshot()

    @app.put("/v1/settings/{key}", dependencies=auth)
    async def put_setting(
        key: Annotated[str, PathParam(min_length=1, max_length=100, pattern=r"^[a-z0-9_.-]+$")],
        body: Setting,
    ) -> dict[str, Any]:
        synced = await f().sync.record([("set", f"settings/{key}", body.value)])
        return {"key": key, "value": body.value, "synced": synced}

    @app.post("/v1/read", dependencies=auth)
    async def mark_read(body: MarkRead) -> dict[str, Any]:
        synced = await f().sync.record([("set", f"read/{body.peer}", body.message_id)])
        return {"peer": body.peer, "message_id": body.message_id, "synced": synced}

    @app.get("/v1/profile", dependencies=auth)
    async def own_profile() -> dict[str, Any]:
        return await f().profile.own()

    @app.put("/v1/profile", dependencies=auth)
    async def set_profile(body: SetProfile) -> dict[str, Any]:
        changes = body.model_dump(exclude={"visibility"}, exclude_none=True)
        if not changes:
            return _problem(422, "invalid_request", "name at least one profile field")  # type: ignore[return-value]
        return await f().profile.set(changes, Visibility(body.visibility))

    @app.post("/v1/profiles/request", dependencies=auth, status_code=202)
    async def request_profile(body: RequestProfile) -> dict[str, Any]:
        return {"identity_id": await f().profile.request(body.who)}

    @app.get("/v1/profiles/{who}", dependencies=auth)
    async def peer_profile(
        who: Annotated[str, PathParam(min_length=1, max_length=128)],
    ) -> dict[str, Any]:
        return await f().profile.peer(who)


def _problem(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _install_errors(app: FastAPI) -> None:
    statuses = {
        PairingCodeError: 400,
        ForgedRecordError: 400,
        RevokedDeviceError: 403,
        DocumentChainError: 409,
    }
    for cls, status in statuses.items():

        async def handler(_: Request, exc: Exception, status: int = status) -> JSONResponse:
            message = str(exc) or "authentication failed"
            return _problem(status, error_code(exc), message)

        app.add_exception_handler(cls, handler)
