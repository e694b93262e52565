"""dchat-sdk: clients for dchat.

:class:`Client` (async, asyncio or trio) is the client to start with:
``Client.connect(api_url, token)`` for a running node, or
``Client.embedded(data_dir, passphrase, relay=...)`` to run the user node
inside this process (``dchat-sdk[embedded]``); :class:`SyncClient` is its
synchronous facade for scripts.

Underneath: :class:`RemoteClient` (synchronous) and :class:`AsyncRemoteClient`
(asyncio or trio) for a node's local API, including its event stream
(:class:`Event`, resumable by cursor); :class:`RemoteSocket` and
:class:`AsyncRemoteSocket` for the API's WebSocket (sends and events on one
connection, at a fraction of an HTTP request's cost to the node).
:func:`verify_webhook` checks the signature of a bot webhook delivery.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:  # each name loads its module on first use (PEP 562): see _HOMES
    from ._async import AsyncRemoteClient as AsyncRemoteClient
    from ._client import Client as Client
    from ._client import SyncClient as SyncClient
    from ._errors import ApiError as ApiError
    from ._errors import DataDirLockedError as DataDirLockedError
    from ._errors import DchatSdkError as DchatSdkError
    from ._errors import EmbeddedNodeError as EmbeddedNodeError
    from ._errors import NodeUnreachableError as NodeUnreachableError
    from ._errors import WrongPassphraseError as WrongPassphraseError
    from ._event_kinds import EVENT_KINDS as EVENT_KINDS
    from ._event_kinds import BotUpdate as BotUpdate
    from ._event_kinds import BurnerSeed as BurnerSeed
    from ._event_kinds import ChannelUpdate as ChannelUpdate
    from ._event_kinds import ConversationChange as ConversationChange
    from ._event_kinds import Expired as Expired
    from ._event_kinds import GroupUpdate as GroupUpdate
    from ._event_kinds import PaymentVerdict as PaymentVerdict
    from ._event_kinds import RelayStatus as RelayStatus
    from ._event_kinds import RequestChange as RequestChange
    from ._events import Event as Event
    from ._events import StealthReceived as StealthReceived
    from ._models import CoverTraffic as CoverTraffic
    from ._models import OnionGuard as OnionGuard
    from ._models import OnionModes as OnionModes
    from ._models import OnionStatus as OnionStatus
    from ._models import Payments as Payments
    from ._models import PaymentSent as PaymentSent
    from ._models import PendingPurchase as PendingPurchase
    from ._models import PutAuth as PutAuth
    from ._models import RelayTokens as RelayTokens
    from ._models import ReplyBlockCounts as ReplyBlockCounts
    from ._models import StealthAccount as StealthAccount
    from ._models import StealthPayment as StealthPayment
    from ._models import StealthScan as StealthScan
    from ._models import StealthStatus as StealthStatus
    from ._models import StealthSweep as StealthSweep
    from ._models import TokenPurchase as TokenPurchase
    from ._models import TokenWallet as TokenWallet
    from ._models import UnsentPayment as UnsentPayment
    from ._remote import RemoteClient as RemoteClient
    from ._replies import ContactInfo as ContactInfo
    from ._replies import MessageInfo as MessageInfo
    from ._replies import MessagePage as MessagePage
    from ._socket import AsyncRemoteSocket as AsyncRemoteSocket
    from ._socket import RemoteSocket as RemoteSocket
    from ._socket import SocketReply as SocketReply
    from ._webhooks import WebhookSignatureError as WebhookSignatureError
    from ._webhooks import verify_webhook as verify_webhook

__all__ = (
    "ApiError",
    "AsyncRemoteClient",
    "AsyncRemoteSocket",
    "BotUpdate",
    "BurnerSeed",
    "ChannelUpdate",
    "Client",
    "ContactInfo",
    "ConversationChange",
    "CoverTraffic",
    "DataDirLockedError",
    "DchatSdkError",
    "EVENT_KINDS",
    "EmbeddedNodeError",
    "Event",
    "Expired",
    "GroupUpdate",
    "MessageInfo",
    "MessagePage",
    "NodeUnreachableError",
    "OnionGuard",
    "OnionModes",
    "OnionStatus",
    "PaymentSent",
    "PaymentVerdict",
    "Payments",
    "PendingPurchase",
    "PutAuth",
    "RelayStatus",
    "RelayTokens",
    "RemoteClient",
    "RemoteSocket",
    "ReplyBlockCounts",
    "RequestChange",
    "SocketReply",
    "StealthAccount",
    "StealthPayment",
    "StealthReceived",
    "StealthScan",
    "StealthStatus",
    "StealthSweep",
    "SyncClient",
    "TokenPurchase",
    "TokenWallet",
    "UnsentPayment",
    "WebhookSignatureError",
    "WrongPassphraseError",
    "verify_webhook",
)

# Where each name lives. ``from dchat_sdk import RemoteClient`` loads only the sync
# client's modules (httpx), not the async client, anyio, wsproto or the embedded node:
# the ``dchat`` command line starts in a fraction of the time.
_HOMES = {
    name: module
    for module, names in {
        "._async": ("AsyncRemoteClient",),
        "._client": (
            "Client",
            "SyncClient",
        ),
        "._errors": (
            "ApiError",
            "DataDirLockedError",
            "DchatSdkError",
            "EmbeddedNodeError",
            "NodeUnreachableError",
            "WrongPassphraseError",
        ),
        "._event_kinds": (
            "EVENT_KINDS",
            "BotUpdate",
            "BurnerSeed",
            "ChannelUpdate",
            "ConversationChange",
            "Expired",
            "GroupUpdate",
            "PaymentVerdict",
            "RelayStatus",
            "RequestChange",
        ),
        "._events": (
            "Event",
            "StealthReceived",
        ),
        "._models": (
            "CoverTraffic",
            "OnionGuard",
            "OnionModes",
            "OnionStatus",
            "PaymentSent",
            "Payments",
            "PendingPurchase",
            "PutAuth",
            "RelayTokens",
            "ReplyBlockCounts",
            "StealthAccount",
            "StealthPayment",
            "StealthScan",
            "StealthStatus",
            "StealthSweep",
            "TokenPurchase",
            "TokenWallet",
            "UnsentPayment",
        ),
        "._remote": ("RemoteClient",),
        "._replies": (
            "ContactInfo",
            "MessageInfo",
            "MessagePage",
        ),
        "._socket": (
            "AsyncRemoteSocket",
            "RemoteSocket",
            "SocketReply",
        ),
        "._webhooks": (
            "WebhookSignatureError",
            "verify_webhook",
        ),
    }.items()
    for name in names
}


def __getattr__(name: str) -> object:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(_HOMES[name], __name__), name)
    globals()[name] = value  # loaded once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
