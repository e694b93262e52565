"""The consensus engine's configuration, outputs and durable checkpoint."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from dchat_core import DchatError, Fields, canonical_decode, canonical_encode

from ._block import Block
from ._block_commit import MAX_ROUND
from ._consensus_messages import Proposal, Vote
from ._errors import ChainArgumentError, ChainStateError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._app import BlockResult
    from ._block_commit import CommitCertificate
    from ._consensus_messages import ConsensusMessage
    from ._evidence import DuplicateVoteEvidence

__all__ = (
    "BlockSource",
    "Broadcast",
    "Checkpoint",
    "ConsensusConfig",
    "ConsensusOutput",
    "Decision",
    "EvidenceFound",
    "Persist",
    "ScheduleTimeout",
    "Step",
    "SyncNeeded",
)

_CHECKPOINT_FIELDS: Final = frozenset({"h", "r", "s", "lr", "lb", "vr", "vb", "votes", "prop"})


class BlockSource(Protocol):
    """Where a proposer gets transactions (typically the mempool's reap)."""

    def __call__(self, max_txs: int, max_bytes: int) -> Sequence[bytes]:
        """Up to ``max_txs`` transactions of at most ``max_bytes`` in total, in block order."""
        ...


class Step(enum.IntEnum):
    """The step of a round; ordered as the paper's ``step_p`` comparisons need."""

    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3


@dataclass(frozen=True, slots=True)
class ConsensusConfig:
    """Timeouts (milliseconds) and limits. Round ``r`` waits ``base + r * delta``."""

    propose_ms: int = 1000
    propose_delta_ms: int = 500
    prevote_ms: int = 500
    prevote_delta_ms: int = 250
    precommit_ms: int = 500
    precommit_delta_ms: int = 250
    rebroadcast_ms: int = 1000  # resend own messages: links may drop, peers may restart
    max_clock_drift_ms: int = 10_000  # how far in our future a proposed block's time may be
    max_block_txs: int = 2000
    max_block_bytes: int = 1 << 20
    rounds_ahead: int = 64  # votes for rounds further ahead are ignored (memory bound)
    future_buffer: int = 1024  # messages for the next height kept until we get there

    def __post_init__(self) -> None:
        values = (self.propose_ms, self.prevote_ms, self.precommit_ms, self.rebroadcast_ms)
        if min(values) <= 0 or min(self.propose_delta_ms, self.prevote_delta_ms) < 0:
            raise ChainArgumentError("timeouts must be positive")

    def timeout(self, step: Step, round_: int) -> int:
        """How long ``step`` of ``round_`` waits before giving up."""
        if step is Step.PROPOSE:
            return self.propose_ms + round_ * self.propose_delta_ms
        if step is Step.PREVOTE:
            return self.prevote_ms + round_ * self.prevote_delta_ms
        return self.precommit_ms + round_ * self.precommit_delta_ms


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send ``message`` (``message.to_bytes()``) to every peer."""

    message: ConsensusMessage


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    """Call :meth:`ConsensusEngine.tick` at ``at_ms`` (or later)."""

    at_ms: int


@dataclass(frozen=True, slots=True)
class Decision:
    """A block was decided, executed and committed on the application."""

    block: Block
    certificate: CommitCertificate
    result: BlockResult


@dataclass(frozen=True, slots=True)
class EvidenceFound:
    """A validator double-signed; submit the evidence to the chain that slashes."""

    evidence: DuplicateVoteEvidence


@dataclass(frozen=True, slots=True)
class Persist:
    """Write ``checkpoint`` durably *before* acting on the outputs after it."""

    checkpoint: Checkpoint


@dataclass(frozen=True, slots=True)
class SyncNeeded:
    """Peers are at ``height`` or above: fetch the missing blocks with block sync."""

    height: int


ConsensusOutput = Broadcast | ScheduleTimeout | Decision | EvidenceFound | Persist | SyncNeeded


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a validator must remember across a crash to never contradict itself.

    Its round and step only go forward, and it holds the votes (and proposal)
    it signed in that round, so a restarted validator re-sends them instead of
    signing different ones; the lock survives, so it never prevotes against it.
    """

    height: int
    round: int
    step: Step
    locked_round: int = -1
    locked_block: Block | None = None
    valid_round: int = -1
    valid_block: Block | None = None
    votes: tuple[Vote, ...] = field(default=())
    proposal: Proposal | None = None

    def to_bytes(self) -> bytes:
        """Canonical encoding."""

        def block(b: Block | None) -> Any:
            return None if b is None else b.to_obj()

        return canonical_encode(
            {
                "h": self.height,
                "r": self.round,
                "s": int(self.step),
                "lr": self.locked_round,
                "lb": block(self.locked_block),
                "vr": self.valid_round,
                "vb": block(self.valid_block),
                "votes": [v.to_obj() for v in self.votes],
                "prop": None if self.proposal is None else self.proposal.to_obj(),
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint:
        """Decode a checkpoint this node wrote.

        Raises:
            ChainStateError: The bytes are not a checkpoint.
        """
        try:
            f = Fields(canonical_decode(data), "checkpoint", _CHECKPOINT_FIELDS)
            lb, vb, prop = f.raw("lb"), f.raw("vb"), f.raw("prop")
            return cls(
                height=f.get_int("h", lo=1),
                round=f.get_int("r", hi=MAX_ROUND),
                step=Step(f.get_int("s", lo=1, hi=3)),
                locked_round=f.get_int("lr", lo=-1, hi=MAX_ROUND),
                locked_block=None if lb is None else Block.from_obj(lb),
                valid_round=f.get_int("vr", lo=-1, hi=MAX_ROUND),
                valid_block=None if vb is None else Block.from_obj(vb),
                votes=tuple(Vote.from_obj(v) for v in f.get_list("votes", max_len=2)),
                proposal=None if prop is None else Proposal.from_obj(prop),
            )
        except DchatError as exc:
            raise ChainStateError(f"stored checkpoint is corrupt: {exc}") from None
