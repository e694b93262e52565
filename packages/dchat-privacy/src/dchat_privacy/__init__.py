"""dchat-privacy: privacy primitives. So far: size-bucket padding; Sphinx onion packets (BOLT 4)."""

from __future__ import annotations

from ._padding import DEFAULT_BUCKETS as DEFAULT_BUCKETS
from ._padding import DchatPrivacyError as DchatPrivacyError
from ._padding import PaddingError as PaddingError
from ._padding import PaddingTooLargeError as PaddingTooLargeError
from ._padding import pad as pad
from ._padding import unpad as unpad
from ._sphinx import OnionPrivateKey as OnionPrivateKey
from ._sphinx import OnionPublicKey as OnionPublicKey
from ._sphinx_errors import InvalidPacketError as InvalidPacketError
from ._sphinx_errors import MalformedPacketError as MalformedPacketError
from ._sphinx_errors import ReplayedPacketError as ReplayedPacketError
from ._sphinx_errors import SphinxError as SphinxError
from ._sphinx_message import Deliver as Deliver
from ._sphinx_message import Forward as Forward
from ._sphinx_message import OnionRelay as OnionRelay
from ._sphinx_message import build_message as build_message
from ._sphinx_message import read_body as read_body
from ._sphinx_surb import ReplyBlock as ReplyBlock
from ._sphinx_surb import ReplyBook as ReplyBook
from ._sphinx_surb import build_reply_block as build_reply_block
from ._sphinx_surb import write_reply as write_reply

__all__ = (
    "DEFAULT_BUCKETS",
    "DchatPrivacyError",
    "Deliver",
    "Forward",
    "InvalidPacketError",
    "MalformedPacketError",
    "OnionPrivateKey",
    "OnionPublicKey",
    "OnionRelay",
    "PaddingError",
    "PaddingTooLargeError",
    "ReplayedPacketError",
    "ReplyBlock",
    "ReplyBook",
    "SphinxError",
    "build_message",
    "build_reply_block",
    "pad",
    "read_body",
    "unpad",
    "write_reply",
)
