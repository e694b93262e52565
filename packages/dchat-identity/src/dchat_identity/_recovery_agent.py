"""The recovering side of guardian recovery, sans-IO: getting an identity back.

Theory of operation (a new node, every old device lost)::

    start(subject, guardians, lock)   the node's identity holds the new keys
        --- guardian.lookup ---------> each named guardian
        <-- guardian.info ------------ the first answer: guardian set + newest document
    RecoveryRequest.create(now, lock)
        --- guardian.request --------> each guardian (who tells the old key: guardian.alert)
        <-- guardian.approval -------- approvals; each released share is opened on arrival
        <-- guardian.veto ------------ the old key, if it still exists, before the lock ends
    finish()  after the lock, with M approvals: RecoveryProcess.complete ->
        the old chain continued by a document signed by the new key and carrying the
        recovery certificate, which the caller adopts and sends to every contact.

:class:`RecoveryAgent` is rebuilt from one stored blob (``recovery.state``)
for each step and reports the new blob in :meth:`RecoveryAgent.changes`, so
a caller that stores it after every accepted message loses nothing in a
crash; a refused message changes nothing. Forged or replayed approvals,
shares that do not open, and vetoes that do not verify raise typed errors.
The blob is a stored map (:mod:`._stored_maps`)::

    b"subject" -> [id]; b"guardians" -> [card, ...]; b"lock" -> [ms];
    b"process" -> [RecoveryProcess, old head, guardian set]; b"done" -> [ms]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from dchat_core import IdentityId

from ._card import ContactCard
from ._chain import DocumentChain
from ._document import IdentityDocument
from ._errors import (
    ForgedRecordError,
    RecoveryStateError,
    ReplayedRecoveryError,
    UnexpectedRecoveryError,
)
from ._guardian_wire import (
    KIND_LOOKUP,
    KIND_REQUEST,
    ApprovalMessage,
    InfoMessage,
    LookupMessage,
    Outgoing,
    RequestMessage,
)
from ._guardians import GuardianSet
from ._records import to_ms
from ._recovery import RecoveryRequest
from ._recovery_process import RecoveryProcess
from ._stored_maps import EntryMap, decode_map, encode_map, entry_bytes, entry_int

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._identity import Identity
    from ._recovery import RecoveryVeto

__all__ = ("RECOVERY_STATE", "RecoveryAgent")

RECOVERY_STATE: Final = "recovery.state"


class RecoveryAgent:
    """One step of one recovery, over the blob stored under :data:`RECOVERY_STATE`."""

    __slots__ = ("_changed", "_state")

    def __init__(self, stored: bytes | None) -> None:
        self._state = decode_map(stored, RECOVERY_STATE)
        self._changed = False

    def changes(self) -> dict[str, bytes]:
        """The new blob to store under :data:`RECOVERY_STATE`, if this step changed it."""
        return {RECOVERY_STATE: encode_map(self._state)} if self._changed else {}

    def _put(self, key: bytes, entry: list[bytes | str | int]) -> None:
        self._state[key] = entry
        self._changed = True

    @property
    def _under_way(self) -> bool:
        return bool(self._state) and b"done" not in self._state

    def check_start(self, guardians: int, *, lock: float) -> None:
        """Whether a recovery through ``guardians`` contacts may start now.

        Raises:
            RecoveryStateError: ``recovery_in_progress`` or ``invalid_recovery``.
        """
        if self._under_way:
            raise RecoveryStateError("recovery_in_progress", "a recovery is already under way")
        if not 2 <= guardians <= 16 or lock < 0:
            raise RecoveryStateError("invalid_recovery", "name 2-16 guardians and a lock >= 0")

    def start(
        self,
        subject: IdentityId,
        guardians: Sequence[ContactCard],
        requester: ContactCard,
        *,
        lock: float,
    ) -> list[Outgoing]:
        """Begin recovering ``subject``; ``requester`` is our (new) card. The lookups to send."""
        self.check_start(len(guardians), lock=lock)
        self._state = {
            b"subject": [bytes(subject)],
            b"guardians": [card.to_bytes() for card in guardians],
            b"lock": [to_ms(lock)],
        }
        self._changed = True
        lookup = LookupMessage(subject, requester).to_bytes()
        return [Outgoing(card, KIND_LOOKUP, lookup) for card in guardians]

    def _active(self) -> EntryMap:
        if not self._under_way:
            raise UnexpectedRecoveryError("no recovery is under way")
        return self._state

    def _process(self) -> RecoveryProcess | None:
        if b"process" not in self._state:
            return None
        return RecoveryProcess.from_bytes(entry_bytes(self._state[b"process"], 0))

    def _gset(self) -> GuardianSet:
        return GuardianSet.from_bytes(entry_bytes(self._state[b"process"], 2))

    def info_received(
        self,
        identity: Identity,
        sender: IdentityId,
        data: bytes,
        requester: ContactCard,
        *,
        now: float,
    ) -> list[Outgoing]:
        """A guardian's ``guardian.info``: the first one sets up and sends the request."""
        state = self._active()
        entries = state[b"guardians"]
        cards = [ContactCard.from_bytes(entry_bytes(entries, i)) for i in range(len(entries))]
        sender_card = next((c for c in cards if c.identity_id == sender), None)
        if sender_card is None:
            raise UnexpectedRecoveryError("guardian info from someone we did not ask")
        if b"process" in state:
            return []  # the first answer set the request up; later ones are redundant
        info = InfoMessage.from_bytes(data)
        gset, head = info.guardian_set, info.document
        subject = IdentityId(entry_bytes(state[b"subject"], 0))
        if (
            gset.subject != subject
            or head.subject != subject
            or head.guardians != gset.set_hash
            or gset.index_of(sender_card.identity_key) is None
        ):
            raise UnexpectedRecoveryError("the guardian info does not fit the identity")
        lock = entry_int(state[b"lock"], 0) / 1000
        request = RecoveryRequest.create(identity, head, gset, now=now, lock=lock)
        process = RecoveryProcess(request, gset, head)
        self._put(b"process", [process.to_bytes(), head.to_bytes(), gset.to_bytes()])
        outgoing = RequestMessage(request, requester).to_bytes()
        return [Outgoing(card, KIND_REQUEST, outgoing) for card in cards]

    def _save(self, process: RecoveryProcess) -> None:
        self._put(b"process", [process.to_bytes(), *self._state[b"process"][1:]])

    def approval_received(
        self, identity: Identity, sender: IdentityId, data: bytes, *, now: float
    ) -> int:
        """A guardian's approval and released share; the number of approvals now."""
        self._active()
        process = self._process()
        if process is None:
            raise UnexpectedRecoveryError("an approval before any request")
        answer = ApprovalMessage.from_bytes(data)
        approval, release = answer.approval, answer.release
        gset = self._gset()
        if not 0 <= approval.index < len(gset.guardians) or sender != IdentityId.derive(
            gset.guardians[approval.index].identity_key.to_bytes()
        ):
            raise ForgedRecordError
        before = process.approvals
        process.add_approval(approval, release, now=now)
        if process.approvals == before:
            raise ReplayedRecoveryError("this guardian approved already")
        release.check(identity, process.request)  # refused: the process is not saved
        self._save(process)
        return process.approvals

    def veto_received(self, veto: RecoveryVeto, *, now: float) -> bool:
        """Apply a veto if it is for our request; False if it is not ours.

        A veto newly applied shows in :meth:`changes`.
        """
        process = self._process() if self._under_way else None
        if process is None or veto.request_hash != process.request.request_hash:
            return False
        if not process.vetoed:
            process.add_veto(veto, now=now)
            self._save(process)
        return True

    def finish(self, identity: Identity, *, now: float) -> DocumentChain:
        """Complete the recovery (after the lock, with M approvals): our continued chain.

        The caller adopts the chain and sends its head to every contact.
        """
        if not self._under_way:
            raise RecoveryStateError("no_recovery", "no recovery is under way")
        process = self._process()
        if process is None:
            raise RecoveryStateError("no_recovery", "no guardian has answered yet")
        old_head = IdentityDocument.from_bytes(entry_bytes(self._state[b"process"], 1))
        _cert, doc = process.complete(identity, now=now)
        chain = DocumentChain(old_head)
        chain.update(doc)
        self._put(b"done", [to_ms(now)])
        return chain

    def status(self, *, now: float) -> dict[str, Any]:
        """Where the recovery stands."""
        state = self._state
        if not state:
            return {"state": "none"}
        report: dict[str, Any] = {
            "subject": str(IdentityId(entry_bytes(state[b"subject"], 0))),
            "guardians": len(state[b"guardians"]),
        }
        process = self._process()
        if b"done" in state:
            return {**report, "state": "done"}
        if process is None:
            return {**report, "state": "waiting_for_guardians"}
        request, threshold = process.request, self._gset().threshold
        phase = "vetoed" if process.vetoed else "time_locked"
        if not process.vetoed and to_ms(now) >= request.not_before_ms:
            phase = "ready" if process.approvals >= threshold else "approving"
        return {
            **report,
            "state": phase,
            "request_id": request.request_hash.hex(),
            "approvals": process.approvals,
            "threshold": threshold,
            "not_before": request.not_before_ms / 1000,
            "expires": request.expires_ms / 1000,
        }
