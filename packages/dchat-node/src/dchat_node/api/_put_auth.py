"""Put authorization of a user node's mailbox (section 41), in the node API.

* ``GET /v1/put-auth``: what this node hands its contacts for its mailbox and
  what it registers at its relays: ``{"mode": "token" | "proof",
  "tokens_issued": n, "secrets_issued": n, "ring_size": keys registered (0:
  none), "ring_version": n}``. ``mode`` is the ``put_auth`` setting: with
  ``"token"`` each contact gets a put token (the relay learns a per-contact
  pseudonym when it is used), with ``"proof"`` a contact secret (the relay
  learns only "one of this mailbox's contacts"; proofs cost milliseconds
  where tokens cost microseconds, see docs/benchmarks.md).
* ``GET /status`` carries ``put_auth`` (the mode) on a user node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._roles import user_role

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.params import Depends

    from .._runtime import Node

__all__ = ("add_put_auth_routes", "put_auth_status")


def put_auth_status(node: Node) -> dict[str, Any]:
    """``{"put_auth": mode}`` for a user node, else ``{}`` (a part of ``GET /status``)."""
    return {"put_auth": node.config.put_auth} if node.config.role == "user" else {}


def add_put_auth_routes(app: FastAPI, node: Node, auth: list[Depends]) -> None:
    """Register ``GET /v1/put-auth``."""

    @app.get("/v1/put-auth", dependencies=auth)
    async def put_auth() -> dict[str, Any]:
        agent = user_role(node).user.agent
        version, ring = agent.proofs.registration
        return {
            "mode": agent.put_auth,
            "tokens_issued": len(agent.tokens.registration[1]),
            "secrets_issued": agent.proofs.issued,
            "ring_size": len(ring) // 32,
            "ring_version": version,
        }
