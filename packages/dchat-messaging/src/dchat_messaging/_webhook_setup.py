"""A bot's webhook: its settings, ``setWebhook``'s parameters, the signature, the lane of an update.

Sans-IO. The node's routes hand in a call's parameters; this module answers
:class:`WebhookSettings` or a typed refusal (:class:`WebhookUrlError` for a
URL that is obviously wrong, :class:`~dchat_messaging.bots.BotApiError` 400
for the rest). :class:`Webhook` is what the node saves (``bot-webhook.json``,
beside the bot book): the settings, with the signing secret, and the queue.

Signature (docs/protocol.md, "Bot webhooks"): ``X-Dchat-Signature: t=<unix
seconds>,v1=<hex HMAC-SHA256(key, "<t>." || body)>``, the key being the
ASCII bytes of the bot's signing secret. The secret is the node's own (32
random bytes, base64url) unless ``setWebhook`` names one; it is never a
default and never travels with a delivery. Telegram's ``secret_token`` is
something else: a shared value sent as is in
``X-Telegram-Bot-Api-Secret-Token``, kept for Telegram's clients.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from ._errors import BotApiError
from ._webhook_queue import WebhookQueue

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = (
    "SIGNATURE_HEADER",
    "TELEGRAM_SECRET_HEADER",
    "Webhook",
    "WebhookSettings",
    "WebhookUrlError",
    "check_webhook_url",
    "drop_pending",
    "parse_set_webhook",
    "sign_webhook",
    "update_lane",
)

SIGNATURE_HEADER: Final = "X-Dchat-Signature"
TELEGRAM_SECRET_HEADER: Final = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a name)
MAX_URL: Final = 2048
UPDATE_TYPES: Final = frozenset(
    {
        "message", "edited_message", "channel_post", "edited_channel_post",
        "business_connection", "business_message", "edited_business_message",
        "deleted_business_messages", "message_reaction", "message_reaction_count",
        "inline_query", "chosen_inline_result", "callback_query", "shipping_query",
        "pre_checkout_query", "purchased_paid_media", "poll", "poll_answer",
        "my_chat_member", "chat_member", "chat_join_request", "chat_boost",
        "removed_chat_boost",
    }
)  # fmt: skip
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_SIGNING_SECRET = re.compile(r"[A-Za-z0-9_-]{32,128}")


class WebhookUrlError(BotApiError):
    """A webhook URL that cannot be right (not http/https, no host, credentials, ...)."""

    def __init__(self, why: str) -> None:
        super().__init__(400, f"Bad Request: bad webhook: {why}")


def check_webhook_url(url: str) -> str:
    """``url`` if it is an absolute http or https URL a node may post to.

    Refused: other schemes, no host, user names or passwords in the URL (they
    would be shown by getWebhookInfo), a fragment, a bad port, spaces or
    control characters, an unspecified, broadcast or multicast address, more
    than 2048 characters. Names are not resolved here.

    Raises:
        WebhookUrlError: which of those it is.
    """
    if len(url) > MAX_URL:
        raise WebhookUrlError(f"the URL is longer than {MAX_URL} characters")
    if not url.isascii() or not url.isprintable() or " " in url:
        raise WebhookUrlError("the URL has spaces, control or non-ASCII characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookUrlError("the URL cannot be parsed (its port?)") from None
    if parts.scheme not in ("http", "https"):
        raise WebhookUrlError("an http or https URL must be given")
    host = parts.hostname or ""
    if not host or not re.fullmatch(r"[A-Za-z0-9.:_-]+", host) or port == 0:
        raise WebhookUrlError("the URL has no valid host")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlError("the URL must not carry a user name or password")
    if parts.fragment or url.endswith("#"):
        raise WebhookUrlError("the URL must not have a fragment")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return url
    if address.is_unspecified or address.is_multicast or str(address) == "255.255.255.255":
        raise WebhookUrlError("the URL's address cannot be posted to")
    return url


def sign_webhook(secret: str, body: bytes, at: int) -> str:
    """The ``X-Dchat-Signature`` value for ``body`` sent at ``at`` (unix seconds)."""
    mac = hmac.new(secret.encode("ascii"), f"{at}.".encode() + body, hashlib.sha256)
    return f"t={at},v1={mac.hexdigest()}"


@dataclass(frozen=True)
class WebhookSettings:
    """Where and how a bot's updates are posted."""

    url: str
    signing_secret: str
    secret_token: str | None = None
    max_connections: int = 40
    allowed_updates: tuple[str, ...] | None = None
    """None: every kind of update."""
    secret_shown: bool = False
    """The signing secret has been shown to the owner (it is shown once)."""

    def allows(self, update: Mapping[str, object]) -> bool:
        kinds = set(update) - {"update_id"}
        return self.allowed_updates is None or bool(kinds & set(self.allowed_updates))


def _flag(params: Mapping[str, object], name: str) -> bool:
    value = params.get(name)
    if value is None:
        return False
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", ""):
        return value.strip().lower() in ("true", "1")
    if not isinstance(value, bool):
        raise BotApiError(400, f"Bad Request: {name} must be a boolean")
    return value


def drop_pending(params: Mapping[str, object]) -> bool:
    """The ``drop_pending_updates`` flag of setWebhook or deleteWebhook."""
    return _flag(params, "drop_pending_updates")


def _allowed(raw: object) -> tuple[str, ...] | None:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if len(raw) < 4096 else None
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            raw = None
    if not isinstance(raw, list) or not all(isinstance(k, str) for k in raw):
        raise BotApiError(400, "Bad Request: allowed_updates must be a JSON array of strings")
    unknown = set(raw) - UPDATE_TYPES
    if unknown:
        raise BotApiError(400, f"Bad Request: unknown update types {sorted(unknown)[:5]}")
    return tuple(sorted(set(raw))) or None


def parse_set_webhook(
    params: Mapping[str, object], new_secret: str, before: WebhookSettings | None
) -> WebhookSettings | None:
    """setWebhook's settings (None: ``url`` is empty, which removes the webhook).

    ``new_secret`` is a fresh random signing secret, used unless the call names
    its own (``signing_secret``, a dchat extension: 32-128 of ``A-Za-z0-9_-``).
    An ``allowed_updates`` left out keeps the one ``before`` had, as Telegram
    does. ``certificate`` and ``ip_address`` are not supported.
    """
    url = params.get("url")
    if not isinstance(url, str):
        raise BotApiError(400, "Bad Request: url is required (empty to remove the webhook)")
    if not url.strip():
        return None
    if params.get("certificate") not in (None, "") or params.get("ip_address") not in (None, ""):
        raise BotApiError(400, "Bad Request: certificate and ip_address are not supported")
    token = params.get("secret_token")
    if token in (None, ""):
        token = None
    elif not isinstance(token, str) or not _SECRET_TOKEN.fullmatch(token):
        raise BotApiError(400, "Bad Request: secret_token is 1-256 of A-Z, a-z, 0-9, _ and -")
    secret = params.get("signing_secret", new_secret)
    if not isinstance(secret, str) or not _SIGNING_SECRET.fullmatch(secret):
        raise BotApiError(400, "Bad Request: signing_secret is 32-128 of A-Z, a-z, 0-9, _ and -")
    connections = params.get("max_connections", 40)
    if isinstance(connections, str) and connections.strip().isdecimal() and len(connections) < 5:
        connections = int(connections)
    if not isinstance(connections, int) or isinstance(connections, bool):
        raise BotApiError(400, "Bad Request: max_connections must be an integer")
    if not 1 <= connections <= 100:
        raise BotApiError(400, "Bad Request: max_connections must be between 1 and 100")
    allowed = before.allowed_updates if before is not None else None
    if "allowed_updates" in params:
        allowed = _allowed(params["allowed_updates"])
    return WebhookSettings(
        check_webhook_url(url.strip()),
        secret,
        token,
        connections,
        allowed,
        secret_shown=secret != new_secret,  # the caller chose it: nothing to show
    )


def update_lane(update: Mapping[str, Any]) -> str:
    """The lane (chat) of an update: updates of one lane are delivered in order.

    A message-like update's chat, a callback query's message chat or sender, an
    inline query's sender; anything else shares one lane.
    """
    for kind, value in update.items():
        if kind == "update_id" or not isinstance(value, dict):
            continue
        chat = value.get("chat") or (value.get("message") or {}).get("chat")
        if isinstance(chat, dict) and "id" in chat:
            return f"chat:{chat['id']}"
        sender = value.get("from") or value.get("user")
        if isinstance(sender, dict) and "id" in sender:
            return f"user:{sender['id']}"
    return "other"


@dataclass
class Webhook:
    """What the node keeps of its bot's webhook: the settings (if set) and the queue."""

    settings: WebhookSettings | None
    queue: WebhookQueue

    def info(self) -> dict[str, Any]:
        """getWebhookInfo's ``WebhookInfo`` (no secret)."""
        queue, settings = self.queue, self.settings
        if settings is None:
            return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
        info: dict[str, Any] = {
            "url": settings.url,
            "has_custom_certificate": False,
            "pending_update_count": queue.pending,
            "max_connections": settings.max_connections,
        }
        if settings.allowed_updates is not None:
            info["allowed_updates"] = list(settings.allowed_updates)
        if queue.last_error_date is not None:
            info["last_error_date"] = queue.last_error_date
            info["last_error_message"] = queue.last_error_message
        return info

    def to_json(self) -> bytes:
        settings = None if self.settings is None else asdict(self.settings)
        return json.dumps({"settings": settings, "queue": self.queue.to_json()}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Webhook:
        """Load :meth:`to_json` (damaged: ``BotApiError`` 500)."""
        try:
            state = json.loads(data)
            raw = state["settings"]
            settings = None
            if raw is not None:
                allowed = raw["allowed_updates"]
                raw["allowed_updates"] = None if allowed is None else tuple(allowed)
                settings = WebhookSettings(**raw)
            return cls(settings, WebhookQueue.from_json(state["queue"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise BotApiError(500, "Internal Server Error: the webhook state is damaged") from exc
