"""The low-level API of dchat-privacy, for code that implements or tests the protocols.

:mod:`dchat_privacy` exports what a node needs: padding, onion keys, the relay's
:class:`OnionRelay`, first messages and reply blocks. This module holds the rest
of the Sphinx code: the BOLT 4 packet itself (:func:`build_onion`,
:func:`peel_onion`, :func:`shared_secret_of`, :class:`PeeledOnion`,
:class:`OnionCircuit`, :class:`SharedSecret`), failure messages returned along a
route (:func:`build_failure`, :func:`wrap_failure`, :func:`read_failure`), the
replay cache (:class:`ReplayCache`), a reply block owner's :class:`ReplyKeys`,
route blinding (:func:`blind_path`, :func:`unblind_hop`, :class:`BlindedPath`,
:class:`BlindedHop`, :class:`UnblindedHop`), the sizes, and the errors a caller
rarely catches.
"""

from __future__ import annotations

from ._sphinx import HOP_PAYLOADS_SIZE as HOP_PAYLOADS_SIZE
from ._sphinx import MAX_HOPS as MAX_HOPS
from ._sphinx import PACKET_SIZE as PACKET_SIZE
from ._sphinx import OnionCircuit as OnionCircuit
from ._sphinx import PeeledOnion as PeeledOnion
from ._sphinx import SharedSecret as SharedSecret
from ._sphinx import build_onion as build_onion
from ._sphinx import peel_onion as peel_onion
from ._sphinx import shared_secret_of as shared_secret_of
from ._sphinx_blinding import BlindedHop as BlindedHop
from ._sphinx_blinding import BlindedPath as BlindedPath
from ._sphinx_blinding import UnblindedHop as UnblindedHop
from ._sphinx_blinding import blind_path as blind_path
from ._sphinx_blinding import unblind_hop as unblind_hop
from ._sphinx_errors import ReplayCacheFullError as ReplayCacheFullError
from ._sphinx_errors import SphinxUsageError as SphinxUsageError
from ._sphinx_failure import FAILURE_BODY_SIZE as FAILURE_BODY_SIZE
from ._sphinx_failure import build_failure as build_failure
from ._sphinx_failure import read_failure as read_failure
from ._sphinx_failure import wrap_failure as wrap_failure
from ._sphinx_message import BODY_SIZE as BODY_SIZE
from ._sphinx_message import MESSAGE_SIZE as MESSAGE_SIZE
from ._sphinx_replay import DEFAULT_REPLAY_ENTRIES as DEFAULT_REPLAY_ENTRIES
from ._sphinx_replay import ReplayCache as ReplayCache
from ._sphinx_surb import REPLY_BLOCK_SIZE as REPLY_BLOCK_SIZE
from ._sphinx_surb import ReplyKeys as ReplyKeys

__all__ = (
    "BODY_SIZE",
    "BlindedHop",
    "BlindedPath",
    "DEFAULT_REPLAY_ENTRIES",
    "FAILURE_BODY_SIZE",
    "HOP_PAYLOADS_SIZE",
    "MAX_HOPS",
    "MESSAGE_SIZE",
    "OnionCircuit",
    "PACKET_SIZE",
    "PeeledOnion",
    "REPLY_BLOCK_SIZE",
    "ReplayCache",
    "ReplayCacheFullError",
    "ReplyKeys",
    "SharedSecret",
    "SphinxUsageError",
    "UnblindedHop",
    "blind_path",
    "build_failure",
    "build_onion",
    "peel_onion",
    "read_failure",
    "shared_secret_of",
    "unblind_hop",
    "wrap_failure",
)
