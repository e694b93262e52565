"""The sans-IO Tendermint consensus engine.

Theory of operation
-------------------
This is Algorithm 1 of "The latest gossip on BFT consensus" (Buchman, Kwon,
Milosevic, 2018), with voting power in place of counts: "2f+1" is more than
2/3 of the power, "f+1" more than 1/3. Each height runs rounds; each round
has three steps:

* **propose**: the round's proposer (stake-weighted rotation) broadcasts a
  block: its ``valid`` block if it has one (with ``pol_round``, the round of
  the prevote quorum that made it valid), otherwise a fresh one from the block
  source. Others wait ``timeout_propose(r)``.
* **prevote**: a validator prevotes the proposal if it is valid and it is not
  locked on another block (or a later polka, ``pol_round >= locked_round``,
  frees it); otherwise nil. Timing out in propose prevotes nil.
* **precommit**: on 2f+1 prevotes for the proposal ("a polka") it locks on the
  block and precommits it; on 2f+1 nil prevotes, or when ``timeout_prevote``
  fires after 2f+1 prevotes of any kind, it precommits nil.

2f+1 precommits for a block in any round decide it; 2f+1 precommits of any kind
start ``timeout_precommit``, after which the next round begins. f+1 messages
from a higher round make a validator skip to it (someone honest is there).
Locking is what keeps decisions unique across rounds; ``valid`` is what keeps
a polka'd block alive so a later proposer re-proposes it.

The "upon" rules are re-evaluated after every input until none fires, so the
order in which messages arrive never matters. Timeouts are a small
``(timer, step) -> action`` table. I/O is the caller's: inputs are
:meth:`start`, :meth:`receive` and :meth:`tick` with the current time, outputs
are :mod:`~dchat_chain._consensus_types` objects (broadcasts, timers,
decisions, evidence, checkpoints to persist). A peer's bad message raises a
typed :class:`~dchat_chain.DchatChainError` *before* any state changes.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Final

from dchat_core import DchatError

from ._block_chain import execute_block
from ._block_commit import VoteKind
from ._consensus_messages import Decided, Proposal, Vote, decided_height, decode_message
from ._consensus_types import (
    BlockSource,
    Broadcast,
    Checkpoint,
    ConsensusConfig,
    ConsensusOutput,
    Decision,
    EvidenceFound,
    Persist,
    ScheduleTimeout,
    Step,
    SyncNeeded,
)
from ._consensus_votes import HeightVotes, SignatureCache
from ._errors import ChainStateError, InvalidCertificateError, InvalidVoteError
from ._evidence import DuplicateVoteEvidence

if TYPE_CHECKING:
    from dchat_crypto import BlsSecretKey

    from ._app import Application
    from ._block import Block
    from ._block_chain import ChainState
    from ._block_commit import CommitCertificate
    from ._consensus_messages import ConsensusMessage

__all__ = ("ConsensusEngine",)

_REBROADCAST: Final = 0  # timer kind for re-sending own messages (steps are 1..3)
_CONTINUE: Final = -1  # timer kind: run the rules of a height a decision just started

# (timer that fired, current step) -> action. Pairs not listed: the timer is stale.
_TIMEOUTS: Final[dict[tuple[int, Step], str]] = {
    (Step.PROPOSE, Step.PROPOSE): "prevote_nil",
    (Step.PREVOTE, Step.PREVOTE): "precommit_nil",
    (Step.PRECOMMIT, Step.PROPOSE): "next_round",
    (Step.PRECOMMIT, Step.PREVOTE): "next_round",
    (Step.PRECOMMIT, Step.PRECOMMIT): "next_round",
}


class ConsensusEngine:
    """One validator's (or observer's) Tendermint state machine for one chain.

    Args:
        state: The chain state to decide the next block of.
        app: The application; decided blocks are executed and committed on it.
        block_source: ``(max_txs, max_bytes) -> txs`` for blocks this node proposes.
        key: This validator's BLS key, or None for a non-voting observer.
        config: Timeouts and limits.
        last_commit: The certificate of block ``state.height - 1`` (None at genesis).
        checkpoint: The last :class:`Persist` checkpoint, after a restart.
        signatures: A verified-signature cache, shareable between engines.
    """

    # Per-height state, reset by _reset_height (the paper's variables and message log).
    _state: ChainState
    _last_commit: CommitCertificate | None
    _round: int
    _step: Step
    _locked_round: int
    _locked_block: Block | None
    _valid_round: int
    _valid_block: Block | None
    _votes: HeightVotes
    _proposals: dict[int, Proposal]
    _own_proposal: Proposal | None
    _blocks: dict[bytes, Block]
    _validity: dict[bytes, bool]
    _timely: dict[int, bool]
    _signed: dict[tuple[int, VoteKind], Vote]
    _polka_done: set[int]
    _prevote_timer: set[int]
    _precommit_timer: set[int]

    def __init__(
        self,
        *,
        state: ChainState,
        app: Application,
        block_source: BlockSource,
        key: BlsSecretKey | None,
        config: ConsensusConfig | None = None,
        last_commit: CommitCertificate | None = None,
        checkpoint: Checkpoint | None = None,
        signatures: SignatureCache | None = None,
    ) -> None:
        self._app = app
        self._block_source = block_source
        self._key = key
        self._config = config or ConsensusConfig()
        self._signatures = signatures or SignatureCache()
        self._out: list[ConsensusOutput] = []
        self._timers: list[tuple[int, int, int, int]] = []
        self._now = 0
        self._started = False
        self._peer_height = 0  # highest height a peer's message claimed
        self._evidence_seen: set[bytes] = set()
        self._last_decided: Decided | None = None
        self._future: list[Proposal | Vote] = []
        self._reset_height(state, last_commit)
        self._restore = checkpoint if checkpoint and checkpoint.height == state.height else None

    # -- observation (for shells and tests) ----------------------------------------------

    @property
    def state(self) -> ChainState:
        """The chain state the engine is deciding the next block of."""
        return self._state

    @property
    def height(self) -> int:
        """The height being decided."""
        return self._state.height

    @property
    def round(self) -> int:
        """The current round."""
        return self._round

    @property
    def step(self) -> Step:
        """The current step."""
        return self._step

    @property
    def locked(self) -> tuple[int, Block | None]:
        """``(locked_round, locked_block)``; ``(-1, None)`` when not locked."""
        return self._locked_round, self._locked_block

    @property
    def last_commit(self) -> CommitCertificate | None:
        """The certificate of the previous block."""
        return self._last_commit

    # -- inputs ---------------------------------------------------------------------------

    def start(self, now_ms: int) -> list[ConsensusOutput]:
        """Begin (or, with a checkpoint, resume) the current height.

        Raises:
            ChainStateError: Already started.
        """
        if self._started:
            raise ChainStateError("engine already started")
        self._started = True
        self._now = now_ms
        self._schedule(self._config.rebroadcast_ms, _REBROADCAST)
        if self._restore is not None:
            self._resume(self._restore)
        else:
            self._start_round(0)
        self._run_rules()
        return self._flush()

    def receive(self, message: bytes | ConsensusMessage, now_ms: int) -> list[ConsensusOutput]:
        """Handle a message from a peer (bytes are decoded strictly first).

        A decided block below our height is dropped unread: it would change nothing.

        Raises:
            DchatChainError: The message is malformed, forged, or from a validator
                or proposer that had no right to send it (a ``PeerError``); the
                engine is unchanged.
        """
        self._require_started()
        self._now = max(self._now, now_ms)
        if isinstance(message, bytes | bytearray):
            if (decided_height(message) or self.height) < self.height:
                return self._flush()  # a re-sent block we decided: _on_decided ignores it
            message = decode_message(message)
        self._handle(message)
        self._run_rules()
        return self._flush()

    def tick(self, now_ms: int) -> list[ConsensusOutput]:
        """Fire every timer due at ``now_ms``."""
        self._require_started()
        self._now = max(self._now, now_ms)
        due = []  # those due now; any this call schedules wait for the next one
        while self._timers and self._timers[0][0] <= self._now:
            due.append(heapq.heappop(self._timers))
        for _, height, round_, kind in due:
            if kind == _REBROADCAST:
                self._rebroadcast()
            elif kind == _CONTINUE:
                pass  # the rules below carry on the new height
            elif height == self.height and round_ == self._round:
                self._on_timeout(Step(kind))
            self._run_rules()
        return self._flush()

    def catch_up(
        self, state: ChainState, last_commit: CommitCertificate, now_ms: int
    ) -> list[ConsensusOutput]:
        """Jump to ``state`` after block sync executed the missing blocks on the app.

        Raises:
            ChainStateError: ``state`` is not ahead of the engine.
        """
        if state.height <= self.height:
            raise ChainStateError("catch_up needs a state ahead of the engine")
        self._now = max(self._now, now_ms)
        self._enter_height(state, last_commit, None)
        self._run_rules()
        return self._flush()

    # -- message handling -----------------------------------------------------------------

    def _handle(self, message: ConsensusMessage) -> None:
        if isinstance(message, Decided):
            self._on_decided(message)
            return
        if message.height != self.height:
            self._not_this_height(message)
        elif message.round > self._round + self._config.rounds_ahead:
            return  # too far ahead to keep; its sender will re-send
        elif isinstance(message, Vote):
            self._on_vote(message)
        else:
            self._on_proposal(message)

    def _not_this_height(self, message: Proposal | Vote) -> None:
        if message.height == self.height + 1:
            if len(self._future) < self._config.future_buffer:
                self._future.append(message)
        elif message.height > self.height + 1:
            self._announce_sync(message.height)

    def _announce_sync(self, height: int) -> None:
        # Announced once per new height seen, and again on every rebroadcast
        # tick while still behind, in case a sync attempt went nowhere.
        if height > self._peer_height:
            self._peer_height = height
            self._out.append(SyncNeeded(height))

    def _on_vote(self, vote: Vote) -> None:
        validators = self._state.validators
        if vote.validator_index >= len(validators):
            raise InvalidVoteError("vote from a validator index outside the set")
        versions = self._votes.versions(vote)
        if vote.block_hash in versions:
            return  # a re-send (BLS signatures are deterministic: same vote, same bytes)
        key = validators.validators[vote.validator_index].bls_public_key
        try:
            self._signatures.verify(key, vote.sign_bytes(self._state.chain_id), vote.signature)
        except DchatError:
            raise InvalidVoteError("vote signature does not verify") from None
        if versions:
            offender = validators.validators[vote.validator_index].validator_id
            first = next(iter(versions.values()))
            self._report(DuplicateVoteEvidence.from_votes(offender, first, vote))
            if vote.block_hash is not None and vote.block_hash not in self._blocks:
                return  # keep only versions that can matter: bounded memory
        self._votes.add(vote)

    def _report(self, evidence: DuplicateVoteEvidence) -> None:
        key = evidence.hash()
        if key not in self._evidence_seen:
            self._evidence_seen.add(key)
            self._out.append(EvidenceFound(evidence))

    def _on_proposal(self, proposal: Proposal) -> None:
        if proposal.round in self._proposals:
            return  # a re-send, or a second proposal by an equivocating proposer
        proposal.verify(self._state.validators, self._state.chain_id, signatures=self._signatures)
        self._accept_proposal(proposal)

    def _accept_proposal(self, proposal: Proposal) -> None:
        block = proposal.block
        self._proposals[proposal.round] = proposal
        self._blocks.setdefault(block.hash(), block)
        drift = self._config.max_clock_drift_ms
        self._timely[proposal.round] = block.header.time_ms <= self._now + drift
        proposer = self._state.validators.proposer(proposal.round).validator_id
        index = self._state.validators.index_of(proposer)
        assert index is not None
        self._votes.note_sender(proposal.round, index)

    def _on_decided(self, decided: Decided) -> None:
        height = decided.block.height
        if height > self.height:
            self._announce_sync(height + 1)  # the sender is deciding the height after it
        if height != self.height:
            return
        decided.certificate.verify(
            self._state.validators, self._state.chain_id, signatures=self._signatures
        )
        if not self._valid(decided.block):
            raise InvalidCertificateError("a certified block that is not valid here")
        self._decide(decided.block, decided.certificate)

    # -- the upon rules -------------------------------------------------------------------

    def _run_rules(self) -> None:
        rules = (
            self._rule_decide,
            self._rule_round_skip,
            self._rule_prevote,
            self._rule_polka,
            self._rule_nil_polka,
            self._rule_timers,
        )
        height = self.height
        while any(rule() for rule in rules):
            if self.height != height:
                # A decision began the next height: it goes on in a later call (a timer due
                # now), so no call decides more than one height. A lone validator would
                # otherwise decide height after height inside one call, forever, and its
                # host could neither pace the heights nor do anything else.
                self._schedule(0, _CONTINUE)
                return

    def _rule_decide(self) -> bool:
        # upon PROPOSAL(h, r, v) and 2f+1 PRECOMMIT(h, r, id(v)), any round r.
        for round_, block_hash in self._votes.quorum_blocks(VoteKind.PRECOMMIT):
            block = self._blocks.get(block_hash)
            if block is not None and self._valid(block):
                self._decide(block, self._votes.certificate(round_, block_hash))
                return True
        return False

    def _rule_round_skip(self) -> bool:
        # upon f+1 messages of a round above ours: skip to it.
        validators = self._state.validators
        for round_ in reversed(self._votes.rounds_above(self._round)):
            if validators.has_one_third(self._votes.sender_power(round_)):
                self._start_round(round_)
                return True
        return False

    def _rule_prevote(self) -> bool:
        # upon PROPOSAL(h, r, v, vr) while step = propose (vr = -1, or a polka in vr).
        proposal = self._proposals.get(self._round)
        if self._step is not Step.PROPOSE or proposal is None:
            return False
        block_hash = proposal.block.hash()
        pol = proposal.pol_round
        if pol >= 0 and not self._polka(pol, block_hash):
            return False  # wait for the proof of lock, or for timeout_propose
        free = self._locked_round == -1 if pol < 0 else self._locked_round <= pol
        unlocked = free or self._locked_hash() == block_hash
        good = self._valid(proposal.block) and self._timely[self._round] and unlocked
        self._vote(VoteKind.PREVOTE, block_hash if good else None)
        self._step = Step.PREVOTE
        return True

    def _rule_polka(self) -> bool:
        # upon PROPOSAL(h, r, v) and 2f+1 PREVOTE(h, r, id(v)) while step >= prevote, once.
        proposal = self._proposals.get(self._round)
        if self._step < Step.PREVOTE or proposal is None or self._round in self._polka_done:
            return False
        block, block_hash = proposal.block, proposal.block.hash()
        if not self._polka(self._round, block_hash) or not self._valid(block):
            return False
        self._polka_done.add(self._round)
        self._valid_round, self._valid_block = self._round, block
        if self._step is not Step.PREVOTE:
            self._persist()
            return True
        self._locked_round, self._locked_block = self._round, block
        self._vote(VoteKind.PRECOMMIT, block_hash)  # its checkpoint holds lock and valid block
        self._step = Step.PRECOMMIT
        return True

    def _rule_nil_polka(self) -> bool:
        # upon 2f+1 PREVOTE(h, r, nil) while step = prevote.
        if self._step is not Step.PREVOTE or not self._polka(self._round, None):
            return False
        self._vote(VoteKind.PRECOMMIT, None)
        self._step = Step.PRECOMMIT
        return True

    def _rule_timers(self) -> bool:
        # upon 2f+1 PREVOTE(h, r, *) while step = prevote / 2f+1 PRECOMMIT(h, r, *): once each.
        validators, round_ = self._state.validators, self._round
        fired = False
        if (
            self._step is Step.PREVOTE
            and round_ not in self._prevote_timer
            and validators.has_quorum(self._votes.power_any(round_, VoteKind.PREVOTE))
        ):
            self._prevote_timer.add(round_)
            self._schedule(self._config.timeout(Step.PREVOTE, round_), Step.PREVOTE)
            fired = True
        if round_ not in self._precommit_timer and validators.has_quorum(
            self._votes.power_any(round_, VoteKind.PRECOMMIT)
        ):
            self._precommit_timer.add(round_)
            self._schedule(self._config.timeout(Step.PRECOMMIT, round_), Step.PRECOMMIT)
            fired = True
        return fired

    # -- actions --------------------------------------------------------------------------

    def _on_timeout(self, timer: Step) -> None:
        action = _TIMEOUTS.get((timer, self._step))
        if action == "prevote_nil":
            self._vote(VoteKind.PREVOTE, None)
            self._step = Step.PREVOTE
        elif action == "precommit_nil":
            self._vote(VoteKind.PRECOMMIT, None)
            self._step = Step.PRECOMMIT
        elif action == "next_round":
            self._start_round(self._round + 1)

    def _start_round(self, round_: int) -> None:
        self._round, self._step = round_, Step.PROPOSE
        self._schedule(self._config.timeout(Step.PROPOSE, round_), Step.PROPOSE)
        if self._key is None or self._state.validators.proposer(round_).bls_public_key != (
            self._key.public_key
        ):
            self._persist()
            return
        if self._valid_block is not None:
            block, pol = self._valid_block, self._valid_round
        else:
            block, pol = self._new_block(round_), -1
        proposal = Proposal.create(self._key, self._state.chain_id, round_, pol, block)
        self._accept_proposal(proposal)
        self._own_proposal = proposal
        self._persist()
        self._out.append(Broadcast(proposal))
        if pol >= 0:
            self._relay_polka()

    def _new_block(self, round_: int) -> Block:
        config = self._config
        txs = list(self._block_source(config.max_block_txs, config.max_block_bytes))
        return self._state.make_block(round_, self._now, txs, self._last_commit)

    def _vote(self, kind: VoteKind, block_hash: bytes | None) -> None:
        index = self._my_index()
        if index is None or (self._round, kind) in self._signed:
            return
        assert self._key is not None
        vote = Vote.create(
            self._key, self._state.chain_id, kind, self.height, self._round, block_hash, index
        )
        self._signed[(self._round, kind)] = vote
        self._votes.add(vote)
        self._persist()
        self._out.append(Broadcast(vote))

    def _decide(self, block: Block, certificate: CommitCertificate) -> None:
        state, result = execute_block(self._state, self._app, block)
        self._out.append(Decision(block, certificate, result))
        self._enter_height(state, certificate, Decided(block, certificate))

    def _enter_height(
        self, state: ChainState, last_commit: CommitCertificate, decided: Decided | None
    ) -> None:
        self._last_decided = decided
        self._reset_height(state, last_commit)
        self._start_round(0)
        pending, self._future = self._future, []
        for message in pending:
            if message.height == self.height:
                try:
                    self._handle(message)
                except DchatError:
                    continue  # buffered unverified; a bad one is simply dropped

    def _rebroadcast(self) -> None:
        self._schedule(self._config.rebroadcast_ms, _REBROADCAST)
        if self._peer_height > self.height + 1:
            self._out.append(SyncNeeded(self._peer_height))
        if self._last_decided is not None:
            self._out.append(Broadcast(self._last_decided))
        if self._own_proposal is not None and self._own_proposal.round == self._round:
            self._out.append(Broadcast(self._own_proposal))
        for (round_, _), vote in sorted(self._signed.items()):
            if round_ == self._round:
                self._out.append(Broadcast(vote))
        self._relay_polka()

    def _relay_polka(self) -> None:
        # The paper assumes gossip: what one correct validator received, all eventually
        # do. The votes behind our valid block matter for liveness (a re-proposal with
        # pol_round needs them), so we pass them on; our own votes are re-sent above.
        if self._valid_block is not None:
            block_hash = self._valid_block.hash()
            for vote in self._votes.votes_for(self._valid_round, VoteKind.PREVOTE, block_hash):
                self._out.append(Broadcast(vote))

    def _resume(self, checkpoint: Checkpoint) -> None:
        self._round, self._step = checkpoint.round, checkpoint.step
        self._locked_round, self._locked_block = checkpoint.locked_round, checkpoint.locked_block
        self._valid_round, self._valid_block = checkpoint.valid_round, checkpoint.valid_block
        for vote in checkpoint.votes:
            self._signed[(vote.round, vote.kind)] = vote
            self._votes.add(vote)
        if checkpoint.proposal is not None:
            self._accept_proposal(checkpoint.proposal)
            self._own_proposal = checkpoint.proposal
        # We may have missed anything while down: make sure this round ends.
        self._schedule(self._config.timeout(Step.PROPOSE, self._round), Step.PROPOSE)
        self._schedule(self._config.timeout(Step.PRECOMMIT, self._round), Step.PRECOMMIT)
        self._rebroadcast()

    # -- helpers --------------------------------------------------------------------------

    def _reset_height(self, state: ChainState, last_commit: CommitCertificate | None) -> None:
        self._state = state
        self._last_commit = last_commit
        self._round, self._step = 0, Step.PROPOSE
        self._locked_round, self._locked_block = -1, None
        self._valid_round, self._valid_block = -1, None
        self._votes = HeightVotes(state.validators)
        self._proposals = {}
        self._own_proposal = None
        self._blocks = {}
        self._validity = {}
        self._timely = {}
        self._signed = {}
        self._polka_done = set()
        self._prevote_timer = set()
        self._precommit_timer = set()

    def _my_index(self) -> int | None:
        if self._key is None:
            return None
        public = self._key.public_key
        for i, v in enumerate(self._state.validators.validators):
            if v.bls_public_key == public:
                return i
        return None

    def _locked_hash(self) -> bytes | None:
        return None if self._locked_block is None else self._locked_block.hash()

    def _polka(self, round_: int, block_hash: bytes | None) -> bool:
        power = self._votes.power_for(round_, VoteKind.PREVOTE, block_hash)
        return self._state.validators.has_quorum(power)

    def _valid(self, block: Block) -> bool:
        block_hash = block.hash()
        verdict = self._validity.get(block_hash)
        if verdict is None:
            try:
                self._state.validate_block(block, signatures=self._signatures)
                for tx in block.txs:
                    self._app.tx_meta(tx)
                verdict = True
            except DchatError:
                verdict = False
            self._validity[block_hash] = verdict
        return verdict

    def _persist(self) -> None:
        if self._my_index() is None:
            return
        votes = tuple(v for (r, _), v in sorted(self._signed.items()) if r == self._round)
        own = self._own_proposal
        checkpoint = Checkpoint(
            height=self.height,
            round=self._round,
            step=self._step,
            locked_round=self._locked_round,
            locked_block=self._locked_block,
            valid_round=self._valid_round,
            valid_block=self._valid_block,
            votes=votes,
            proposal=own if own is not None and own.round == self._round else None,
        )
        self._out.append(Persist(checkpoint))

    def _schedule(self, delay_ms: int, kind: int) -> None:
        at = self._now + delay_ms
        heapq.heappush(self._timers, (at, self.height, self._round, kind))
        self._out.append(ScheduleTimeout(at))

    def _require_started(self) -> None:
        if not self._started:
            raise ChainStateError("call start() first")

    def _flush(self) -> list[ConsensusOutput]:
        out, self._out = self._out, []
        return out
