"""dchat-sdk: clients for dchat. So far: :class:`RemoteClient` for a node's local API."""

from __future__ import annotations

from ._remote import ApiError as ApiError
from ._remote import ContactInfo as ContactInfo
from ._remote import DchatSdkError as DchatSdkError
from ._remote import MessageInfo as MessageInfo
from ._remote import NodeUnreachableError as NodeUnreachableError
from ._remote import RemoteClient as RemoteClient

__all__ = (
    "ApiError",
    "ContactInfo",
    "DchatSdkError",
    "MessageInfo",
    "NodeUnreachableError",
    "RemoteClient",
)
