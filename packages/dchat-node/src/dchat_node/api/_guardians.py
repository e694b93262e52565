"""HTTP routes for guardians and recovery (token auth, strict bodies, one error shape).

Recovery refusals a caller can act on get their own codes (HTTP 409):
``time_locked``, ``vetoed``, ``not_enough_approvals``, ``invalid_share``,
``expired``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from dchat_core import IdentityId
from dchat_identity import ExpiredError
from dchat_identity.lowlevel import (
    InvalidShareError,
    NotEnoughApprovalsError,
    TimeLockedError,
    VetoedError,
)

from .._errors import NodeStateError
from ._recovery_chain import RecoveryChainDesk
from ._roles import user_role

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fastapi import FastAPI
    from fastapi.params import Depends

    from .._runtime import Node

__all__ = ("add_guardian_routes",)

_CODES: tuple[tuple[type[Exception], str], ...] = (
    (TimeLockedError, "time_locked"),
    (VetoedError, "vetoed"),
    (NotEnoughApprovalsError, "not_enough_approvals"),
    (InvalidShareError, "invalid_share"),
    (ExpiredError, "expired"),
)


class Strict(BaseModel):
    """A request body that refuses unknown fields."""

    model_config = ConfigDict(extra="forbid")


RequestId = Annotated[str, PathParam(min_length=64, max_length=64, pattern="^[0-9a-f]{64}$")]


class SetupGuardians(Strict):
    names: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=2, max_length=16
    )
    threshold: int = Field(ge=2, le=16)


class StartRecovery(Strict):
    subject: str = Field(min_length=1, max_length=128)
    guardians: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=2, max_length=16
    )
    lock: float = Field(default=7 * 24 * 3600.0, ge=0, le=365 * 24 * 3600.0)
    name: str | None = Field(default=None, min_length=1, max_length=64)


@contextmanager
def _recovery_errors() -> Iterator[None]:
    try:
        yield
    except (TimeLockedError, VetoedError, NotEnoughApprovalsError, InvalidShareError,
            ExpiredError) as exc:  # fmt: skip
        code = next(code for kind, code in _CODES if isinstance(exc, kind))
        raise NodeStateError(code, str(exc)) from None


def add_guardian_routes(app: FastAPI, node: Node, auth: list[Depends]) -> RecoveryChainDesk:
    """Mount ``/v1/guardians`` and ``/v1/recovery``; the desk keeps the chat chain in step.

    With a chat chain configured, the answers carry each step's chain state
    under ``chain`` (:mod:`._recovery_chain`).
    """
    deps = auth
    desk = RecoveryChainDesk(node)

    @app.post("/v1/guardians", dependencies=deps, status_code=201)
    async def setup(body: SetupGuardians) -> dict[str, Any]:
        if len(set(body.names)) != len(body.names) or body.threshold > len(body.names):
            raise NodeStateError("invalid_guardians", "distinct names, threshold <= guardians")
        report = await user_role(node).guardians.setup(body.names, body.threshold)
        desk.wake()
        return await desk.guardians(report)

    @app.get("/v1/guardians", dependencies=deps)
    async def describe() -> dict[str, Any]:
        return await desk.guardians(await user_role(node).guardians.describe())

    @app.get("/v1/guardians/held", dependencies=deps)
    async def held() -> dict[str, Any]:
        return {"held": await user_role(node).guardians.held()}

    @app.get("/v1/guardians/requests", dependencies=deps)
    async def requests() -> dict[str, Any]:
        return {"requests": await desk.requests(await user_role(node).guardians.requests())}

    @app.post("/v1/guardians/requests/{request_id}/approve", dependencies=deps)
    async def approve(request_id: RequestId) -> dict[str, Any]:
        with _recovery_errors():
            report = await user_role(node).guardians.approve(request_id)
        desk.wake()
        return report

    @app.post("/v1/guardians/alerts/{request_id}/veto", dependencies=deps)
    async def veto(request_id: RequestId) -> dict[str, Any]:
        with _recovery_errors():
            report = await user_role(node).guardians.veto(request_id)
        desk.wake()
        return report

    @app.post("/v1/recovery", dependencies=deps, status_code=202)
    async def start(body: StartRecovery) -> dict[str, Any]:
        subject = IdentityId.parse(body.subject)
        return await user_role(node).guardians.recovery.start(
            subject, body.guardians, lock=body.lock, name=body.name
        )

    @app.get("/v1/recovery", dependencies=deps)
    async def status() -> dict[str, Any]:
        return await desk.recovery(await user_role(node).guardians.recovery.status())

    @app.post("/v1/recovery/finish", dependencies=deps)
    async def finish() -> dict[str, Any]:
        with _recovery_errors():
            status = await user_role(node).guardians.recovery.finish()
        desk.wake()
        return await desk.recovery(status)

    return desk
