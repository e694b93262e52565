"""Public handles on a user node: look one up (verified), add a contact by it, own one.

Routes (user role, bearer token like the rest of the API):

* ``GET  /v1/handles/{name}``: the live handle ``name`` (``@alice`` or ``alice``)
  as the chat chain certifies it, checked by the light client; 404 ``not_found``
  if it is not registered (absent, expired, or a look-alike's slot)
* ``GET  /v1/handle``: this identity's own handle (null if it holds none)
* ``POST /v1/handle``: ``{"action": "register", "name": ...}``, ``{"action": "renew"}``
  or ``{"action": "release"}``: sign the transactions with the identity key,
  submit them and wait until the chain committed and certified them
* ``POST /v1/contacts`` with ``handle`` instead of ``card`` is answered here too
  (:meth:`HandleDesk.add_contact`)

The chain work is dchat-chain's: :class:`~dchat_chain.lowlevel.HandleLookup`
verifies each answer by commit certificates and Merkle proofs, and
:class:`~dchat_chain.lowlevel.HandleOwner` builds the transactions. This module
is their I/O: it reaches a chat-chain validator through the ``api.json`` in the
configured ``chat_node`` directory (:class:`~._chain_link.ChainLink`) and keeps
the own handle's name in the node's sealed settings. A stale answer (the node
a block behind) is asked again for a few seconds; a lying node's answer is
refused with the light client's typed error.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import trio
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from dchat_chain.lowlevel import HandleLookup, HandleOwner, normalize_handle
from dchat_identity import ContactCard

from .._errors import NodeStateError
from ._chain_link import ChainLink
from ._roles import user_role

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.params import Depends

    from dchat_chain.lowlevel import HandleRecord, LightRead

    from .._runtime import Node

__all__ = ("HandleDesk", "add_handle_routes")

OWN_HANDLE: Final = "handle.own"  # settings key: the own handle's name


class HandleAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["register", "renew", "release"]
    name: str | None = Field(default=None, min_length=1, max_length=33)


def record_json(record: HandleRecord) -> dict[str, Any]:
    """A verified handle as the API shows it."""
    return {
        "handle": record.name,
        "identity": record.identity.hex(),
        "relays": list(record.relays),
        "mailbox": record.mailbox.hex(),
        "expires": record.expires,
        "height": record.height,
        "card": ContactCard.from_bytes(record.card).to_text() if record.card_current else None,
        "card_current": record.card_current,
    }


class HandleDesk:
    """The user node's way to the chat chain for handles (see the module docstring)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        config = node.config
        self._chain = ChainLink(
            node, "chat", lambda: (config.chat_node, config.chat_genesis), "handle_refused"
        )

    # -- lookups --------------------------------------------------------------------------------

    async def lookup(self, text: str) -> HandleRecord | None:
        """The live handle ``text``, verified; None if it is not registered."""
        normalize_handle(text)  # a name outside the rule is refused before any I/O
        found: HandleLookup = await self._chain.verified(lambda r: HandleLookup(r, text))
        return found.result()

    async def show(self, text: str) -> dict[str, Any]:
        """``GET /v1/handles/{name}``."""
        record = await self.lookup(text)
        if record is None:
            raise NodeStateError("not_found", f"no live handle @{found_name(text)}")
        return record_json(record)

    async def add_contact(self, text: str, name: str | None) -> tuple[str, str]:
        """Add the owner of handle ``text`` as a contact (its card, verified on chain)."""
        record = await self.lookup(text)
        if record is None:
            raise NodeStateError("not_found", f"no live handle @{found_name(text)}")
        if not record.card_current:
            raise NodeStateError(
                "stale_handle", "the handle's card predates its owner's key rotation"
            )
        card = ContactCard.from_bytes(record.card).to_text()
        entry = await user_role(self._node).user.add_contact(name or record.name, card)
        return entry.name, entry.identity_id

    # -- the owner --------------------------------------------------------------------------------

    async def own(self) -> dict[str, Any]:
        """``GET /v1/handle``: the own handle, verified (null if none)."""
        name = await user_role(self._node).user.state_get(OWN_HANDLE)
        record = None if name is None else await self.lookup(name.decode())
        mine = record is not None and record.key == self._owner().public_key
        return {"handle": record_json(record) if mine and record is not None else None}

    def _owner(self) -> HandleOwner:
        return HandleOwner(user_role(self._node).user.identity.signing_key, self._chain.genesis())

    async def act(self, body: HandleAction) -> dict[str, Any]:
        """``POST /v1/handle``."""
        user = user_role(self._node).user
        stored = await user.state_get(OWN_HANDLE)
        name = body.name or (None if stored is None else stored.decode())
        if name is None:
            raise NodeStateError("invalid_request", "name the handle")
        normalize_handle(name)
        owner = self._owner()
        account = await self._chain.call("GET", f"/v1/chain/accounts/{owner.public_key.hex()}")
        nonce = int(account.get("next_nonce", 0))
        card = user.card.to_bytes()
        relays = relays_of(user.card)
        if body.action == "register":
            path, key = owner.key_path  # which identity the key speaks for (after a rotation)
            read: LightRead = await self._chain.verified(lambda r: r.read(path, key))
            identity = owner.chain_identity(read.result()[1])
            document = (await user_role(self._node).documents.head()).to_bytes()
            plan = functools.partial(
                owner.register, registered=identity is not None, document=document
            )
            txs = await trio.to_thread.run_sync(
                lambda: plan(nonce, name, relays, card, identity=identity)
            )
        elif body.action == "renew":
            record = await self.lookup(name)
            if record is None:
                raise NodeStateError("not_found", f"no live handle @{found_name(name)}")
            if record.key != owner.public_key:
                raise NodeStateError("handle_refused", "the handle is not this identity's")
            txs = [
                await trio.to_thread.run_sync(
                    lambda: owner.renew(
                        nonce, name, record.expires, relays, card, identity=record.identity
                    )
                )
            ]
        else:
            txs = [owner.release(nonce, name)]
        for tx in txs:  # one by one: the handle needs the identity registered first
            await self._chain.submit(tx)
        if body.action == "release":
            await user.state_delete(OWN_HANDLE)
            return {"handle": None}
        await user.state_put(OWN_HANDLE, txs[-1].body["name"].encode())
        return await self.own()


def found_name(text: str) -> str:
    """``text`` without its ``@`` (for messages)."""
    return text.removeprefix("@")


def relays_of(card: ContactCard) -> list[str]:
    """Every home relay of ``card``, in the relay list format (``[NODEID@]HOST:PORT``)."""
    return list(card.relays)


def add_handle_routes(app: FastAPI, node: Node, auth: list[Depends]) -> HandleDesk:
    """Install the handle routes on ``app``; returns the desk (``POST /v1/contacts`` uses it)."""
    desk = HandleDesk(node)

    @app.get("/v1/handles/{name}", dependencies=auth)
    async def show_handle(
        name: Annotated[str, PathParam(min_length=1, max_length=33)],
    ) -> dict[str, Any]:
        return await desk.show(name)

    @app.get("/v1/handle", dependencies=auth)
    async def own_handle() -> dict[str, Any]:
        return await desk.own()

    @app.post("/v1/handle", dependencies=auth)
    async def act_on_handle(body: HandleAction) -> dict[str, Any]:
        return await desk.act(body)

    return desk
