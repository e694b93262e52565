"""Bot management calls of the node API, mixed into :class:`~dchat_sdk.RemoteClient`.

Each maps one route of ``/v1/bot`` (the node's ``api/_bots.py``, docs/protocol.md
section 34): they make the node's identity a bot and manage its Bot API
tokens and commands. The bot's program itself talks to the Bot API
(``/bot<token>/<method>``) with any HTTP client or a Telegram-style library.

The user's side of a bot (``/v1/bots/{peer}/...``, section 35): press a button
of a bot's message (:meth:`BotCalls.bot_press`), ask a bot for its commands
(:meth:`BotCalls.bot_commands`) or what it is and asks for in groups
(:meth:`BotCalls.bot_info`), run an inline query and send the chosen
result (:meth:`BotCalls.bot_inline`, :meth:`BotCalls.bot_pick`). Each travels
end to end to the bot's node; a bot that does not answer in time is
``ApiError`` ``bot_timeout`` (504).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ._replies import obj

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ("BotCalls",)


def _seg(text: str) -> str:
    return quote(text, safe="")


class BotCalls:
    """Create this node's bot, issue and revoke its tokens, set its commands."""

    # One API round trip (method, path, JSON body, query parameters): RemoteClient's.
    _call: Callable[..., Any]

    def create_bot(self, name: str, description: str = "") -> str:
        """Make this node's identity the bot ``name``; returns its first token (shown once)."""
        body = {"name": name, "description": description}
        return str(obj(self._call("POST", "/v1/bot", body))["token"])

    def bot(self) -> dict[str, Any]:
        """The bot: name, identity id, description, commands, tokens (no secrets), offset,
        and ``strangers``: the limits on strangers and what they came to (refusals by code)."""
        return obj(self._call("GET", "/v1/bot"))

    def bot_token(self, scopes: list[str] | None = None) -> str:
        """Issue another token with ``scopes`` (updates, send, manage; default all)."""
        body = {} if scopes is None else {"scopes": scopes}
        return str(obj(self._call("POST", "/v1/bot/tokens", body))["token"])

    def revoke_bot_token(self, token_id: int) -> None:
        """Revoke a token for good (``token_id``: the number before its colon)."""
        self._call("DELETE", f"/v1/bot/tokens/{int(token_id)}")

    def set_bot_commands(self, commands: Mapping[str, str]) -> None:
        """Set the commands the bot lists: command name -> description."""
        listed = [{"command": c, "description": d} for c, d in commands.items()]
        self._call("PUT", "/v1/bot/commands", {"commands": listed})

    def set_bot_description(self, description: str) -> None:
        """Set what the bot says it does."""
        self._call("PUT", "/v1/bot/description", {"description": description})

    def set_bot_open(self, on: bool) -> None:
        """Let strangers write to the bot (their message requests accepted as they come) or not."""
        self._call("PUT", "/v1/bot/open", {"open": on})

    def bot_press(
        self, peer: str, message_id: str, button: str, *, wait: float = 0
    ) -> dict[str, Any]:
        """Press ``button`` (its number from 1, its text or its data) of a bot's message.

        Returns ``{"query_id", "button", "url", "answer"}``: ``answer`` is the
        bot's ``{"text", "show_alert", "url"}`` if it came within ``wait``
        seconds (later it is a ``bot_answer`` event); a url button sends
        nothing and returns its ``url``.
        """
        body = {"message_id": message_id, "button": button, "wait": wait}
        return obj(self._call("POST", f"/v1/bots/{_seg(peer)}/press", body, timeout=wait + 10))

    def bot_commands(self, peer: str, *, wait: float = 10) -> list[dict[str, str]]:
        """The commands the bot ``peer`` lists (``{"command", "description"}``), asked E2E."""
        path, params = f"/v1/bots/{_seg(peer)}/commands", {"wait": str(wait)}
        reply = obj(self._call("GET", path, None, params, timeout=wait + 10))
        return list(reply["commands"])

    def bot_info(self, peer: str, *, wait: float = 10) -> dict[str, Any]:
        """What the bot ``peer`` says it is, asked E2E: ``{"commands", "description",
        "groups"}``, ``groups`` what it asks for in a group (``{"read", "post", "admin"}``;
        None from a bot node that predates group grants)."""
        path, params = f"/v1/bots/{_seg(peer)}/info", {"wait": str(wait)}
        return obj(self._call("GET", path, None, params, timeout=wait + 10))

    def set_bot_groups(
        self, *, read: str = "commands", post: bool = True, admin: bool = False
    ) -> None:
        """What this node's bot asks for in groups (shown to users before they add it)."""
        self._call("PUT", "/v1/bot/groups", {"read": read, "post": post, "admin": admin})

    def bot_inline(
        self, peer: str, query: str, *, offset: str = "", wait: float = 10
    ) -> dict[str, Any]:
        """Run an inline query: ``{"query_id", "results": [{"id", "title", "description",
        "text"}], "next_offset"}`` (send one with :meth:`bot_pick`)."""
        body = {"query": query, "offset": offset, "wait": wait}
        return obj(self._call("POST", f"/v1/bots/{_seg(peer)}/inline", body, timeout=wait + 10))

    def bot_pick(self, peer: str, query_id: str, result_id: str, to: str) -> dict[str, Any]:
        """Send the result ``result_id`` of an inline query to ``to`` as a normal message."""
        path = f"/v1/bots/{_seg(peer)}/inline/{_seg(query_id)}/pick"
        return obj(self._call("POST", path, {"result_id": result_id, "to": to}))
