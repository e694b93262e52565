"""API routes for private groups (user role).

* ``GET /v1/groups``: every group (id, title, status, version, member count).
* ``POST /v1/groups {title, anchored}``: create one (we are its admin); 201
  with its id. ``anchored``: its message order is committed to the chat chain
  in a channel we own (``chat_node``; api/_group_anchor.py does the chain work).
* ``GET /v1/groups/{group}``: its state, our status and its members (``group``
  is the id, a unique prefix of 8+ hex digits, or the exact title), and
  ``anchor``: enabled, owner, channel, sequencer, next, anchored, pending,
  unverified, ``missing`` messages and ``equivocations`` (evidence, hex).
* ``POST /v1/groups/{group}/anchor {on}``: anchor its order (admins) or stop.
* ``GET /v1/groups/{group}/messages?limit=``: the newest messages, oldest first;
  each with its ``hash`` and, in an anchored group, ``anchored`` (its number
  in the chain's order, null until anchored).
* ``POST /v1/groups/{group}/messages {text}``: post (encrypted once under our
  sender key, sent to every member device).
* ``POST /v1/groups/{group}/members {contact, admin}``: invite a contact.
* ``POST /v1/groups/{group}/invitations {contacts, admin}``: invite several
  (added in as few signed updates as fit, ``adds``).
* ``DELETE /v1/groups/{group}/members/{member}``: remove a member (a contact
  name or identity id); every remaining member rotates its sender key.
* ``POST /v1/groups/{group}/bots {bot, read, post, admin}``: add a bot (a
  contact; admins only) with a grant: ``read`` ``commands`` (only commands to
  it reach it, pairwise; it holds no sender key) or ``all``, ``post``,
  ``admin`` (add members, remove members who are not admins). ``PUT
  /v1/groups/{group}/bots/{bot} {read, post, admin}``: change its grant.
  Members enforce the grant (docs/protocol.md section 44); ``GET`` of the
  group shows each bot's grant (``role`` ``bot``, ``bot`` its grant).
* ``POST /v1/groups/{group}/join``: accept an invitation; ``/leave``: leave.
* ``PATCH /v1/groups/{group} {title}``: rename.
* ``POST /v1/groups/{group}/links {uses, expires_in}``: an invite link (who may
  add: admins, or anyone if the settings say so); 201 with ``link`` (the
  ``dchat-group:...`` text), ``id``, ``expires_at``, ``uses`` (0: any number).
  ``GET /v1/groups/{group}/links``: the group's links (ids, never secrets);
  ``DELETE /v1/groups/{group}/links/{link}``: revoke one (its id).
* ``POST /v1/groups/join-link {link}``: ask a link's inviter to add us (a
  ``group.join`` control; the group then arrives as a ``group_update`` event,
  ``op`` ``joined``; a refusal as ``group_join_refused`` with ``why``
  ``link_expired``, ``link_used``, ``link_revoked`` or ``not_allowed``). Bad
  links are 400 ``bad_link``, expired ones 410 ``link_expired``.

Every step runs in the messaging agent (``UserMessaging.groups``, sans-IO);
received group messages and updates reach the event stream as
``group_message`` and ``group_update``; anchored groups add ``group_anchored``,
``group_gap`` and ``group_equivocation``; links add ``group_link`` (``op``
``joined``, ``refused``, ``requested``, ``revoke``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Path as PathParam
from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from dchat_messaging.lowlevel import MAX_LINK_TTL, MAX_MEMBERS, BotGrant

from ._roles import user_role

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.params import Depends

    from .._runtime import Node
    from ..user._service import UserService

__all__ = ("add_group_routes",)

Group = Annotated[str, PathParam(min_length=1, max_length=128)]
Member = Annotated[str, PathParam(min_length=1, max_length=128)]
LinkId = Annotated[str, PathParam(min_length=1, max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateBody(_Strict):
    title: str = Field(min_length=1, max_length=128)


class NewGroupBody(CreateBody):
    anchored: bool = False


class AnchorBody(_Strict):
    on: bool = True


class TextBody(_Strict):
    text: str = Field(min_length=1, max_length=16000)


class InviteBody(_Strict):
    contact: str = Field(min_length=1, max_length=128)
    admin: bool = False


class InviteManyBody(_Strict):
    contacts: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        min_length=1, max_length=MAX_MEMBERS - 1
    )
    admin: bool = False


class GrantBody(_Strict):
    read: Literal["commands", "all"] = "commands"
    post: bool = True
    admin: bool = False

    def grant(self) -> BotGrant:
        return BotGrant.parse(self.read, post=self.post, admin=self.admin)


class BotBody(GrantBody):
    bot: str = Field(min_length=1, max_length=128)


class LinkBody(_Strict):
    uses: int = Field(default=0, ge=0, le=10_000)
    expires_in: int = Field(default=86400, ge=60, le=MAX_LINK_TTL)


class JoinLinkBody(_Strict):
    link: str = Field(min_length=1, max_length=4096)


def add_group_routes(app: FastAPI, node: Node, auth: list[Depends]) -> None:
    """Add the routes above to ``app``."""

    def user() -> UserService:
        return user_role(node).user

    @app.get("/v1/groups", dependencies=auth)
    async def listing() -> dict[str, Any]:
        u = user()
        return {"groups": await u.run(u.agent.groups.listing)}

    @app.post("/v1/groups", dependencies=auth, status_code=201)
    async def create(body: NewGroupBody) -> dict[str, Any]:
        u = user()
        gid = await u.act(u.agent.groups.create, body.title, anchored=body.anchored)
        return {"group_id": gid, "title": body.title, "anchored": body.anchored}

    @app.post("/v1/groups/{group}/anchor", dependencies=auth)
    async def anchor(group: Group, body: AnchorBody) -> dict[str, Any]:
        u = user()
        version = await u.act(u.agent.groups.set_anchor, group, body.on)
        return {"anchored": body.on, "version": version}

    @app.get("/v1/groups/{group}", dependencies=auth)
    async def show(group: Group) -> dict[str, Any]:
        u = user()
        return dict(await u.run(u.agent.groups.show, group))

    @app.patch("/v1/groups/{group}", dependencies=auth)
    async def rename(group: Group, body: CreateBody) -> dict[str, Any]:
        u = user()
        version = await u.act(u.agent.groups.set_title, group, body.title)
        return {"title": body.title, "version": version}

    @app.get("/v1/groups/{group}/messages", dependencies=auth)
    async def history(
        group: Group, limit: Annotated[int, Query(ge=1, le=500)] = 100
    ) -> dict[str, Any]:
        u = user()
        return {"messages": await u.run(u.agent.groups.history, group, limit)}

    @app.post("/v1/groups/{group}/messages", dependencies=auth, status_code=202)
    async def post(group: Group, body: TextBody) -> dict[str, Any]:
        u = user()
        mid = await u.act(u.agent.groups.send_text, group, body.text)
        return {"message_id": str(mid)}

    @app.post("/v1/groups/{group}/members", dependencies=auth, status_code=202)
    async def invite(group: Group, body: InviteBody) -> dict[str, Any]:
        u = user()
        added = await u.act(u.agent.groups.invite, group, body.contact, admin=body.admin)
        return {"invited": added}

    @app.post("/v1/groups/{group}/invitations", dependencies=auth, status_code=202)
    async def invite_many(group: Group, body: InviteManyBody) -> dict[str, Any]:
        u = user()
        act = u.agent.groups.invite_many
        return {"invited": await u.act(act, group, body.contacts, admin=body.admin)}

    @app.post("/v1/groups/{group}/bots", dependencies=auth, status_code=202)
    async def add_bot(group: Group, body: BotBody) -> dict[str, Any]:
        u = user()
        added = await u.act(u.agent.groups.bots.add, group, body.bot, body.grant())
        return {"bot": added, "grant": body.grant().to_json()}

    @app.put("/v1/groups/{group}/bots/{bot}", dependencies=auth)
    async def grant_bot(group: Group, bot: Member, body: GrantBody) -> dict[str, Any]:
        u = user()
        version = await u.act(u.agent.groups.bots.set_grant, group, bot, body.grant())
        return {"grant": body.grant().to_json(), "version": version}

    @app.delete("/v1/groups/{group}/members/{member}", dependencies=auth)
    async def remove(group: Group, member: Member) -> dict[str, Any]:
        u = user()
        return {"removed": await u.act(u.agent.groups.remove, group, member)}

    @app.post("/v1/groups/{group}/join", dependencies=auth)
    async def join(group: Group) -> dict[str, Any]:
        u = user()
        return {"joined": await u.act(u.agent.groups.join, group)}

    @app.post("/v1/groups/{group}/links", dependencies=auth, status_code=201)
    async def create_link(group: Group, body: LinkBody) -> dict[str, Any]:
        u = user()
        make = u.agent.groups.links.create
        return dict(await u.run(make, group, uses=body.uses, ttl=body.expires_in, now=u.now()))

    @app.get("/v1/groups/{group}/links", dependencies=auth)
    async def links(group: Group) -> dict[str, Any]:
        u = user()
        return {"links": await u.run(u.agent.groups.links.listing, group, now=u.now())}

    @app.delete("/v1/groups/{group}/links/{link}", dependencies=auth)
    async def revoke_link(group: Group, link: LinkId) -> dict[str, Any]:
        u = user()
        return {"revoked": await u.run(u.agent.groups.links.revoke, group, link, now=u.now())}

    @app.post("/v1/groups/join-link", dependencies=auth, status_code=202)
    async def join_link(body: JoinLinkBody) -> dict[str, Any]:
        u = user()
        return {"group_id": await u.act(u.agent.groups.links.join, body.link), "requested": True}

    @app.post("/v1/groups/{group}/leave", dependencies=auth)
    async def leave(group: Group) -> dict[str, Any]:
        u = user()
        return {"left": await u.act(u.agent.groups.leave, group)}
