"""dchat-chain: the BFT engine and the chat and currency chains."""

from __future__ import annotations

from ._app import Application as Application
from ._app import AppQueryResult as AppQueryResult
from ._app import BlockContext as BlockContext
from ._app import BlockResult as BlockResult
from ._app import TxMeta as TxMeta
from ._app import TxResult as TxResult
from ._app import ValidatorUpdate as ValidatorUpdate
from ._block import Block as Block
from ._block import BlockHeader as BlockHeader
from ._block_chain import ChainState as ChainState
from ._block_chain import execute_block as execute_block
from ._block_commit import CommitCertificate as CommitCertificate
from ._block_commit import VoteKind as VoteKind
from ._block_merkle import tx_hash as tx_hash
from ._block_merkle import tx_inclusion_proof as tx_inclusion_proof
from ._block_merkle import txs_root as txs_root
from ._block_merkle import verify_tx_inclusion as verify_tx_inclusion
from ._blockstore import BlockStore as BlockStore
from ._blockstore import MemoryBlockStore as MemoryBlockStore
from ._blockstore import replay as replay
from ._channels import ChannelState as ChannelState
from ._channels import channel_open_terms as channel_open_terms
from ._channels import payment_channel_id as payment_channel_id
from ._chat import ChatChainApp as ChatChainApp
from ._chat_channels import chat_channel_id as chat_channel_id
from ._chat_identity import solve_pow as solve_pow
from ._consensus import ConsensusEngine as ConsensusEngine
from ._consensus_messages import ConsensusMessage as ConsensusMessage
from ._consensus_messages import Decided as Decided
from ._consensus_messages import Proposal as Proposal
from ._consensus_messages import Vote as Vote
from ._consensus_messages import decode_message as decode_message
from ._consensus_types import BlockSource as BlockSource
from ._consensus_types import Broadcast as Broadcast
from ._consensus_types import Checkpoint as Checkpoint
from ._consensus_types import ConsensusConfig as ConsensusConfig
from ._consensus_types import ConsensusOutput as ConsensusOutput
from ._consensus_types import Decision as Decision
from ._consensus_types import EvidenceFound as EvidenceFound
from ._consensus_types import Persist as Persist
from ._consensus_types import ScheduleTimeout as ScheduleTimeout
from ._consensus_types import Step as Step
from ._consensus_types import SyncNeeded as SyncNeeded
from ._consensus_votes import SignatureCache as SignatureCache
from ._currency import CurrencyChainApp as CurrencyChainApp
from ._currency_staking import EvidenceVerifier as EvidenceVerifier
from ._currency_staking import validator_id_of as validator_id_of
from ._errors import ChainArgumentError as ChainArgumentError
from ._errors import ChainStateError as ChainStateError
from ._errors import DchatChainError as DchatChainError
from ._errors import InvalidBlockError as InvalidBlockError
from ._errors import InvalidCertificateError as InvalidCertificateError
from ._errors import InvalidEvidenceError as InvalidEvidenceError
from ._errors import InvalidMessageError as InvalidMessageError
from ._errors import InvalidProposalError as InvalidProposalError
from ._errors import InvalidTransactionError as InvalidTransactionError
from ._errors import InvalidValidatorSetError as InvalidValidatorSetError
from ._errors import InvalidVoteError as InvalidVoteError
from ._errors import SyncError as SyncError
from ._evidence import DuplicateVoteEvidence as DuplicateVoteEvidence
from ._light import InvalidStateProofError as InvalidStateProofError
from ._light import LightClient as LightClient
from ._light import LightClientError as LightClientError
from ._light import UnexpectedHeaderError as UnexpectedHeaderError
from ._light import UntrustedValidatorsError as UntrustedValidatorsError
from ._light import UnverifiedHeaderError as UnverifiedHeaderError
from ._mempool import DuplicateTransactionError as DuplicateTransactionError
from ._mempool import Mempool as Mempool
from ._mempool import MempoolFullError as MempoolFullError
from ._merkle import MerkleProof as MerkleProof
from ._merkle import MerkleTree as MerkleTree
from ._merkle import verify_proof as verify_proof
from ._snapshot import SnapshotError as SnapshotError
from ._snapshot import StateSnapshot as StateSnapshot
from ._state import StateStore as StateStore
from ._sync import BlockSyncClient as BlockSyncClient
from ._sync import SyncRequest as SyncRequest
from ._sync import SyncResponse as SyncResponse
from ._sync import serve_sync as serve_sync
from ._tx import Transaction as Transaction
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
from ._validators import Validator as Validator
from ._validators import ValidatorSet as ValidatorSet

__all__ = (
    "AppQueryResult",
    "Application",
    "BadTransactionSignatureError",
    "Block",
    "BlockContext",
    "BlockHeader",
    "BlockResult",
    "BlockSource",
    "BlockStore",
    "BlockSyncClient",
    "Broadcast",
    "ChainArgumentError",
    "ChainState",
    "ChainStateError",
    "ChannelState",
    "ChatChainApp",
    "Checkpoint",
    "CommitCertificate",
    "ConsensusConfig",
    "ConsensusEngine",
    "ConsensusMessage",
    "ConsensusOutput",
    "CurrencyChainApp",
    "DchatChainError",
    "Decided",
    "Decision",
    "DuplicateTransactionError",
    "DuplicateVoteEvidence",
    "EvidenceFound",
    "EvidenceVerifier",
    "FeeTooLowError",
    "FutureNonceError",
    "InsufficientFundsError",
    "InvalidBlockError",
    "InvalidCertificateError",
    "InvalidEvidenceError",
    "InvalidMessageError",
    "InvalidProposalError",
    "InvalidStateProofError",
    "InvalidTransactionError",
    "InvalidValidatorSetError",
    "InvalidVoteError",
    "LightClient",
    "LightClientError",
    "MalformedTransactionError",
    "MemoryBlockStore",
    "Mempool",
    "MempoolFullError",
    "MerkleProof",
    "MerkleTree",
    "NonceError",
    "Persist",
    "Proposal",
    "RejectedTransactionError",
    "ReplayedNonceError",
    "ScheduleTimeout",
    "SignatureCache",
    "SnapshotError",
    "StateSnapshot",
    "StateStore",
    "Step",
    "SyncError",
    "SyncNeeded",
    "SyncRequest",
    "SyncResponse",
    "Transaction",
    "TxMeta",
    "TxResult",
    "UnauthorizedError",
    "UnexpectedHeaderError",
    "UntrustedValidatorsError",
    "UnverifiedHeaderError",
    "Validator",
    "ValidatorSet",
    "ValidatorUpdate",
    "Vote",
    "VoteKind",
    "WrongChainError",
    "channel_open_terms",
    "chat_channel_id",
    "decode_message",
    "execute_block",
    "payment_channel_id",
    "replay",
    "serve_sync",
    "solve_pow",
    "tx_hash",
    "tx_inclusion_proof",
    "txs_root",
    "validator_id_of",
    "verify_proof",
    "verify_tx_inclusion",
)
