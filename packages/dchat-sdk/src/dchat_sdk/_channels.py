"""Broadcast-channel calls of the node API, mixed into :class:`~dchat_sdk.RemoteClient`.

Each maps one route of ``/v1/channels`` (see the node's ``api/_channels.py``
and docs/protocol.md, "Broadcast channels") and returns its JSON. A channel
is named by its id, a unique prefix of 8+ hex digits, or its exact title;
names are quoted into paths. Received posts arrive on the event stream as
``channel_post`` events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ._replies import obj

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("ChannelCalls",)


def _path(channel: str, *rest: str) -> str:
    return "/".join(["/v1/channels", quote(channel, safe=""), *rest])


class ChannelCalls:
    """Create, subscribe to, post in and read broadcast channels."""

    # One API round trip (method, path, JSON body, query parameters): RemoteClient's.
    _call: Callable[..., Any]

    def channels(self) -> list[dict[str, Any]]:
        """Every channel of this node: id, title, role, relays, posts kept."""
        return list(obj(self._call("GET", "/v1/channels"))["channels"])

    def create_channel(self, title: str, relays: list[str] | None = None) -> dict[str, Any]:
        """Create a channel we own (on our home relays by default): its id and invite link."""
        body: dict[str, Any] = {"title": title}
        if relays is not None:
            body["relays"] = relays
        return obj(self._call("POST", "/v1/channels", body))

    def subscribe_channel(self, link: str) -> str:
        """Follow the channel of an invite link; returns its id."""
        return str(obj(self._call("POST", "/v1/channels/subscribe", {"link": link}))["channel_id"])

    def unsubscribe_channel(self, channel: str) -> str:
        """Stop following a channel (or drop our own); returns its id."""
        return str(obj(self._call("DELETE", _path(channel)))["unsubscribed"])

    def channel(self, channel: str) -> dict[str, Any]:
        """A channel's keys, role, publishers, gaps and refused posts."""
        return obj(self._call("GET", _path(channel)))

    def channel_link(self, channel: str) -> str:
        """A channel's invite link (it lets the holder read, not publish)."""
        return str(obj(self._call("GET", _path(channel, "link")))["link"])

    def post_to_channel(self, channel: str, text: str) -> str:
        """Publish ``text`` (encrypted once, uploaded once per relay); returns the post id."""
        return str(obj(self._call("POST", _path(channel, "posts"), {"text": text}))["post_id"])

    def channel_posts(self, channel: str, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ``limit`` posts of a channel, oldest first."""
        reply = self._call("GET", _path(channel, "posts"), params={"limit": limit})
        return list(obj(reply)["posts"])

    def add_channel_publisher(self, channel: str, key: str) -> int:
        """List a publisher's key (hex) in our channel; returns the descriptor's version."""
        reply = self._call("POST", _path(channel, "publishers"), {"key": key})
        return int(obj(reply)["version"])
