"""Bot management calls of the node API, mixed into :class:`~dchat_sdk.RemoteClient`.

Each maps one route of ``/v1/bot`` (the node's ``api/_bots.py``, docs/protocol.md
section 34): they make the node's identity a bot and manage its Bot API
tokens and commands. The bot's program itself talks to the Bot API
(``/bot<token>/<method>``) with any HTTP client or a Telegram-style library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._replies import obj

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ("BotCalls",)


class BotCalls:
    """Create this node's bot, issue and revoke its tokens, set its commands."""

    # One API round trip (method, path, JSON body, query parameters): RemoteClient's.
    _call: Callable[..., Any]

    def create_bot(self, name: str, description: str = "") -> str:
        """Make this node's identity the bot ``name``; returns its first token (shown once)."""
        body = {"name": name, "description": description}
        return str(obj(self._call("POST", "/v1/bot", body))["token"])

    def bot(self) -> dict[str, Any]:
        """The bot: name, identity id, description, commands, tokens (no secrets), offset."""
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
