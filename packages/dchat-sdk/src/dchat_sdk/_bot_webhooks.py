"""Webhook management calls of the node API, mixed into :class:`~dchat_sdk.RemoteClient`.

Each maps one route of ``/v1/bot/webhook`` (the node's ``api/_bot_webhooks.py``,
docs/protocol.md, "Bot webhooks"). The bot's program may instead call the Bot
API's ``setWebhook``/``getWebhookInfo``/``deleteWebhook`` with its token; a
receiver checks each delivery with :func:`dchat_sdk.verify_webhook`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._replies import obj

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("WebhookCalls",)


class WebhookCalls:
    """Set, show and delete this node's bot webhook; list and retry its dead letters."""

    _call: Callable[..., Any]

    def set_bot_webhook(
        self,
        url: str,
        *,
        secret_token: str | None = None,
        max_connections: int | None = None,
        allowed_updates: list[str] | None = None,
        drop_pending_updates: bool = False,
    ) -> dict[str, Any]:
        """Post the bot's updates to ``url``.

        Returns ``{"webhook": WebhookInfo, "signing_secret": str}``: the secret
        that signs deliveries, shown this once (a new one at every call).
        """
        body: dict[str, Any] = {"url": url, "drop_pending_updates": drop_pending_updates}
        if secret_token is not None:
            body["secret_token"] = secret_token
        if max_connections is not None:
            body["max_connections"] = max_connections
        if allowed_updates is not None:
            body["allowed_updates"] = allowed_updates
        return obj(self._call("PUT", "/v1/bot/webhook", body))

    def bot_webhook(self) -> dict[str, Any]:
        """``{"webhook": WebhookInfo, "dead_letters": n, "delivered": n, ...}``.

        Carries ``signing_secret`` once if the secret was made by a Bot API
        ``setWebhook`` and not shown yet.
        """
        return obj(self._call("GET", "/v1/bot/webhook"))

    def delete_bot_webhook(self, *, drop_pending_updates: bool = False) -> None:
        """Stop posting; the bot polls with ``getUpdates`` again."""
        query = {"drop_pending_updates": "true"} if drop_pending_updates else None
        self._call("DELETE", "/v1/bot/webhook", None, query)

    def bot_webhook_dead_letters(self) -> list[dict[str, Any]]:
        """Updates the receiver did not take: ``update_id``, ``attempts``, ``reason``, ..."""
        return list(obj(self._call("GET", "/v1/bot/webhook/dead-letters"))["dead_letters"])

    def retry_bot_webhook_dead_letters(self, update_ids: list[int] | None = None) -> list[int]:
        """Queue dead letters again (all, or those of ``update_ids``); the ids queued."""
        body = {} if update_ids is None else {"update_ids": update_ids}
        reply = obj(self._call("POST", "/v1/bot/webhook/dead-letters/retry", body))
        return [int(i) for i in reply["retried"]]
