"""The low-level API of dchat-privacy: building blocks beneath the everyday API.

:mod:`dchat_privacy` exports what a node needs: padding, the blind-token scheme
(issuer, client, wallet, redeemer and their wire records), onion keys, the
relay's :class:`OnionRelay`, first messages and reply blocks. This module holds
the rest:

- RSA blind signatures, RFC 9474 (RSABSSA-SHA384, four variants):
  ``BlindVariant``, ``Blinded``, ``prepare``, ``blind``, ``blind_sign``,
  ``finalize``, ``verify``; the blind tokens' building blocks: ``token_message``
  (what is signed), ``token_hash`` (the spent-set key), ``MAX_TOKENS_PER_REQUEST``
- Sphinx (BOLT 4): the packet itself (``build_onion``, ``peel_onion``,
  ``shared_secret_of``, ``PeeledOnion``, ``OnionCircuit``, ``SharedSecret``),
  failure messages returned along a route (``build_failure``, ``wrap_failure``,
  ``read_failure``), the replay cache (``ReplayCache``), a reply block owner's
  ``ReplyKeys``, route blinding (``blind_path``, ``unblind_hop``,
  ``BlindedPath``, ``BlindedHop``, ``UnblindedHop``), the sizes, and the errors
  a caller rarely catches.

Every name is importable from exactly one of :mod:`dchat_privacy` and this module.
"""

from __future__ import annotations

from ._rsabssa import Blinded as Blinded
from ._rsabssa import BlindVariant as BlindVariant
from ._rsabssa import blind as blind
from ._rsabssa import blind_sign as blind_sign
from ._rsabssa import finalize as finalize
from ._rsabssa import prepare as prepare
from ._rsabssa import verify as verify
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
from ._token_redeem import token_hash as token_hash
from ._tokens import MAX_TOKENS_PER_REQUEST as MAX_TOKENS_PER_REQUEST
from ._tokens import token_message as token_message

__all__ = (
    "BODY_SIZE",
    "BlindVariant",
    "Blinded",
    "BlindedHop",
    "BlindedPath",
    "DEFAULT_REPLAY_ENTRIES",
    "FAILURE_BODY_SIZE",
    "HOP_PAYLOADS_SIZE",
    "MAX_HOPS",
    "MAX_TOKENS_PER_REQUEST",
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
    "blind",
    "blind_path",
    "blind_sign",
    "build_failure",
    "build_onion",
    "finalize",
    "peel_onion",
    "prepare",
    "read_failure",
    "shared_secret_of",
    "token_hash",
    "token_message",
    "unblind_hop",
    "verify",
    "wrap_failure",
)
