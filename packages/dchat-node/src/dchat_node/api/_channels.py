"""API routes for broadcast channels (user role).

* ``GET /v1/channels``: every channel (id, title, role, relays, posts kept).
* ``POST /v1/channels {title, relays?}``: create one (we hold its key; the
  relays default to our home relays); 201 with its id and invite link.
* ``POST /v1/channels/subscribe {link}``: follow the channel of an invite link.
* ``GET /v1/channels/{channel}``: its keys, publishers, gaps and refused posts
  (``channel`` is the id, a unique prefix of 8+ hex digits, or the exact title).
* ``GET /v1/channels/{channel}/link``: its invite link (to read, not to publish).
* ``DELETE /v1/channels/{channel}``: unsubscribe (or drop our own channel).
* ``GET /v1/channels/{channel}/posts?limit=``: the newest posts, oldest first.
* ``POST /v1/channels/{channel}/posts {text}``: publish (encrypted once,
  uploaded once per relay); 202 with the post id.
* ``POST /v1/channels/{channel}/publishers {key}``: list another publisher
  (their ``publisher_key`` from ``GET``); owner only.

Creating, subscribing and unsubscribing are recorded in the device sync
(register ``channel/<id>``: the link, ``""`` once dropped), so the
identity's other devices follow the same channels (as readers: publishing
from another device needs that device's key listed).

Every step runs in the messaging agent (``UserMessaging.channels``, sans-IO);
the node's :class:`~dchat_network.lowlevel.TopicSync` does the uploads and
the standing reads. Posts reach the event stream as ``channel_post``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Path as PathParam
from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from ._roles import user_role

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastapi import FastAPI
    from fastapi.params import Depends

    from .._runtime import Node
    from ..user._role import UserRole

__all__ = ("add_channel_routes",)

Channel = Annotated[str, PathParam(min_length=1, max_length=128)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateBody(_Strict):
    title: str = Field(min_length=1, max_length=128)
    relays: list[str] | None = Field(default=None, min_length=1, max_length=8)


class LinkBody(_Strict):
    link: str = Field(min_length=1, max_length=4096)


class TextBody(_Strict):
    text: str = Field(min_length=1, max_length=16000)


class KeyBody(_Strict):
    key: str = Field(pattern="^[0-9a-f]{64}$")


def add_channel_routes(app: FastAPI, node: Node, auth: list[Depends]) -> None:
    """Add the routes above to ``app``."""

    def role() -> UserRole:
        return user_role(node)

    async def step(call: Callable[..., Any], *a: Any, wake: bool = False) -> Any:
        r = role()
        result = await r.user.logged(call, *a, now=r.user.now())
        if wake:  # something to upload or to follow
            r.channels.wake()
        return result

    async def synced(cid: str, link: str) -> None:
        """Tell our other devices (device sync, off without any) what we follow."""
        await role().features.sync.record([("set", f"channel/{cid}", link)])

    @app.get("/v1/channels", dependencies=auth)
    async def listing() -> dict[str, Any]:
        u = role().user
        return {"channels": await u.run(u.agent.channels.listing)}

    @app.post("/v1/channels", dependencies=auth, status_code=201)
    async def create(body: CreateBody) -> dict[str, Any]:
        u = role().user
        relays = body.relays or [str(r) for r in u.home_relays]
        made = dict(await step(u.agent.channels.create, body.title, relays, wake=True))
        await synced(made["channel_id"], made["link"])
        return made

    @app.post("/v1/channels/subscribe", dependencies=auth)
    async def subscribe(body: LinkBody) -> dict[str, Any]:
        u = role().user
        cid = await step(u.agent.channels.subscribe, body.link, wake=True)
        await synced(cid, body.link)
        return {"channel_id": cid}

    @app.get("/v1/channels/{channel}", dependencies=auth)
    async def show(channel: Channel) -> dict[str, Any]:
        u = role().user
        return dict(await u.run(u.agent.channels.show, channel))

    @app.get("/v1/channels/{channel}/link", dependencies=auth)
    async def link(channel: Channel) -> dict[str, Any]:
        u = role().user
        return {"link": await u.run(u.agent.channels.link, channel)}

    @app.delete("/v1/channels/{channel}", dependencies=auth)
    async def unsubscribe(channel: Channel) -> dict[str, Any]:
        u = role().user
        cid = await step(u.agent.channels.unsubscribe, channel, wake=True)
        await synced(cid, "")
        return {"unsubscribed": cid}

    @app.get("/v1/channels/{channel}/posts", dependencies=auth)
    async def posts(
        channel: Channel, limit: Annotated[int, Query(ge=1, le=500)] = 100
    ) -> dict[str, Any]:
        u = role().user
        return {"posts": await u.run(u.agent.channels.posts, channel, limit)}

    @app.post("/v1/channels/{channel}/posts", dependencies=auth, status_code=202)
    async def post(channel: Channel, body: TextBody) -> dict[str, Any]:
        u = role().user
        return {"post_id": await step(u.agent.channels.post, channel, body.text, wake=True)}

    @app.post("/v1/channels/{channel}/publishers", dependencies=auth)
    async def add_publisher(channel: Channel, body: KeyBody) -> dict[str, Any]:
        u = role().user
        version = await step(u.agent.channels.add_publisher, channel, body.key, wake=True)
        return {"version": version}
