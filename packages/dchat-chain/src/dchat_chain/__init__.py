"""dchat-chain: the BFT engine and the chat and currency chains.

This is the everyday API: the consensus engine with its inputs and outputs,
blocks and commit certificates, the two chain applications and their
transactions, the mempool, the light client and the main errors. Building
blocks for code that works inside the engine (messages and votes, the
application contract's records, block store and sync, Merkle proofs, evidence,
payment channels, the fine-grained error classes) live in
:mod:`dchat_chain.lowlevel`.
"""

from __future__ import annotations

from ._app import Application as Application
from ._app import TxResult as TxResult
from ._block import Block as Block
from ._block import BlockHeader as BlockHeader
from ._block_chain import ChainState as ChainState
from ._block_commit import CommitCertificate as CommitCertificate
from ._chat import ChatChainApp as ChatChainApp
from ._consensus import ConsensusEngine as ConsensusEngine
from ._consensus_types import Broadcast as Broadcast
from ._consensus_types import Checkpoint as Checkpoint
from ._consensus_types import ConsensusConfig as ConsensusConfig
from ._consensus_types import ConsensusOutput as ConsensusOutput
from ._consensus_types import Decision as Decision
from ._consensus_types import EvidenceFound as EvidenceFound
from ._consensus_types import Persist as Persist
from ._consensus_types import ScheduleTimeout as ScheduleTimeout
from ._consensus_types import SyncNeeded as SyncNeeded
from ._currency import CurrencyChainApp as CurrencyChainApp
from ._errors import ChainArgumentError as ChainArgumentError
from ._errors import ChainStateError as ChainStateError
from ._errors import DchatChainError as DchatChainError
from ._errors import InvalidBlockError as InvalidBlockError
from ._errors import InvalidCertificateError as InvalidCertificateError
from ._errors import InvalidMessageError as InvalidMessageError
from ._errors import InvalidTransactionError as InvalidTransactionError
from ._errors import SyncError as SyncError
from ._light import LightClient as LightClient
from ._light import LightClientError as LightClientError
from ._mempool import Mempool as Mempool
from ._tx import Transaction as Transaction
from ._validators import Validator as Validator
from ._validators import ValidatorSet as ValidatorSet

__all__ = (
    "Application",
    "Block",
    "BlockHeader",
    "Broadcast",
    "ChainArgumentError",
    "ChainState",
    "ChainStateError",
    "ChatChainApp",
    "Checkpoint",
    "CommitCertificate",
    "ConsensusConfig",
    "ConsensusEngine",
    "ConsensusOutput",
    "CurrencyChainApp",
    "DchatChainError",
    "Decision",
    "EvidenceFound",
    "InvalidBlockError",
    "InvalidCertificateError",
    "InvalidMessageError",
    "InvalidTransactionError",
    "LightClient",
    "LightClientError",
    "Mempool",
    "Persist",
    "ScheduleTimeout",
    "SyncError",
    "SyncNeeded",
    "Transaction",
    "TxResult",
    "Validator",
    "ValidatorSet",
)
