"""A bot's webhook, sans-IO: settings, the signature, and the delivery queue.

The node's task (``dchat_node/api/_bot_webhooks.py``) posts a bot's updates
to the URL set with ``setWebhook``; what it decides is here.
:class:`WebhookQueue` orders deliveries per chat, retries them with
exponential backoff and jitter (:class:`DeliveryPolicy`) and moves the ones
that keep failing to its dead letters (:class:`DeadLetter`);
:func:`parse_set_webhook` checks ``setWebhook``'s parameters
(:func:`check_webhook_url`, :class:`WebhookUrlError`); :func:`sign_webhook`
makes the ``X-Dchat-Signature`` header that receivers check with
``dchat_sdk.verify_webhook``. Wire format: docs/protocol.md, "Bot webhooks".
"""

from __future__ import annotations

from ._webhook_queue import DeadLetter as DeadLetter
from ._webhook_queue import Delivery as Delivery
from ._webhook_queue import DeliveryPolicy as DeliveryPolicy
from ._webhook_queue import WebhookQueue as WebhookQueue
from ._webhook_setup import SIGNATURE_HEADER as SIGNATURE_HEADER
from ._webhook_setup import TELEGRAM_SECRET_HEADER as TELEGRAM_SECRET_HEADER
from ._webhook_setup import Webhook as Webhook
from ._webhook_setup import WebhookSettings as WebhookSettings
from ._webhook_setup import WebhookUrlError as WebhookUrlError
from ._webhook_setup import check_webhook_url as check_webhook_url
from ._webhook_setup import drop_pending as drop_pending
from ._webhook_setup import parse_set_webhook as parse_set_webhook
from ._webhook_setup import sign_webhook as sign_webhook
from ._webhook_setup import update_lane as update_lane

__all__ = (
    "DeadLetter",
    "Delivery",
    "DeliveryPolicy",
    "SIGNATURE_HEADER",
    "TELEGRAM_SECRET_HEADER",
    "Webhook",
    "WebhookQueue",
    "WebhookSettings",
    "WebhookUrlError",
    "check_webhook_url",
    "drop_pending",
    "parse_set_webhook",
    "sign_webhook",
    "update_lane",
)
