"""dchat-sdk: clients for dchat.

So far: :class:`RemoteClient` (synchronous) and :class:`AsyncRemoteClient`
(asyncio or trio) for a node's local API, including its event stream
(:class:`Event`, resumable by cursor); :class:`RemoteSocket` and
:class:`AsyncRemoteSocket` for the API's WebSocket (sends and events on one
connection, at a fraction of an HTTP request's cost to the node).
"""

from __future__ import annotations

from ._async import AsyncRemoteClient as AsyncRemoteClient
from ._errors import ApiError as ApiError
from ._errors import DchatSdkError as DchatSdkError
from ._errors import NodeUnreachableError as NodeUnreachableError
from ._events import Event as Event
from ._remote import RemoteClient as RemoteClient
from ._replies import ContactInfo as ContactInfo
from ._replies import MessageInfo as MessageInfo
from ._replies import MessagePage as MessagePage
from ._socket import AsyncRemoteSocket as AsyncRemoteSocket
from ._socket import RemoteSocket as RemoteSocket
from ._socket import SocketReply as SocketReply

__all__ = (
    "ApiError",
    "AsyncRemoteClient",
    "AsyncRemoteSocket",
    "ContactInfo",
    "DchatSdkError",
    "Event",
    "MessageInfo",
    "MessagePage",
    "NodeUnreachableError",
    "RemoteClient",
    "RemoteSocket",
    "SocketReply",
)
