"""The low-level API of dchat-chain: building blocks beneath the everyday API.

:mod:`dchat_chain` itself exports what a typical user of the chain needs (the
engine, blocks and certificates, the chain applications, transactions, mempool,
light client and the main errors). This module holds the rest, for code that
implements or drives the parts the everyday API wraps: a validator node, an
application of its own, a simulation or a test harness.

- consensus messages and votes: ``ConsensusMessage``, ``Proposal``, ``Vote``,
  ``VoteKind``, ``Decided``, ``decode_message``, ``Step``, ``SignatureCache``
- the application contract's records: ``BlockContext``, ``BlockResult``,
  ``TxMeta``, ``ValidatorUpdate``, ``AppQueryResult``, ``BlockSource``,
  ``execute_block``
- block store, replay and block sync: ``BlockStore``, ``MemoryBlockStore``,
  ``replay``, ``BlockSyncClient``, ``SyncRequest``, ``SyncResponse``,
  ``serve_sync``
- a validator's durable store and application: ``BlockLog`` (what a database
  implements), ``MemoryBlockLog``, ``DurableBlockStore``, ``IndexedApp``,
  ``TxStatus``, ``genesis_kind``, ``replay_store``, ``load_snapshot``,
  ``account_key``
- serving and reading certified state (light clients over a node API):
  ``ValidatorSetLog``, ``certified_height``, ``certified_query``,
  ``headers_page``, ``block_txs_answer``, ``answer_fields``, ``MAX_HEADERS``; ``LightReader``,
  ``LightRead``, ``genesis_anchor``, ``parse_headers``, ``parse_proof``,
  ``encode_light_state``, ``decode_light_state``, ``MAX_LIGHT_STATE_SIZE``; the
  blocking shell keeping a reader in a file, ``WalletLightReader`` with
  ``light_state_path``, ``read_light_state``, ``write_light_state``
- the validator driver (engine, timers, pacing, block sync, gossip around one
  validator, sans-IO) and its effects and peer wire: ``ValidatorDriver``,
  ``DriverEffect``, ``SaveCheckpoint``, ``StoreBlock``, ``StoreSynced``,
  ``SendToPeers``, ``RequestSync``, ``ReportEvidence``, ``resume_point``,
  ``store_effect``, ``PeerTag``, ``encode_peer_message``,
  ``split_peer_message``, ``encode_txs``, ``decode_txs``, ``MAX_GOSSIP_TXS``;
  peers' configured addresses ``PeerAddress``, ``parse_peer``,
  ``PeerAddressError``; per-height timing bookkeeping ``HeightTimeline``,
  ``HeightTrace``
- the relay directory and home-relay choice (sans-IO): ``DirectoryRead``,
  ``DirectoryView``, ``RelayListing``, ``decode_relay_index``,
  ``decode_relay_listing``, ``decode_relay_bond``, ``epoch_score``, ``epoch_delivered``,
  ``decode_relay_earnings``, ``relay_earnings_key``, ``relay_listing_key``, ``relay_bond_key``,
  ``DirectoryAnswerError``; ``choose_home_relays``,
  ``ChoicePolicy``, ``RelayDiscovery``, ``HomeRelays``, ``PinnedRelay``, ``operator_groups`` and
  ``UnsafeDirectoryError`` (``SingleOperatorViewError``,
  ``NotEnoughRelaysError``, ``NoDiverseRouteError``), ``PinnedRelaysError``; onion routes
  from the same view: ``OnionDirectory`` (stored as ``ONION_DIRECTORY_FILE``,
  ``OnionDirectoryError``), started at a node's pinned guards: ``GuardedRoutes``,
  ``GuardPolicy``, ``Guard``, ``pick_guards`` (stored under ``GUARDS_KEY``, ``OnionGuardsError``)
  per-height timing bookkeeping ``HeightTimeline``, ``sent_step``
- validator set-up (sans-IO): ``ValidatorKeys`` and its key-file records
  ``encode_validator_keys``, ``decode_validator_keys``, ``encode_wallet_key``,
  ``decode_wallet_key``, ``KeyRecordError``; local testnets ``NetPlan``,
  ``plan_testnet``, ``PlannedTestnet``, ``PlannedValidator``
- Merkle trees and proofs: ``MerkleTree``, ``MerkleProof``, ``verify_proof``,
  ``tx_hash``, ``txs_root``, ``tx_inclusion_proof``, ``verify_tx_inclusion``
- state storage and snapshots: ``StateStore``, ``StateSnapshot``
- misbehaviour evidence: ``DuplicateVoteEvidence``, ``EvidenceVerifier``,
  ``validator_id_of``, ``RelayFaultEvidence``
- payment channels off chain: ``ChannelBook``, ``ChannelRecord``,
  ``ChannelOffer``, ``ChannelConsent``, ``ChannelUpdate``, ``ChannelMessage``,
  ``encode_channel_text``, ``decode_channel_text``; a wallet's book kept in a
  file, ``ChannelFile``
- chain-specific helpers: ``ChannelState``, ``channel_open_terms``,
  ``payment_channel_id``, ``chat_channel_id``, chat channels' order commitments
  (``channel_key``, ``order_key``, ``OrderRecord``, ``decode_order_record``,
  ``decode_channel_next``), ``solve_pow``, ``relay_directory``
- payments that name what they pay for (a transfer's ``ref``): ``payment_key``,
  ``PaymentRecord``, ``decode_payment_record``
- stealth payments to one-time accounts (a transfer's ``stealth`` memo):
  ``StealthKeys``, ``StealthMetaAddress``, ``StealthMemo``, ``stealth_payment``,
  ``StealthFormatError``, ``STEALTH_MEMO_SIZE``, ``META_ADDRESS_PREFIX``; the
  wallet's verified scan ``StealthScan``, ``StealthFind``, ``stealth_transfers``,
  ``MAX_STEALTH_FINDS``, ``MAX_STEALTH_OWNERS`` (one scan, several keys), kept
  sealed in a file by ``StealthScanFile``; background scans wait ``scan_delay``
  (``SCAN_JITTER``)
- public handles (chat chain): ``normalize_handle``, ``handle_key``,
  ``handle_work_bits``, ``solve_handle_pow``, ``InvalidHandleError``; the
  verified lookup ``HandleLookup`` and its ``HandleRecord``; the owner's
  transactions ``HandleOwner``
- guardian recovery on the chat chain (a user node's side): the planner
  ``RecoveryChain`` of ``RecoveryTask`` s into ``ChainStep`` s, and the node's
  memory of them ``RecoveryChainBook``
- the fine-grained errors under the roots that :mod:`dchat_chain` exports (the
  typed transaction rejections, vote, proposal, evidence, validator-set,
  snapshot, store, mempool, light-client, answer and channel errors); catching
  the root still catches them.

Every name is importable from exactly one of :mod:`dchat_chain` and this module.
"""

from __future__ import annotations

from ._app import AppQueryResult as AppQueryResult
from ._app import BlockContext as BlockContext
from ._app import BlockResult as BlockResult
from ._app import TxMeta as TxMeta
from ._app import ValidatorUpdate as ValidatorUpdate
from ._block_chain import execute_block as execute_block
from ._block_commit import VoteKind as VoteKind
from ._block_log import BlockLog as BlockLog
from ._block_log import DurableBlockStore as DurableBlockStore
from ._block_log import MemoryBlockLog as MemoryBlockLog
from ._block_merkle import tx_hash as tx_hash
from ._block_merkle import tx_inclusion_proof as tx_inclusion_proof
from ._block_merkle import txs_root as txs_root
from ._block_merkle import verify_tx_inclusion as verify_tx_inclusion
from ._blockstore import BlockStore as BlockStore
from ._blockstore import MemoryBlockStore as MemoryBlockStore
from ._blockstore import replay as replay
from ._channel_book import ChannelBook as ChannelBook
from ._channel_book import ChannelRecord as ChannelRecord
from ._channel_file import ChannelFile as ChannelFile
from ._channel_messages import ChannelConsent as ChannelConsent
from ._channel_messages import ChannelMessage as ChannelMessage
from ._channel_messages import ChannelOffer as ChannelOffer
from ._channel_messages import ChannelUpdate as ChannelUpdate
from ._channel_messages import decode_channel_text as decode_channel_text
from ._channel_messages import encode_channel_text as encode_channel_text
from ._channels import ChannelState as ChannelState
from ._channels import channel_open_terms as channel_open_terms
from ._channels import payment_channel_id as payment_channel_id
from ._chat_channels import OrderRecord as OrderRecord
from ._chat_channels import channel_key as channel_key
from ._chat_channels import chat_channel_id as chat_channel_id
from ._chat_channels import decode_channel_next as decode_channel_next
from ._chat_channels import decode_order_record as decode_order_record
from ._chat_channels import order_key as order_key
from ._chat_directory import relay_directory as relay_directory
from ._chat_handles import handle_key as handle_key
from ._chat_identity import solve_pow as solve_pow
from ._consensus_messages import ConsensusMessage as ConsensusMessage
from ._consensus_messages import Decided as Decided
from ._consensus_messages import Proposal as Proposal
from ._consensus_messages import Vote as Vote
from ._consensus_messages import decode_message as decode_message
from ._consensus_types import BlockSource as BlockSource
from ._consensus_types import Step as Step
from ._consensus_votes import SignatureCache as SignatureCache
from ._currency_staking import EvidenceVerifier as EvidenceVerifier
from ._currency_staking import validator_id_of as validator_id_of
from ._errors import ChainAnswerError as ChainAnswerError
from ._errors import ChannelError as ChannelError
from ._errors import ChannelFileError as ChannelFileError
from ._errors import CorruptStoreError as CorruptStoreError
from ._errors import InvalidEvidenceError as InvalidEvidenceError
from ._errors import InvalidProposalError as InvalidProposalError
from ._errors import InvalidValidatorSetError as InvalidValidatorSetError
from ._errors import InvalidVoteError as InvalidVoteError
from ._errors import KeyRecordError as KeyRecordError
from ._errors import LightStateError as LightStateError
from ._errors import NotCertifiedError as NotCertifiedError
from ._errors import PeerAddressError as PeerAddressError
from ._errors import StaleAnswerError as StaleAnswerError
from ._evidence import DuplicateVoteEvidence as DuplicateVoteEvidence
from ._handle_lookup import HandleLookup as HandleLookup
from ._handle_lookup import HandleRecord as HandleRecord
from ._handle_names import InvalidHandleError as InvalidHandleError
from ._handle_names import handle_work_bits as handle_work_bits
from ._handle_names import normalize_handle as normalize_handle
from ._handle_names import solve_handle_pow as solve_handle_pow
from ._handle_owner import HandleOwner as HandleOwner
from ._height_timeline import HeightTimeline as HeightTimeline
from ._height_timeline import HeightTrace as HeightTrace
from ._height_timeline import sent_step as sent_step
from ._indexed_app import IndexedApp as IndexedApp
from ._indexed_app import TxStatus as TxStatus
from ._indexed_app import genesis_kind as genesis_kind
from ._indexed_app import load_snapshot as load_snapshot
from ._indexed_app import replay_store as replay_store
from ._light import InvalidStateProofError as InvalidStateProofError
from ._light import UnexpectedHeaderError as UnexpectedHeaderError
from ._light import UntrustedValidatorsError as UntrustedValidatorsError
from ._light import UnverifiedHeaderError as UnverifiedHeaderError
from ._light_answers import parse_headers as parse_headers
from ._light_answers import parse_proof as parse_proof
from ._light_file import WalletLightReader as WalletLightReader
from ._light_file import light_state_path as light_state_path
from ._light_file import read_light_state as read_light_state
from ._light_file import write_light_state as write_light_state
from ._light_reader import LightRead as LightRead
from ._light_reader import LightReader as LightReader
from ._light_reader import genesis_anchor as genesis_anchor
from ._light_serve import MAX_HEADERS as MAX_HEADERS
from ._light_serve import ValidatorSetLog as ValidatorSetLog
from ._light_serve import answer_fields as answer_fields
from ._light_serve import block_txs_answer as block_txs_answer
from ._light_serve import certified_height as certified_height
from ._light_serve import certified_query as certified_query
from ._light_serve import headers_page as headers_page
from ._light_state import MAX_LIGHT_STATE_SIZE as MAX_LIGHT_STATE_SIZE
from ._light_state import decode_light_state as decode_light_state
from ._light_state import encode_light_state as encode_light_state
from ._light_state import light_state_name as light_state_name
from ._mempool import DuplicateTransactionError as DuplicateTransactionError
from ._mempool import MempoolFullError as MempoolFullError
from ._merkle import MerkleProof as MerkleProof
from ._merkle import MerkleTree as MerkleTree
from ._merkle import verify_proof as verify_proof
from ._onion_guards import GUARDS_KEY as GUARDS_KEY
from ._onion_guards import Guard as Guard
from ._onion_guards import GuardedRoutes as GuardedRoutes
from ._onion_guards import GuardPolicy as GuardPolicy
from ._onion_guards import OnionGuardsError as OnionGuardsError
from ._onion_guards import pick_guards as pick_guards
from ._onion_routes import ONION_DIRECTORY_FILE as ONION_DIRECTORY_FILE
from ._onion_routes import NoDiverseRouteError as NoDiverseRouteError
from ._onion_routes import OnionDirectory as OnionDirectory
from ._onion_routes import OnionDirectoryError as OnionDirectoryError
from ._payments import PaymentRecord as PaymentRecord
from ._payments import decode_payment_record as decode_payment_record
from ._payments import payment_key as payment_key
from ._recovery_book import RecoveryChainBook as RecoveryChainBook
from ._recovery_chain import ChainStep as ChainStep
from ._recovery_chain import RecoveryChain as RecoveryChain
from ._recovery_chain import RecoveryTask as RecoveryTask
from ._relay_choice import ChoicePolicy as ChoicePolicy
from ._relay_choice import HomeRelays as HomeRelays
from ._relay_choice import NotEnoughRelaysError as NotEnoughRelaysError
from ._relay_choice import PinnedRelay as PinnedRelay
from ._relay_choice import PinnedRelaysError as PinnedRelaysError
from ._relay_choice import RelayDiscovery as RelayDiscovery
from ._relay_choice import SingleOperatorViewError as SingleOperatorViewError
from ._relay_choice import UnsafeDirectoryError as UnsafeDirectoryError
from ._relay_choice import choose_home_relays as choose_home_relays
from ._relay_choice import operator_groups as operator_groups
from ._relay_directory import DirectoryAnswerError as DirectoryAnswerError
from ._relay_directory import DirectoryRead as DirectoryRead
from ._relay_directory import DirectoryView as DirectoryView
from ._relay_directory import RelayListing as RelayListing
from ._relay_directory import decode_relay_bond as decode_relay_bond
from ._relay_directory import decode_relay_earnings as decode_relay_earnings
from ._relay_directory import decode_relay_index as decode_relay_index
from ._relay_directory import decode_relay_listing as decode_relay_listing
from ._relay_directory import epoch_delivered as epoch_delivered
from ._relay_directory import epoch_score as epoch_score
from ._relay_directory import relay_bond_key as relay_bond_key
from ._relay_directory import relay_earnings_key as relay_earnings_key
from ._relay_directory import relay_listing_key as relay_listing_key
from ._relay_faults import RelayFaultEvidence as RelayFaultEvidence
from ._snapshot import SnapshotError as SnapshotError
from ._snapshot import StateSnapshot as StateSnapshot
from ._state import StateStore as StateStore
from ._state_records import account_key as account_key
from ._stealth import META_ADDRESS_PREFIX as META_ADDRESS_PREFIX
from ._stealth import STEALTH_MEMO_SIZE as STEALTH_MEMO_SIZE
from ._stealth import StealthFormatError as StealthFormatError
from ._stealth import StealthKeys as StealthKeys
from ._stealth import StealthMemo as StealthMemo
from ._stealth import StealthMetaAddress as StealthMetaAddress
from ._stealth import stealth_payment as stealth_payment
from ._stealth_file import StealthScanFile as StealthScanFile
from ._stealth_scan import MAX_STEALTH_FINDS as MAX_STEALTH_FINDS
from ._stealth_scan import MAX_STEALTH_OWNERS as MAX_STEALTH_OWNERS
from ._stealth_scan import SCAN_JITTER as SCAN_JITTER
from ._stealth_scan import StealthFind as StealthFind
from ._stealth_scan import StealthScan as StealthScan
from ._stealth_scan import scan_delay as scan_delay
from ._stealth_scan import stealth_transfers as stealth_transfers
from ._sync import BlockSyncClient as BlockSyncClient
from ._sync import SyncRequest as SyncRequest
from ._sync import SyncResponse as SyncResponse
from ._sync import serve_sync as serve_sync
from ._testnet import NetPlan as NetPlan
from ._testnet import PlannedTestnet as PlannedTestnet
from ._testnet import PlannedValidator as PlannedValidator
from ._testnet import plan_testnet as plan_testnet
from ._tx_errors import BadTransactionSignatureError as BadTransactionSignatureError
from ._tx_errors import FeeTooLowError as FeeTooLowError
from ._tx_errors import FutureNonceError as FutureNonceError
from ._tx_errors import InsufficientFundsError as InsufficientFundsError
from ._tx_errors import MalformedTransactionError as MalformedTransactionError
from ._tx_errors import NonceError as NonceError
from ._tx_errors import RejectedTransactionError as RejectedTransactionError
from ._tx_errors import ReplayedNonceError as ReplayedNonceError
from ._tx_errors import UnauthorizedError as UnauthorizedError
from ._tx_errors import WrongChainError as WrongChainError
from ._validator_driver import DriverEffect as DriverEffect
from ._validator_driver import ReportEvidence as ReportEvidence
from ._validator_driver import RequestSync as RequestSync
from ._validator_driver import SaveCheckpoint as SaveCheckpoint
from ._validator_driver import SendToPeers as SendToPeers
from ._validator_driver import StoreBlock as StoreBlock
from ._validator_driver import StoreSynced as StoreSynced
from ._validator_driver import ValidatorDriver as ValidatorDriver
from ._validator_driver import resume_point as resume_point
from ._validator_driver import store_effect as store_effect
from ._validator_keys import ValidatorKeys as ValidatorKeys
from ._validator_keys import decode_validator_keys as decode_validator_keys
from ._validator_keys import decode_wallet_key as decode_wallet_key
from ._validator_keys import encode_validator_keys as encode_validator_keys
from ._validator_keys import encode_wallet_key as encode_wallet_key
from ._validator_node import PeerStats as PeerStats
from ._validator_node import ValidatorBook as ValidatorBook
from ._validator_node import slash_tx as slash_tx
from ._validator_peers import PeerAddress as PeerAddress
from ._validator_peers import parse_peer as parse_peer
from ._validator_wire import MAX_GOSSIP_TXS as MAX_GOSSIP_TXS
from ._validator_wire import PeerTag as PeerTag
from ._validator_wire import decode_inbound as decode_inbound
from ._validator_wire import decode_txs as decode_txs
from ._validator_wire import encode_peer_message as encode_peer_message
from ._validator_wire import encode_txs as encode_txs
from ._validator_wire import split_peer_message as split_peer_message
from ._validator_wire import sync_response_payload as sync_response_payload

__all__ = (
    "AppQueryResult",
    "BadTransactionSignatureError",
    "BlockContext",
    "BlockLog",
    "BlockResult",
    "BlockSource",
    "BlockStore",
    "BlockSyncClient",
    "ChainAnswerError",
    "ChainStep",
    "ChannelBook",
    "ChannelConsent",
    "ChannelError",
    "ChannelFile",
    "ChannelFileError",
    "ChannelMessage",
    "ChannelOffer",
    "ChannelRecord",
    "ChannelState",
    "ChannelUpdate",
    "ChoicePolicy",
    "ConsensusMessage",
    "CorruptStoreError",
    "Decided",
    "DirectoryAnswerError",
    "DirectoryRead",
    "DirectoryView",
    "DriverEffect",
    "DuplicateTransactionError",
    "DuplicateVoteEvidence",
    "DurableBlockStore",
    "EvidenceVerifier",
    "FeeTooLowError",
    "FutureNonceError",
    "GUARDS_KEY",
    "Guard",
    "GuardPolicy",
    "GuardedRoutes",
    "HandleLookup",
    "HandleOwner",
    "HandleRecord",
    "HeightTimeline",
    "HeightTrace",
    "HomeRelays",
    "IndexedApp",
    "InsufficientFundsError",
    "InvalidEvidenceError",
    "InvalidHandleError",
    "InvalidProposalError",
    "InvalidStateProofError",
    "InvalidValidatorSetError",
    "InvalidVoteError",
    "KeyRecordError",
    "LightRead",
    "LightReader",
    "LightStateError",
    "MAX_GOSSIP_TXS",
    "MAX_HEADERS",
    "MAX_LIGHT_STATE_SIZE",
    "MAX_STEALTH_FINDS",
    "MAX_STEALTH_OWNERS",
    "META_ADDRESS_PREFIX",
    "MalformedTransactionError",
    "MemoryBlockLog",
    "MemoryBlockStore",
    "MempoolFullError",
    "MerkleProof",
    "MerkleTree",
    "NetPlan",
    "NoDiverseRouteError",
    "NonceError",
    "NotCertifiedError",
    "NotEnoughRelaysError",
    "ONION_DIRECTORY_FILE",
    "OnionDirectory",
    "OnionDirectoryError",
    "OnionGuardsError",
    "OrderRecord",
    "PaymentRecord",
    "PeerAddress",
    "PeerAddressError",
    "PeerStats",
    "PeerTag",
    "PinnedRelay",
    "PinnedRelaysError",
    "PlannedTestnet",
    "PlannedValidator",
    "Proposal",
    "RecoveryChain",
    "RecoveryChainBook",
    "RecoveryTask",
    "RejectedTransactionError",
    "RelayDiscovery",
    "RelayFaultEvidence",
    "RelayListing",
    "ReplayedNonceError",
    "ReportEvidence",
    "RequestSync",
    "SCAN_JITTER",
    "STEALTH_MEMO_SIZE",
    "SaveCheckpoint",
    "SendToPeers",
    "SignatureCache",
    "SingleOperatorViewError",
    "SnapshotError",
    "StaleAnswerError",
    "StateSnapshot",
    "StateStore",
    "StealthFind",
    "StealthFormatError",
    "StealthKeys",
    "StealthMemo",
    "StealthMetaAddress",
    "StealthScan",
    "StealthScanFile",
    "Step",
    "StoreBlock",
    "StoreSynced",
    "SyncRequest",
    "SyncResponse",
    "TxMeta",
    "TxStatus",
    "UnauthorizedError",
    "UnexpectedHeaderError",
    "UnsafeDirectoryError",
    "UntrustedValidatorsError",
    "UnverifiedHeaderError",
    "ValidatorBook",
    "ValidatorDriver",
    "ValidatorKeys",
    "ValidatorSetLog",
    "ValidatorUpdate",
    "Vote",
    "VoteKind",
    "WalletLightReader",
    "WrongChainError",
    "account_key",
    "answer_fields",
    "block_txs_answer",
    "certified_height",
    "certified_query",
    "channel_key",
    "channel_open_terms",
    "chat_channel_id",
    "choose_home_relays",
    "decode_channel_next",
    "decode_channel_text",
    "decode_inbound",
    "decode_light_state",
    "decode_message",
    "decode_order_record",
    "decode_payment_record",
    "decode_relay_bond",
    "decode_relay_earnings",
    "decode_relay_index",
    "decode_relay_listing",
    "decode_txs",
    "decode_validator_keys",
    "decode_wallet_key",
    "encode_channel_text",
    "encode_light_state",
    "encode_peer_message",
    "encode_txs",
    "encode_validator_keys",
    "encode_wallet_key",
    "epoch_delivered",
    "epoch_score",
    "execute_block",
    "genesis_anchor",
    "genesis_kind",
    "handle_key",
    "handle_work_bits",
    "headers_page",
    "light_state_name",
    "light_state_path",
    "load_snapshot",
    "normalize_handle",
    "operator_groups",
    "order_key",
    "parse_headers",
    "parse_peer",
    "parse_proof",
    "payment_channel_id",
    "payment_key",
    "pick_guards",
    "plan_testnet",
    "read_light_state",
    "relay_bond_key",
    "relay_directory",
    "relay_earnings_key",
    "relay_listing_key",
    "replay",
    "replay_store",
    "resume_point",
    "scan_delay",
    "sent_step",
    "serve_sync",
    "slash_tx",
    "solve_handle_pow",
    "solve_pow",
    "split_peer_message",
    "stealth_payment",
    "stealth_transfers",
    "store_effect",
    "sync_response_payload",
    "tx_hash",
    "tx_inclusion_proof",
    "txs_root",
    "validator_id_of",
    "verify_proof",
    "verify_tx_inclusion",
    "write_light_state",
)
