"""The low-level API of dchat-privacy: building blocks beneath the everyday API.

:mod:`dchat_privacy` exports what a node needs: padding, the blind-token scheme
(issuer, client, wallet, redeemer), onion keys, the relay's ``OnionRelay``,
first messages and reply blocks, and contact proofs. This module holds the rest:

- RSA blind signatures, RFC 9474 (RSABSSA-SHA384, four variants):
  ``BlindVariant``, ``Blinded``, ``prepare``, ``blind``, ``blind_sign``,
  ``finalize``, ``verify`` and their errors; the blind tokens' wire records
  (``TokenRequest``, ``TokenIssuance``, ``TokenKey``, ``RedeemedToken``, their
  decoders) and building blocks: ``token_message`` (what is signed),
  ``token_hash`` (the spent-set key), ``MAX_TOKENS_PER_REQUEST``
- Sphinx (BOLT 4): the packet itself (``build_onion``, ``peel_onion``,
  ``shared_secret_of``, ``PeeledOnion``, ``OnionCircuit``, ``SharedSecret``),
  what ``OnionRelay`` returns (``Forward``, ``Deliver``, ``read_body``), failure
  messages returned along a route (``build_failure``, ``wrap_failure``,
  ``read_failure``), the replay cache (``ReplayCache``), reply blocks' parts
  (``ReplyBlock``, ``ReplyKeys``, ``MAX_REPLY_DATA``, ``ExpiredReplyError``), the
  supply of reply blocks given to a contact and the owner's persisted book
  (``ReplyGift``, ``encode_supply``, ``decode_supply``, ``MAX_SUPPLY``,
  ``book_to_bytes``, ``book_from_bytes``; protocol section 45), route blinding (``blind_path``,
  ``unblind_hop``, ``BlindedPath``, ``BlindedHop``, ``UnblindedHop``), the sizes
- zero-knowledge proofs: the Ristretto255 group over libsodium (``Scalar``,
  ``Element``, ``GROUP_ORDER``), the Fiat-Shamir ``Transcript`` (framed
  SHA-512), sigma proofs: Schnorr (``prove_dlog``, ``verify_dlog``),
  Chaum-Pedersen (``prove_dleq``, ``verify_dleq``), CDS OR-proofs
  (``prove_or``, ``verify_or``), ``SigmaProof``, ``OrProof``, ``MAX_BASES``,
  ``MAX_BRANCHES``; the contact proof's parts (``ContactKey``, ``ContactProof``,
  ``MAX_RING_SIZE``, ``RING_SIZE_CLASSES``, ``ring_statement``: what an owner
  signs over the ring it registers, protocol section 41)
- rotating mailbox tags (the node's messaging uses them): ``tag_seed``, ``tag_token``,
  ``TagSchedule``, ``TAG_EPOCH``, ``TAG_SECRET_SIZE``, ``MAX_TAG_EPOCH``, ``MAX_CATCH_UP``,
  ``TagInputError``
- cover traffic (the node's messaging uses it): ``CoverScheduler``, ``CoverPolicy``,
  ``CoverSend``, ``COVER_WINDOW``, ``MAX_COVER_BUDGET``, ``CoverInputError``
- the errors a caller rarely catches apart from their base class

Every name is importable from exactly one of :mod:`dchat_privacy` and this module.
"""

from __future__ import annotations

from ._blind_errors import BlindInputError as BlindInputError
from ._blind_errors import BlindSignatureError as BlindSignatureError
from ._blind_errors import BlindSigningFaultError as BlindSigningFaultError
from ._blind_errors import SpentSetFullError as SpentSetFullError
from ._blind_errors import TokenMessageError as TokenMessageError
from ._contact_proof import MAX_RING_SIZE as MAX_RING_SIZE
from ._contact_proof import RING_SIZE_CLASSES as RING_SIZE_CLASSES
from ._contact_proof import ContactKey as ContactKey
from ._contact_proof import ContactProof as ContactProof
from ._contact_proof import ring_statement as ring_statement
from ._cover import COVER_WINDOW as COVER_WINDOW
from ._cover import MAX_COVER_BUDGET as MAX_COVER_BUDGET
from ._cover import CoverInputError as CoverInputError
from ._cover import CoverPolicy as CoverPolicy
from ._cover import CoverScheduler as CoverScheduler
from ._cover import CoverSend as CoverSend
from ._mailbox_tags import MAX_CATCH_UP as MAX_CATCH_UP
from ._mailbox_tags import MAX_TAG_EPOCH as MAX_TAG_EPOCH
from ._mailbox_tags import TAG_EPOCH as TAG_EPOCH
from ._mailbox_tags import TAG_SECRET_SIZE as TAG_SECRET_SIZE
from ._mailbox_tags import TagInputError as TagInputError
from ._mailbox_tags import TagSchedule as TagSchedule
from ._mailbox_tags import tag_seed as tag_seed
from ._mailbox_tags import tag_token as tag_token
from ._ristretto import GROUP_ORDER as GROUP_ORDER
from ._ristretto import Element as Element
from ._ristretto import Scalar as Scalar
from ._rsabssa import Blinded as Blinded
from ._rsabssa import BlindVariant as BlindVariant
from ._rsabssa import blind as blind
from ._rsabssa import blind_sign as blind_sign
from ._rsabssa import finalize as finalize
from ._rsabssa import prepare as prepare
from ._rsabssa import verify as verify
from ._sigma import MAX_BASES as MAX_BASES
from ._sigma import MAX_BRANCHES as MAX_BRANCHES
from ._sigma import OrProof as OrProof
from ._sigma import SigmaProof as SigmaProof
from ._sigma import prove_dleq as prove_dleq
from ._sigma import prove_dlog as prove_dlog
from ._sigma import prove_or as prove_or
from ._sigma import verify_dleq as verify_dleq
from ._sigma import verify_dlog as verify_dlog
from ._sigma import verify_or as verify_or
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
from ._sphinx_errors import ExpiredReplyError as ExpiredReplyError
from ._sphinx_errors import MalformedPacketError as MalformedPacketError
from ._sphinx_errors import ReplayCacheFullError as ReplayCacheFullError
from ._sphinx_errors import ReplayedPacketError as ReplayedPacketError
from ._sphinx_errors import SphinxUsageError as SphinxUsageError
from ._sphinx_failure import FAILURE_BODY_SIZE as FAILURE_BODY_SIZE
from ._sphinx_failure import build_failure as build_failure
from ._sphinx_failure import read_failure as read_failure
from ._sphinx_failure import wrap_failure as wrap_failure
from ._sphinx_message import BODY_SIZE as BODY_SIZE
from ._sphinx_message import MESSAGE_SIZE as MESSAGE_SIZE
from ._sphinx_message import Deliver as Deliver
from ._sphinx_message import Forward as Forward
from ._sphinx_message import read_body as read_body
from ._sphinx_replay import DEFAULT_REPLAY_ENTRIES as DEFAULT_REPLAY_ENTRIES
from ._sphinx_replay import ReplayCache as ReplayCache
from ._sphinx_surb import MAX_REPLY_DATA as MAX_REPLY_DATA
from ._sphinx_surb import REPLY_BLOCK_SIZE as REPLY_BLOCK_SIZE
from ._sphinx_surb import ReplyBlock as ReplyBlock
from ._sphinx_surb import ReplyKeys as ReplyKeys
from ._surb_supply import MAX_SUPPLY as MAX_SUPPLY
from ._surb_supply import ReplyGift as ReplyGift
from ._surb_supply import book_from_bytes as book_from_bytes
from ._surb_supply import book_to_bytes as book_to_bytes
from ._surb_supply import decode_supply as decode_supply
from ._surb_supply import encode_supply as encode_supply
from ._token_redeem import RedeemedToken as RedeemedToken
from ._token_redeem import token_hash as token_hash
from ._tokens import MAX_TOKENS_PER_REQUEST as MAX_TOKENS_PER_REQUEST
from ._tokens import TokenIssuance as TokenIssuance
from ._tokens import TokenKey as TokenKey
from ._tokens import TokenRequest as TokenRequest
from ._tokens import decode_token_issuance as decode_token_issuance
from ._tokens import decode_token_request as decode_token_request
from ._tokens import token_message as token_message
from ._transcript import Transcript as Transcript
from ._zk_errors import ReplayedProofError as ReplayedProofError
from ._zk_errors import ZkDecodeError as ZkDecodeError
from ._zk_errors import ZkInputError as ZkInputError

__all__ = (
    "BODY_SIZE",
    "BlindInputError",
    "BlindSignatureError",
    "BlindSigningFaultError",
    "BlindVariant",
    "Blinded",
    "BlindedHop",
    "BlindedPath",
    "COVER_WINDOW",
    "ContactKey",
    "ContactProof",
    "CoverInputError",
    "CoverPolicy",
    "CoverScheduler",
    "CoverSend",
    "DEFAULT_REPLAY_ENTRIES",
    "Deliver",
    "Element",
    "ExpiredReplyError",
    "FAILURE_BODY_SIZE",
    "Forward",
    "GROUP_ORDER",
    "HOP_PAYLOADS_SIZE",
    "MAX_BASES",
    "MAX_BRANCHES",
    "MAX_CATCH_UP",
    "MAX_COVER_BUDGET",
    "MAX_HOPS",
    "MAX_REPLY_DATA",
    "MAX_RING_SIZE",
    "MAX_SUPPLY",
    "MAX_TAG_EPOCH",
    "MAX_TOKENS_PER_REQUEST",
    "MESSAGE_SIZE",
    "MalformedPacketError",
    "OnionCircuit",
    "OrProof",
    "PACKET_SIZE",
    "PeeledOnion",
    "REPLY_BLOCK_SIZE",
    "RING_SIZE_CLASSES",
    "RedeemedToken",
    "ReplayCache",
    "ReplayCacheFullError",
    "ReplayedPacketError",
    "ReplayedProofError",
    "ReplyBlock",
    "ReplyGift",
    "ReplyKeys",
    "Scalar",
    "SharedSecret",
    "SigmaProof",
    "SpentSetFullError",
    "SphinxUsageError",
    "TAG_EPOCH",
    "TAG_SECRET_SIZE",
    "TagInputError",
    "TagSchedule",
    "TokenIssuance",
    "TokenKey",
    "TokenMessageError",
    "TokenRequest",
    "Transcript",
    "UnblindedHop",
    "ZkDecodeError",
    "ZkInputError",
    "blind",
    "blind_path",
    "blind_sign",
    "book_from_bytes",
    "book_to_bytes",
    "build_failure",
    "build_onion",
    "decode_supply",
    "decode_token_issuance",
    "decode_token_request",
    "encode_supply",
    "finalize",
    "peel_onion",
    "prepare",
    "prove_dleq",
    "prove_dlog",
    "prove_or",
    "read_body",
    "read_failure",
    "ring_statement",
    "shared_secret_of",
    "tag_seed",
    "tag_token",
    "token_hash",
    "token_message",
    "unblind_hop",
    "verify",
    "verify_dleq",
    "verify_dlog",
    "verify_or",
    "wrap_failure",
)
