"""dchat-network: the link protocol (sans-IO), the relay protocol and the trio transport."""

from __future__ import annotations

from ._errors import DchatNetworkError as DchatNetworkError
from ._errors import FrameTooLargeError as FrameTooLargeError
from ._errors import HandshakeFailedError as HandshakeFailedError
from ._errors import LinkClosedError as LinkClosedError
from ._errors import LinkProtocolError as LinkProtocolError
from ._errors import LinkStateError as LinkStateError
from ._errors import LinkTimeoutError as LinkTimeoutError
from ._errors import RelayProtocolError as RelayProtocolError
from ._link import DEFAULT_MAX_MESSAGE as DEFAULT_MAX_MESSAGE
from ._link import HandshakeComplete as HandshakeComplete
from ._link import LinkClosed as LinkClosed
from ._link import LinkConnection as LinkConnection
from ._link import LinkEvent as LinkEvent
from ._link import LinkState as LinkState
from ._link import MessageReceived as MessageReceived
from ._relay import MAX_BATCH as MAX_BATCH
from ._relay import MAX_PREKEY_BUNDLE as MAX_PREKEY_BUNDLE
from ._relay import MAX_PREKEY_PUT as MAX_PREKEY_PUT
from ._relay import MAX_PREKEYS_HELD as MAX_PREKEYS_HELD
from ._relay import RelayAck as RelayAck
from ._relay import RelayAcked as RelayAcked
from ._relay import RelayBatch as RelayBatch
from ._relay import RelayError as RelayError
from ._relay import RelayFetch as RelayFetch
from ._relay import RelayMessage as RelayMessage
from ._relay import RelayPrekeyBundle as RelayPrekeyBundle
from ._relay import RelayPrekeyCount as RelayPrekeyCount
from ._relay import RelayPrekeyGet as RelayPrekeyGet
from ._relay import RelayPrekeyPut as RelayPrekeyPut
from ._relay import RelayPrekeysHeld as RelayPrekeysHeld
from ._relay import RelayPut as RelayPut
from ._relay import RelayStored as RelayStored
from ._relay import decode_relay_message as decode_relay_message
from ._relay import encode_relay_message as encode_relay_message
from ._relay_server import MailboxStore as MailboxStore
from ._relay_server import PrekeyStore as PrekeyStore
from ._relay_server import RelayClient as RelayClient
from ._relay_server import RelayReply as RelayReply
from ._relay_server import RelayServer as RelayServer
from ._relay_server import StoredEntry as StoredEntry
from ._trio import Link as Link
from ._trio import connect as connect
from ._trio import open_link as open_link
from ._trio import serve_links as serve_links

__all__ = (
    "DEFAULT_MAX_MESSAGE",
    "DchatNetworkError",
    "FrameTooLargeError",
    "HandshakeComplete",
    "HandshakeFailedError",
    "Link",
    "LinkClosed",
    "LinkClosedError",
    "LinkConnection",
    "LinkEvent",
    "LinkProtocolError",
    "LinkState",
    "LinkStateError",
    "LinkTimeoutError",
    "MAX_BATCH",
    "MAX_PREKEYS_HELD",
    "MAX_PREKEY_BUNDLE",
    "MAX_PREKEY_PUT",
    "MailboxStore",
    "MessageReceived",
    "PrekeyStore",
    "RelayAck",
    "RelayAcked",
    "RelayBatch",
    "RelayClient",
    "RelayError",
    "RelayFetch",
    "RelayMessage",
    "RelayPrekeyBundle",
    "RelayPrekeyCount",
    "RelayPrekeyGet",
    "RelayPrekeyPut",
    "RelayPrekeysHeld",
    "RelayProtocolError",
    "RelayPut",
    "RelayReply",
    "RelayServer",
    "RelayStored",
    "StoredEntry",
    "connect",
    "decode_relay_message",
    "encode_relay_message",
    "open_link",
    "serve_links",
)
