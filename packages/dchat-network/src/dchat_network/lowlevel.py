"""The low-level API of dchat-network: the sans-IO link and the relay protocol's messages.

:mod:`dchat_network` exports what a user of the network layer needs: opening
and serving links over trio (:func:`connect`, :func:`open_link`,
:func:`serve_links`, :class:`Link`), the relay server and client
(:class:`RelayServer`, :class:`RelayClient`) with their store protocols, the
relay over trio (:class:`RelayHost` serving it; a client's
:func:`relay_session` / :class:`RelaySession`, standing :class:`MailboxLink`
and deposit :class:`RelayPool`) and the main errors. This module holds the
rest, for code that implements or tests the protocols themselves: the sans-IO
:class:`LinkConnection` and its events and states, each relay request and
reply class with the codec (:func:`encode_relay_message`,
:func:`decode_relay_message`), the protocol limits (``MAX_*``), and the
specific framing and state errors, :class:`PullWakeups` (the sans-IO
wake-up bookkeeping of held pulls, for hosts of the relay server), and the
validators' probes (:class:`ProbeChallenge`, :func:`answer_probe`,
:func:`check_probe_answer`, one probe over trio :func:`probe_once`,
:class:`ProbeBook`), delivery receipts and their audits
(:class:`DeliveryReceipt`, :class:`ReceiptBook` and its :class:`ReceiptStore`,
:class:`ReceiptBatch`, a relay's automatic claims (:class:`ClaimSettings`,
the sans-IO :class:`ClaimPolicy` and its trio loop :func:`run_claims` with a
:class:`StoreRunner`),
:class:`AuditAnswer`, :func:`check_audit`, the RFC 6962 Merkle helpers
:func:`merkle_root`, :func:`merkle_path`, :func:`verify_merkle_path`), the
relay's abuse book (:class:`RelayGuard` with its :class:`TokenBucket` and
:class:`PutBudget`, :class:`DeliveredSet`), the order the relay host hands
requests to its database worker in (:class:`WorkQueue`, fed by the
server's :class:`RelayWork`), put authorization (the relay's
:class:`PutAuthorizer`, the sender's :class:`PutAuthClient`, a
:class:`PowChallenge`, :func:`token_hash`, :func:`auth_token`,
:func:`auth_pow`, :func:`solve_pow`, :func:`pow_ok`; by contact proof, section
41: the relay's :class:`ContactRings`, :class:`ProofContexts`,
:func:`auth_proof`, :func:`prove_deposits`, :class:`PutProofError` and the
messages :class:`RingSet`, :class:`RingHeld`, :class:`ZkGet`,
:class:`ZkContexts`), a listener's
:class:`ConnectionGate`, the attachment blob messages (:class:`BlobOpen`, ...),
the channel topic messages (:class:`TopicPublish`, ...), :class:`MemoryTopicStore`
and a node's :class:`TopicSync`, its cover traffic's :class:`CoverSender`
and their trio transfers (:func:`upload_blob`, :func:`download_blob`,
:func:`push_blob`, :func:`fetch_blob_file`, :func:`drop_blob`), and UPnP
IGD port mapping for relays behind a router
(:class:`PortMapper` and its error :class:`UpnpError`); paid blind tokens at
relays (:class:`TokenShop` with its :class:`TokenSettings`, :class:`TokenStore`,
signed :class:`TokenOffer`, :func:`buy_request`, :func:`purchase_ref`,
:func:`auth_paid`, :class:`TokenSaleError`, the ``tk_*`` messages; a buyer's
:class:`TokenPurchases` book of :class:`PendingPurchase` records, kept from payment until
signed, with :class:`PurchaseBookError`); :class:`RelayAddress`
(from dchat-core: ``[NODEID@]HOST:PORT``, how a user names its home relays);
standing links between known peers (validators): :class:`QueuedLink` with its
:class:`DialSchedule`, and :func:`read_known_peer` for the links they dial in;
onion deposits (protocol §39): a relay's :class:`OnionKeys` and their signed
:class:`OnionKeyRecord`, :func:`build_onion_put`, :func:`choose_onion_route`,
reply blocks over relays (protocol §45: :func:`build_reply_gift`, :func:`reply_route`,
:func:`split_reply_route`, ``REPLY_PREFIX``),
:func:`split_envelope` and the mailbox relay's :class:`Reassembly`,
:func:`split_route`, the messages (:class:`OnionPut`, ...); prekey fetches
through onions (protocol §46): :func:`build_onion_fetch`, the mailbox relay's
:func:`answer_fetch`, :func:`open_fetch_reply`, :class:`OnionFetchError`,
the ``onion_fetch`` messages (:class:`OnionFetchPut`, :class:`OnionFetched`); the relay's debug
:class:`ObserveLog`, and :func:`set_source_address` (the local address links
are dialled from).
"""

from __future__ import annotations

from dchat_core import RelayAddress as RelayAddress

from ._blob_transfer import download_blob as download_blob
from ._blob_transfer import drop_blob as drop_blob
from ._blob_transfer import drop_blobs as drop_blobs
from ._blob_transfer import fetch_blob_file as fetch_blob_file
from ._blob_transfer import push_blob as push_blob
from ._blob_transfer import upload_blob as upload_blob
from ._claim_driver import StoreRunner as StoreRunner
from ._claim_driver import run_claims as run_claims
from ._claims import ClaimPolicy as ClaimPolicy
from ._claims import ClaimSettings as ClaimSettings
from ._cover_sender import CoverSender as CoverSender
from ._errors import FrameTooLargeError as FrameTooLargeError
from ._errors import LinkStateError as LinkStateError
from ._errors import OnionFetchError as OnionFetchError
from ._errors import OnionKeyError as OnionKeyError
from ._errors import OnionRefusedError as OnionRefusedError
from ._errors import OnionRouteError as OnionRouteError
from ._errors import UpnpError as UpnpError
from ._link import HandshakeComplete as HandshakeComplete
from ._link import LinkClosed as LinkClosed
from ._link import LinkConnection as LinkConnection
from ._link import LinkEvent as LinkEvent
from ._link import LinkState as LinkState
from ._link import MessageReceived as MessageReceived
from ._link import refusal_frame as refusal_frame
from ._onion_fetch import FETCH_ANSWER_SIZE as FETCH_ANSWER_SIZE
from ._onion_fetch import MAX_FETCHED as MAX_FETCHED
from ._onion_fetch import answer_fetch as answer_fetch
from ._onion_fetch import build_onion_fetch as build_onion_fetch
from ._onion_fetch import open_fetch_reply as open_fetch_reply
from ._probe import ProbeChallenge as ProbeChallenge
from ._probe import answer_probe as answer_probe
from ._probe import check_probe_answer as check_probe_answer
from ._probe_driver import ProbeBook as ProbeBook
from ._probe_driver import probe_once as probe_once
from ._put_auth import PowChallenge as PowChallenge
from ._put_auth import PutAuthClient as PutAuthClient
from ._put_auth import PutAuthorizer as PutAuthorizer
from ._put_auth import auth_paid as auth_paid
from ._put_auth import auth_pow as auth_pow
from ._put_auth import auth_token as auth_token
from ._put_auth import pow_ok as pow_ok
from ._put_auth import solve_pow as solve_pow
from ._put_auth import token_hash as token_hash
from ._put_proofs import ContactRings as ContactRings
from ._put_proofs import ProofContexts as ProofContexts
from ._put_proofs import PutProofError as PutProofError
from ._put_proofs import auth_proof as auth_proof
from ._put_proofs import prove_deposits as prove_deposits
from ._queued_link import DialSchedule as DialSchedule
from ._queued_link import QueuedLink as QueuedLink
from ._queued_link import read_known_peer as read_known_peer
from ._receipts import AuditAnswer as AuditAnswer
from ._receipts import DeliveryReceipt as DeliveryReceipt
from ._receipts import ReceiptBatch as ReceiptBatch
from ._receipts import ReceiptBook as ReceiptBook
from ._receipts import ReceiptStore as ReceiptStore
from ._receipts import check_audit as check_audit
from ._receipts import merkle_path as merkle_path
from ._receipts import merkle_root as merkle_root
from ._receipts import verify_merkle_path as verify_merkle_path
from ._relay import MAX_BATCH as MAX_BATCH
from ._relay import MAX_BATCH_BYTES as MAX_BATCH_BYTES
from ._relay import MAX_PREKEY_BUNDLE as MAX_PREKEY_BUNDLE
from ._relay import MAX_PREKEY_PUT as MAX_PREKEY_PUT
from ._relay import MAX_PREKEYS_HELD as MAX_PREKEYS_HELD
from ._relay import MAX_RETRY_MS as MAX_RETRY_MS
from ._relay import MAX_WAIT_MS as MAX_WAIT_MS
from ._relay import RelayAck as RelayAck
from ._relay import RelayAcked as RelayAcked
from ._relay import RelayAudit as RelayAudit
from ._relay import RelayAuditAnswer as RelayAuditAnswer
from ._relay import RelayBatch as RelayBatch
from ._relay import RelayBusy as RelayBusy
from ._relay import RelayFetch as RelayFetch
from ._relay import RelayPrekeyBundle as RelayPrekeyBundle
from ._relay import RelayPrekeyCount as RelayPrekeyCount
from ._relay import RelayPrekeyGet as RelayPrekeyGet
from ._relay import RelayPrekeyPut as RelayPrekeyPut
from ._relay import RelayPrekeysHeld as RelayPrekeysHeld
from ._relay import RelayProbe as RelayProbe
from ._relay import RelayProbeAnswer as RelayProbeAnswer
from ._relay import RelayPull as RelayPull
from ._relay import RelayPut as RelayPut
from ._relay import RelayPutMany as RelayPutMany
from ._relay import RelayReceipt as RelayReceipt
from ._relay import RelayReceiptTaken as RelayReceiptTaken
from ._relay import RelayStored as RelayStored
from ._relay import RelayStoredMany as RelayStoredMany
from ._relay import RelayTokenSet as RelayTokenSet
from ._relay import RelayTokensHeld as RelayTokensHeld
from ._relay import decode_relay_message as decode_relay_message
from ._relay import encode_relay_message as encode_relay_message
from ._relay_blob_wire import MAX_BLOB_PIECE as MAX_BLOB_PIECE
from ._relay_blob_wire import BlobAt as BlobAt
from ._relay_blob_wire import BlobData as BlobData
from ._relay_blob_wire import BlobDelete as BlobDelete
from ._relay_blob_wire import BlobGet as BlobGet
from ._relay_blob_wire import BlobGone as BlobGone
from ._relay_blob_wire import BlobOpen as BlobOpen
from ._relay_blob_wire import BlobPut as BlobPut
from ._relay_limits import DeliveredSet as DeliveredSet
from ._relay_limits import PutBudget as PutBudget
from ._relay_limits import RelayGuard as RelayGuard
from ._relay_limits import TokenBucket as TokenBucket
from ._relay_observe import ObserveLog as ObserveLog
from ._relay_onion import MAX_ONION_ENVELOPE as MAX_ONION_ENVELOPE
from ._relay_onion import OnionDeposit as OnionDeposit
from ._relay_onion import OnionFetch as OnionFetch
from ._relay_onion import OnionHop as OnionHop
from ._relay_onion import OnionKeyRecord as OnionKeyRecord
from ._relay_onion import OnionKeys as OnionKeys
from ._relay_onion import Reassembly as Reassembly
from ._relay_onion import build_onion_put as build_onion_put
from ._relay_onion import choose_onion_route as choose_onion_route
from ._relay_onion import split_envelope as split_envelope
from ._relay_onion_pool import OnionPool as OnionPool
from ._relay_onion_pool import onion_route as onion_route
from ._relay_onion_pool import split_route as split_route
from ._relay_onion_reply import REPLY_PREFIX as REPLY_PREFIX
from ._relay_onion_reply import build_reply_gift as build_reply_gift
from ._relay_onion_reply import reply_route as reply_route
from ._relay_onion_reply import split_reply_route as split_reply_route
from ._relay_onion_wire import ONION_PACKET_SIZE as ONION_PACKET_SIZE
from ._relay_onion_wire import OnionDone as OnionDone
from ._relay_onion_wire import OnionFetched as OnionFetched
from ._relay_onion_wire import OnionFetchPut as OnionFetchPut
from ._relay_onion_wire import OnionKeyIs as OnionKeyIs
from ._relay_onion_wire import OnionKeyQuery as OnionKeyQuery
from ._relay_onion_wire import OnionPut as OnionPut
from ._relay_proof_wire import RingHeld as RingHeld
from ._relay_proof_wire import RingSet as RingSet
from ._relay_proof_wire import ZkContexts as ZkContexts
from ._relay_proof_wire import ZkGet as ZkGet
from ._relay_queue import WorkQueue as WorkQueue
from ._relay_server import ARRIVAL_GRANULARITY as ARRIVAL_GRANULARITY
from ._relay_server import RelayWork as RelayWork
from ._relay_server import StoredEntry as StoredEntry
from ._relay_token_wire import TokenBuy as TokenBuy
from ._relay_token_wire import TokenIssued as TokenIssued
from ._relay_token_wire import TokenOfferAsk as TokenOfferAsk
from ._relay_token_wire import TokenOffered as TokenOffered
from ._relay_topic_wire import MAX_POST as MAX_POST
from ._relay_topic_wire import TopicPosts as TopicPosts
from ._relay_topic_wire import TopicPublish as TopicPublish
from ._relay_topic_wire import TopicPublished as TopicPublished
from ._relay_topic_wire import TopicRead as TopicRead
from ._relay_topics import MemoryTopicStore as MemoryTopicStore
from ._relay_wakeups import PullWakeups as PullWakeups
from ._token_purchases import PendingPurchase as PendingPurchase
from ._token_purchases import PurchaseBookError as PurchaseBookError
from ._token_purchases import TokenPurchases as TokenPurchases
from ._token_shop import TokenOffer as TokenOffer
from ._token_shop import TokenSaleError as TokenSaleError
from ._token_shop import TokenSettings as TokenSettings
from ._token_shop import TokenShop as TokenShop
from ._token_shop import TokenStore as TokenStore
from ._token_shop import buy_request as buy_request
from ._token_shop import purchase_ref as purchase_ref
from ._topic_sync import TopicSync as TopicSync
from ._trio import ConnectionGate as ConnectionGate
from ._trio import set_source_address as set_source_address
from ._upnp_mapper import PortMapper as PortMapper

__all__ = (
    "ARRIVAL_GRANULARITY",
    "AuditAnswer",
    "BlobAt",
    "BlobData",
    "BlobDelete",
    "BlobGet",
    "BlobGone",
    "BlobOpen",
    "BlobPut",
    "ClaimPolicy",
    "ClaimSettings",
    "ConnectionGate",
    "ContactRings",
    "CoverSender",
    "DeliveredSet",
    "DeliveryReceipt",
    "DialSchedule",
    "FETCH_ANSWER_SIZE",
    "FrameTooLargeError",
    "HandshakeComplete",
    "LinkClosed",
    "LinkConnection",
    "LinkEvent",
    "LinkState",
    "LinkStateError",
    "MAX_BATCH",
    "MAX_BATCH_BYTES",
    "MAX_BLOB_PIECE",
    "MAX_FETCHED",
    "MAX_ONION_ENVELOPE",
    "MAX_POST",
    "MAX_PREKEYS_HELD",
    "MAX_PREKEY_BUNDLE",
    "MAX_PREKEY_PUT",
    "MAX_RETRY_MS",
    "MAX_WAIT_MS",
    "MemoryTopicStore",
    "MessageReceived",
    "ONION_PACKET_SIZE",
    "ObserveLog",
    "OnionDeposit",
    "OnionDone",
    "OnionFetch",
    "OnionFetchError",
    "OnionFetchPut",
    "OnionFetched",
    "OnionHop",
    "OnionKeyError",
    "OnionKeyIs",
    "OnionKeyQuery",
    "OnionKeyRecord",
    "OnionKeys",
    "OnionPool",
    "OnionPut",
    "OnionRefusedError",
    "OnionRouteError",
    "PendingPurchase",
    "PortMapper",
    "PowChallenge",
    "ProbeBook",
    "ProbeChallenge",
    "ProofContexts",
    "PullWakeups",
    "PurchaseBookError",
    "PutAuthClient",
    "PutAuthorizer",
    "PutBudget",
    "PutProofError",
    "QueuedLink",
    "REPLY_PREFIX",
    "Reassembly",
    "ReceiptBatch",
    "ReceiptBook",
    "ReceiptStore",
    "RelayAck",
    "RelayAcked",
    "RelayAddress",
    "RelayAudit",
    "RelayAuditAnswer",
    "RelayBatch",
    "RelayBusy",
    "RelayFetch",
    "RelayGuard",
    "RelayPrekeyBundle",
    "RelayPrekeyCount",
    "RelayPrekeyGet",
    "RelayPrekeyPut",
    "RelayPrekeysHeld",
    "RelayProbe",
    "RelayProbeAnswer",
    "RelayPull",
    "RelayPut",
    "RelayPutMany",
    "RelayReceipt",
    "RelayReceiptTaken",
    "RelayStored",
    "RelayStoredMany",
    "RelayTokenSet",
    "RelayTokensHeld",
    "RelayWork",
    "RingHeld",
    "RingSet",
    "StoreRunner",
    "StoredEntry",
    "TokenBucket",
    "TokenBuy",
    "TokenIssued",
    "TokenOffer",
    "TokenOfferAsk",
    "TokenOffered",
    "TokenPurchases",
    "TokenSaleError",
    "TokenSettings",
    "TokenShop",
    "TokenStore",
    "TopicPosts",
    "TopicPublish",
    "TopicPublished",
    "TopicRead",
    "TopicSync",
    "UpnpError",
    "WorkQueue",
    "ZkContexts",
    "ZkGet",
    "answer_fetch",
    "answer_probe",
    "auth_paid",
    "auth_pow",
    "auth_proof",
    "auth_token",
    "build_onion_fetch",
    "build_onion_put",
    "build_reply_gift",
    "buy_request",
    "check_audit",
    "check_probe_answer",
    "choose_onion_route",
    "decode_relay_message",
    "download_blob",
    "drop_blob",
    "drop_blobs",
    "encode_relay_message",
    "fetch_blob_file",
    "merkle_path",
    "merkle_root",
    "onion_route",
    "open_fetch_reply",
    "pow_ok",
    "probe_once",
    "prove_deposits",
    "purchase_ref",
    "push_blob",
    "read_known_peer",
    "refusal_frame",
    "reply_route",
    "run_claims",
    "set_source_address",
    "solve_pow",
    "split_envelope",
    "split_reply_route",
    "split_route",
    "token_hash",
    "upload_blob",
    "verify_merkle_path",
)
