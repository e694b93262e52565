"""The node's local HTTP API (FastAPI), served on loopback behind a bearer token.

Every error answer has one shape: ``{"error": {"code": str, "message": str}}``.
``/health`` is open (it says nothing but "alive"); everything else needs the
token from the node's ``api.json``, checked by :class:`~._guard.RequireToken`
before a body is read (bodies are capped by :class:`~._guard.LimitBody`).
``/metrics`` (Prometheus text, :mod:`._metrics`) needs the token too, and so
does ``/openapi.json``; it declares the token as an HTTP bearer security
scheme and lists only the routes of the node's role (the others stay routed
and answer ``wrong_role``).
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Request, Security
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from dchat_core import DchatError, IdentityId
from dchat_identity import (
    IdentityDocument,
    generate_phrase,
)
from dchat_messaging import RequestError
from dchat_storage import CursorExpiredError, DuplicateError

from .._errors import NodeStateError
from ._answers import ERROR_SCHEMA, ROUTING_CODES, error_of
from ._attachments import add_attachment_routes
from ._bots import add_bot_routes
from ._burners import add_burner_routes
from ._channels import add_channel_routes
from ._conversations import add_conversation_routes
from ._events import EventFeed, NotifyAfterWrites, add_event_routes
from ._group_anchor import GroupAnchorDesk
from ._groups import add_group_routes
from ._guard import LimitBody, RequireToken
from ._guardians import add_guardian_routes
from ._handles import add_handle_routes
from ._identity import add_identity_routes, identity_json
from ._messages import add_message_routes
from ._metrics import add_metrics_route
from ._payments import add_payment_routes
from ._privacy import add_privacy_routes, onion_status
from ._put_auth import add_put_auth_routes, put_auth_status
from ._relay import add_relay_routes, home_relays
from ._relay_tokens import RelayTokenSales
from ._requests import add_request_routes
from ._roles import user_role
from ._search import add_search_routes
from ._socket import add_socket_route
from ._stealth import add_stealth_routes
from ._tokens import add_token_routes
from ._validator import add_chain_routes
from ._webapp import AppSessions, add_webapp_routes

if TYPE_CHECKING:
    from .._runtime import Node

__all__ = ("create_app",)

_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="The bearer token from the node's api.json (a new one at every start).",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateIdentity(_Strict):
    name: str = Field(min_length=1, max_length=64)
    # True: derive the keys from a new BIP-39 phrase, returned once in the answer.
    recovery_phrase: bool = False
    # Restore the identity of this phrase (then ask contacts: /v1/identity/resync).
    restore_phrase: str | None = Field(default=None, min_length=1, max_length=1024)


class Resync(_Strict):
    contacts: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=64
    )


class AddContact(_Strict):
    # A card, or a public handle looked up on the chat chain (api/_handles.py);
    # with a handle the name defaults to the handle.
    name: str | None = Field(default=None, min_length=1, max_length=64)
    card: str | None = Field(default=None, min_length=1, max_length=4096)
    handle: str | None = Field(default=None, min_length=1, max_length=33)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def create_app(node: Node, token: str) -> FastAPI:
    """Build the API for ``node``, guarded by ``token``."""
    app = FastAPI(title="dchat node", version="0.1.0", docs_url=None, redoc_url=None)

    # RequireToken checks the token; this only declares it (OpenAPI's security scheme).
    auth = [Security(_BEARER)]
    _install_error_handlers(app)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "role": node.config.role}

    @app.get("/status", dependencies=auth)
    async def status() -> dict[str, Any]:
        tokens: dict[str, Any] = await app.state.tokens.status()  # paid tokens (user role)
        stealth: dict[str, Any] = await app.state.stealth.status_part()
        return (
            await node.status()
            | await home_relays(node)
            | put_auth_status(node)
            | await onion_status(node)
            | tokens
            | stealth
        )

    add_metrics_route(app, node, auth)

    @app.post("/v1/identity", dependencies=auth, status_code=201)
    async def create_identity(body: CreateIdentity) -> dict[str, Any]:
        if body.recovery_phrase and body.restore_phrase is not None:
            raise NodeStateError("invalid_request", "ask for a new phrase or restore one, not both")
        phrase = generate_phrase() if body.recovery_phrase else body.restore_phrase
        identity = await user_role(node).user.create_identity(body.name, phrase=phrase)
        if body.restore_phrase is not None:
            await user_role(node).documents.mark_restoring()
        answer: dict[str, Any] = {
            "identity_id": str(identity.identity_id),
            "card": user_role(node).user.card.to_text(),
        }
        if body.recovery_phrase:
            answer["recovery_phrase"] = phrase
        return answer

    @app.get("/v1/identity", dependencies=auth)
    async def get_identity() -> dict[str, Any]:
        return await identity_json(node)

    @app.get("/v1/identity/document", dependencies=auth)
    async def own_document() -> dict[str, Any]:
        return document_json(await user_role(node).documents.head())

    @app.post("/v1/identity/resync", dependencies=auth, status_code=202)
    async def resync(body: Resync) -> dict[str, Any]:
        return {"asked": await user_role(node).documents.resync(body.contacts)}

    @app.get("/v1/documents/{identity_id}", dependencies=auth)
    async def peer_document(
        identity_id: Annotated[str, PathParam(min_length=1, max_length=128)],
    ) -> dict[str, Any]:
        chain = await user_role(node).documents.peer_chain(IdentityId.parse(identity_id))
        if chain is None:
            raise NodeStateError("not_found", "no document received for that identity")
        return document_json(chain.head)

    handles = add_handle_routes(app, node, auth)

    @app.post("/v1/contacts", dependencies=auth, status_code=201)
    async def add_contact(body: AddContact) -> dict[str, Any]:
        if (body.card is None) == (body.handle is None):
            raise NodeStateError("invalid_request", "give a card or a handle (one of them)")
        if body.handle is not None:
            name, identity_id = await handles.add_contact(body.handle, body.name)
            return {"name": name, "identity_id": identity_id}
        if body.name is None or body.card is None:
            raise NodeStateError("invalid_request", "a contact added by card needs a name")
        record = await user_role(node).user.add_contact(body.name, body.card)
        return {"name": record.name, "identity_id": record.identity_id}

    @app.get("/v1/contacts", dependencies=auth)
    async def list_contacts() -> dict[str, Any]:
        user = user_role(node).user
        contacts = await user.run(user.book.entries)
        return {"contacts": [{"name": c.name, "identity_id": c.identity_id} for c in contacts]}

    add_chain_routes(app, node, auth)
    add_relay_routes(app, node, auth)
    add_put_auth_routes(app, node, auth)
    add_identity_routes(app, node, auth)
    app.state.recovery_chain = add_guardian_routes(app, node, auth)  # serve_api runs its task
    add_burner_routes(app, node, auth)
    add_request_routes(app, node, auth)
    add_message_routes(app, node, auth)
    add_conversation_routes(app, node, auth)
    add_group_routes(app, node, auth)
    app.state.anchors = GroupAnchorDesk(node)  # its task: serve_api runs it
    add_channel_routes(app, node, auth)
    add_search_routes(app, node, auth)
    add_privacy_routes(app, node, auth)
    add_attachment_routes(app, node, auth)
    app.state.payments = add_payment_routes(app, node, auth)  # its task: serve_api runs it
    app.state.stealth = add_stealth_routes(app, node, auth)  # its task: the background scan
    app.state.tokens = add_token_routes(app, node, auth)  # and this one's (user role)
    app.state.token_sales = RelayTokenSales(node)  # and this one's (relay role)
    feed = EventFeed(node)
    add_event_routes(app, feed, auth)
    add_bot_routes(app, node, feed, auth)
    add_socket_route(app, node, feed)
    app.add_middleware(NotifyAfterWrites, feed=feed)
    large = ("/v1/attachments",)  # limited per kind by the upload rules as it streams
    app.add_middleware(  # the Bot API limits its own bodies: to Telegram's sizes (_bots.py)
        LimitBody, max_body=node.config.api_max_body, large=large, large_prefix=("/bot",)
    )
    sessions = AppSessions()
    add_webapp_routes(app, sessions, auth)
    app.add_middleware(  # outermost
        RequireToken,
        token=token,
        open_paths=("/health",),
        open_prefix=("/app/", "/bot", "/file/bot"),  # the Bot API checks its own tokens
        sessions=sessions,
    )
    _list_only_role_routes(app, node.config.role)
    _declare_errors(app)
    return app


def _route_role(path: str) -> str | None:
    """The role whose routes ``path`` is (None: every role's)."""
    if path.startswith("/v1/chain/"):
        return "validator"
    if path.startswith("/v1/relay/"):
        return "relay"
    return "user" if path.startswith("/v1/") else None


def _list_only_role_routes(app: FastAPI, role: str) -> None:
    for route in app.routes:
        if isinstance(route, APIRoute) and _route_role(route.path) not in (None, role):
            route.include_in_schema = False


def _declare_errors(app: FastAPI) -> None:
    """Declare the error shape on every guarded operation of ``app``'s OpenAPI document.

    Any 4xx (``4XX``) and the 422 FastAPI lists for validation failures answer
    ``{"error": {"code", "message"}}``, so schema checkers (schemathesis'
    ``response_schema_conformance``) hold every error body to that shape;
    FastAPI's own ``HTTPValidationError`` (``{"detail": [...]}``), which this
    API never answers, is dropped.
    """
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = plain()
        error = {
            "description": "A typed error",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for path, operations in schema["paths"].items():
            for operation in operations.values():
                if path != "/health":
                    responses = operation.setdefault("responses", {})
                    responses["4XX"] = error
                    if "422" in responses:
                        responses["422"] = {**error, "description": "invalid_request"}
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        components["Error"] = ERROR_SCHEMA
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def document_json(doc: IdentityDocument) -> dict[str, Any]:
    """A document's summary and its signed bytes (base64url, unpadded)."""
    return {
        "subject": str(doc.subject),
        "seq": doc.seq,
        "identity_key": doc.identity_key.to_bytes().hex(),
        "issued_ms": doc.issued_ms,
        "devices": [cert.device_key.to_bytes().hex() for cert in doc.devices],
        "revoked": len(doc.revoked),
        "guardians": doc.guardians.hex(),
        "profile": doc.profile.hex(),
        "recovered": doc.recovery is not None,
        "document": base64.urlsafe_b64encode(doc.to_bytes()).rstrip(b"=").decode(),
    }


def _install_error_handlers(app: FastAPI) -> None:
    async def routing_error(_: Request, exc: Exception) -> JSONResponse:
        # FastAPI's and the router's own answers (an unparsable body, no such
        # route, not this method: HTTPExceptions of those statuses) in the one
        # shape, keeping their headers (Allow).
        status = int(getattr(exc, "status_code", 404))
        answer = _error(status, ROUTING_CODES[status], str(getattr(exc, "detail", "")))
        answer.headers.update(getattr(exc, "headers", None) or {})
        return answer

    for status in ROUTING_CODES:
        app.add_exception_handler(status, routing_error)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(NodeStateError)
    @app.exception_handler(RequestError)
    @app.exception_handler(CursorExpiredError)
    @app.exception_handler(DuplicateError)
    @app.exception_handler(DchatError)
    async def dchat_error(_: Request, exc: Exception) -> JSONResponse:
        status, code, message = error_of(exc) or (503, "unavailable", "internal error")
        return _error(status, code, message)
