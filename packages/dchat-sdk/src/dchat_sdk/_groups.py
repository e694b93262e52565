"""Private-group calls of the node API, mixed into :class:`~dchat_sdk.RemoteClient`.

Each maps one route of ``/v1/groups`` (see the node's ``api/_groups.py`` and
docs/protocol.md, "Private groups") and returns its JSON. A group is named by
its id, a unique prefix of 8+ hex digits, or its exact title; names are
quoted into paths. Received group messages and changes arrive on the event
stream as ``group_message`` and ``group_update`` events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ._replies import obj

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("GroupCalls",)


def _path(group: str, *rest: str) -> str:
    return "/".join(["/v1/groups", quote(group, safe=""), *(quote(r, safe="") for r in rest)])


class GroupCalls:
    """Create, invite, join, leave, remove, post and read private groups."""

    # One API round trip (method, path, JSON body, query parameters): RemoteClient's.
    _call: Callable[..., Any]

    def groups(self) -> list[dict[str, Any]]:
        """Every group of this node: id, title, status, version, member count."""
        return list(obj(self._call("GET", "/v1/groups"))["groups"])

    def create_group(self, title: str, *, anchored: bool = False) -> str:
        """Create a group (we are its only member and admin); returns its id.

        ``anchored``: its message order is committed to the chat chain (the
        node needs ``chat_node``); ``group(...)["anchor"]`` then shows what is
        anchored, missing messages and any equivocation evidence.
        """
        body = {"title": title, "anchored": anchored}
        return str(obj(self._call("POST", "/v1/groups", body))["group_id"])

    def anchor_group(self, group: str, *, on: bool = True) -> int:
        """Anchor a group's order on the chat chain (admins), or stop; its new version."""
        return int(obj(self._call("POST", _path(group, "anchor"), {"on": on}))["version"])

    def group(self, group: str) -> dict[str, Any]:
        """A group's state: title, version, settings, our status, members with roles."""
        return obj(self._call("GET", _path(group)))

    def invite_to_group(self, group: str, contact: str, *, admin: bool = False) -> str:
        """Invite the contact ``contact``; returns their identity id."""
        body = {"contact": contact, "admin": admin}
        return str(obj(self._call("POST", _path(group, "members"), body))["invited"])

    def invite_many_to_group(
        self, group: str, contacts: list[str], *, admin: bool = False
    ) -> list[str]:
        """Invite several contacts at once (few signed updates); returns their identity ids."""
        body = {"contacts": list(contacts), "admin": admin}
        answer = obj(self._call("POST", _path(group, "invitations"), body))["invited"]
        return [str(i) for i in answer]

    def add_bot_to_group(
        self, group: str, bot: str, *, read: str = "commands", post: bool = True,
        admin: bool = False,
    ) -> str:  # fmt: skip
        """Add the bot ``bot`` (a contact; admins only) with a grant; returns its identity id.

        ``read``: ``"commands"`` (only commands to it reach it; members never
        hand it the group's keys) or ``"all"``; ``post``: it may post;
        ``admin``: it may add members and remove those who are not admins. See
        what it asks for first with :meth:`~dchat_sdk.RemoteClient.bot_info`.
        """
        body = {"bot": bot, "read": read, "post": post, "admin": admin}
        return str(obj(self._call("POST", _path(group, "bots"), body))["bot"])

    def set_bot_grant(
        self, group: str, bot: str, *, read: str = "commands", post: bool = True,
        admin: bool = False,
    ) -> int:  # fmt: skip
        """Change what the bot ``bot`` may do in ``group`` (admins); the group's new version."""
        body = {"read": read, "post": post, "admin": admin}
        return int(obj(self._call("PUT", _path(group, "bots", bot), body))["version"])

    def remove_from_group(self, group: str, member: str) -> str:
        """Remove a member (contact name or identity id); returns their identity id."""
        return str(obj(self._call("DELETE", _path(group, "members", member)))["removed"])

    def join_group(self, group: str) -> str:
        """Accept an invitation (start sharing our sender key and posting)."""
        return str(obj(self._call("POST", _path(group, "join")))["joined"])

    def create_group_link(
        self, group: str, *, uses: int = 0, expires_in: int = 86400
    ) -> dict[str, Any]:
        """An invite link to ``group`` (``uses``: how many may join by it, 0 any number;
        ``expires_in``: seconds). ``["link"]`` is the ``dchat-group:...`` text to share."""
        body = {"uses": uses, "expires_in": expires_in}
        return obj(self._call("POST", _path(group, "links"), body))

    def group_links(self, group: str) -> list[dict[str, Any]]:
        """A group's invite links: id, expiry, uses, used, state (never their secrets)."""
        return list(obj(self._call("GET", _path(group, "links")))["links"])

    def revoke_group_link(self, group: str, link: str) -> dict[str, Any]:
        """Revoke an invite link (its id); later requests by it are refused."""
        return obj(obj(self._call("DELETE", _path(group, "links", link)))["revoked"])

    def join_group_by_link(self, link: str) -> str:
        """Ask the inviter of ``link`` to add us; returns the group id.

        The group arrives as a ``group_update`` event (``op`` ``joined``), or a
        ``group_join_refused`` event says why not (``link_expired``, ``link_used``,
        ``link_revoked``, ``not_allowed``).
        """
        return str(obj(self._call("POST", "/v1/groups/join-link", {"link": link}))["group_id"])

    def leave_group(self, group: str) -> str:
        """Leave a group."""
        return str(obj(self._call("POST", _path(group, "leave")))["left"])

    def rename_group(self, group: str, title: str) -> int:
        """Set a group's title; returns its new version."""
        return int(obj(self._call("PATCH", _path(group), {"title": title}))["version"])

    def send_to_group(self, group: str, text: str) -> str:
        """Post ``text`` (encrypted once, sent to every member device); returns its id."""
        return str(obj(self._call("POST", _path(group, "messages"), {"text": text}))["message_id"])

    def group_messages(self, group: str, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ``limit`` messages of a group, oldest first."""
        reply = self._call("GET", _path(group, "messages"), params={"limit": limit})
        return list(obj(reply)["messages"])
