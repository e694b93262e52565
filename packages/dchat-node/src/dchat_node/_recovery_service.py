"""The recovering node: getting an identity back through its guardians.

Theory of operation (a new node, every old device lost)::

    start(subject, guardians, lock)   new keys (the node's identity), then
        --- guardian.lookup ---------> each named guardian
        <-- guardian.info ------------ the first answer: guardian set + newest document
    RecoveryRequest.create(now, lock)
        --- guardian.request --------> each guardian (who tells the old key: guardian.alert)
        <-- guardian.approval -------- approvals; each released share is opened on arrival
        <-- guardian.veto ------------ the old key, if it still exists, before the lock ends
    finish()  after the lock, with M approvals: RecoveryProcess.complete ->
        the old chain continued by a document signed by the new key and carrying the
        recovery certificate; sent (with our new card) to every contact.

State lives in one sealed blob (``recovery.state``), written after every
accepted message, so a crash loses nothing; a refused message changes
nothing. Forged or replayed approvals, shares that do not open, and vetoes
that do not verify are refused with typed errors (counted by the mailbox).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from dchat_core import IdentityId
from dchat_identity import (
    ContactCard,
    DocumentChain,
    ForgedRecordError,
    GuardianSet,
    IdentityDocument,
    RecoveryProcess,
    RecoveryRequest,
)

from ._documents import DOCUMENT_KIND
from ._errors import NodeStateError
from ._guardian_state import Entry, entry_bytes, entry_int, load_map, store_map
from ._guardian_wire import (
    KIND_APPROVAL,
    KIND_INFO,
    KIND_LOOKUP,
    KIND_REQUEST,
    ApprovalMessage,
    InfoMessage,
    LookupMessage,
    ReplayedRecoveryError,
    RequestMessage,
    UnexpectedRecoveryError,
)

if TYPE_CHECKING:
    from dchat_identity import Identity, RecoveryVeto
    from dchat_messaging import MessageReceived as OpenedMessage

    from ._documents import DocumentService
    from ._user_service import UserService

__all__ = ("RecoveryService",)

_log = logging.getLogger("dchat.recovery")
_STATE: Final = "recovery.state"
# b"subject" -> [id]; b"guardians" -> [card, ...]; b"lock" -> [ms];
# b"process" -> [RecoveryProcess, old head, guardian set]; b"done" -> [ms]


class RecoveryService:
    """Drives one recovery of an identity whose devices are all lost."""

    def __init__(self, user: UserService, documents: DocumentService) -> None:
        self._user = user
        self._documents = documents
        user.on_control(KIND_INFO, self._info_received)
        user.on_control(KIND_APPROVAL, self._approval_received)

    async def start(
        self, subject: IdentityId, guardians: list[str], *, lock: float, name: str | None
    ) -> dict[str, Any]:
        """Begin recovering ``subject`` through the contacts ``guardians``.

        Creates this node's identity (the new keys) if it has none yet.
        """
        state = await load_map(self._user, _STATE)
        if state and b"done" not in state:
            raise NodeStateError("recovery_in_progress", "a recovery is already under way")
        if not 2 <= len(guardians) <= 16 or lock < 0:
            raise NodeStateError("invalid_recovery", "name 2-16 guardians and a lock >= 0")
        cards = [await self._guardian_card(n) for n in guardians]
        if not self._user.has_identity:
            await self._user.create_identity(name or "recovered")
        state = {
            b"subject": [bytes(subject)],
            b"guardians": [card.to_bytes() for card in cards],
            b"lock": [int(lock * 1000)],
        }
        await store_map(self._user, _STATE, state)
        lookup = LookupMessage(subject, self._user.card).to_bytes()
        for card in cards:
            await self._user.send_control(card, KIND_LOOKUP, lookup)
        return await self.status()

    async def _guardian_card(self, name: str) -> ContactCard:
        for record in await self._user.contacts():
            if record.name == name:
                return ContactCard.from_bytes(record.card)
        raise NodeStateError("unknown_contact", f"no contact named {name!r}")

    async def _active(self) -> dict[bytes, Entry]:
        state = await load_map(self._user, _STATE)
        if not state or b"done" in state:
            raise UnexpectedRecoveryError("no recovery is under way")
        return state

    def _process(self, state: dict[bytes, Entry]) -> RecoveryProcess | None:
        if b"process" not in state:
            return None
        return RecoveryProcess.from_bytes(entry_bytes(state[b"process"], 0))

    async def _save(self, state: dict[bytes, Entry], process: RecoveryProcess) -> None:
        state[b"process"] = [process.to_bytes(), *state[b"process"][1:]]
        await store_map(self._user, _STATE, state)

    async def _info_received(self, message: OpenedMessage, identity: Identity) -> None:
        state = await self._active()
        self._check_main(identity)
        cards = [ContactCard.from_bytes(entry_bytes(state[b"guardians"], i))
                 for i in range(len(state[b"guardians"]))]  # fmt: skip
        sender = next((c for c in cards if c.identity_id == message.sender), None)
        if sender is None:
            raise UnexpectedRecoveryError("guardian info from someone we did not ask")
        if b"process" in state:
            return  # the first answer set the request up; later ones are redundant
        info = InfoMessage.from_bytes(message.data)
        gset, head = info.guardian_set, info.document
        subject = IdentityId(entry_bytes(state[b"subject"], 0))
        if (
            gset.subject != subject
            or head.subject != subject
            or head.guardians != gset.set_hash
            or gset.index_of(sender.identity_key) is None
        ):
            raise UnexpectedRecoveryError("the guardian info does not fit the identity")
        lock = entry_int(state[b"lock"], 0)
        request = RecoveryRequest.create(
            identity, head, gset, now=self._user.now(), lock=lock / 1000
        )
        process = RecoveryProcess(request, gset, head)
        state[b"process"] = [process.to_bytes(), head.to_bytes(), gset.to_bytes()]
        await store_map(self._user, _STATE, state)
        outgoing = RequestMessage(request, self._user.card).to_bytes()
        for card in cards:
            await self._user.send_control(card, KIND_REQUEST, outgoing)
        _log.info("recovery request sent to the guardians")

    def _check_main(self, identity: Identity) -> None:
        if identity.identity_id != self._user.identity.identity_id:
            raise UnexpectedRecoveryError("recovery messages go to the main identity")

    async def _approval_received(self, message: OpenedMessage, identity: Identity) -> None:
        state = await self._active()
        self._check_main(identity)
        process = self._process(state)
        if process is None:
            raise UnexpectedRecoveryError("an approval before any request")
        answer = ApprovalMessage.from_bytes(message.data)
        approval, release = answer.approval, answer.release
        gset = _gset(state)
        if not 0 <= approval.index < len(gset.guardians) or message.sender != IdentityId.derive(
            gset.guardians[approval.index].identity_key.to_bytes()
        ):
            raise ForgedRecordError
        before = process.approvals
        process.add_approval(approval, release, now=self._user.now())
        if process.approvals == before:
            raise ReplayedRecoveryError("this guardian approved already")
        release.check(identity, process.request)  # refused: the process is not saved
        await self._save(state, process)
        _log.info("guardian approval recorded", extra={"approvals": process.approvals})

    async def veto_received(self, veto: RecoveryVeto) -> bool:
        """Apply a veto if it is for our request; False if it is not ours."""
        state = await load_map(self._user, _STATE)
        process = None if not state or b"done" in state else self._process(state)
        if process is None or veto.request_hash != process.request.request_hash:
            return False
        if process.vetoed:
            return True
        process.add_veto(veto, now=self._user.now())
        await self._save(state, process)
        _log.warning("the identity's current key vetoed this recovery")
        return True

    async def finish(self) -> dict[str, Any]:
        """Complete the recovery (after the lock, with M approvals); announce it."""
        state = await load_map(self._user, _STATE)
        if not state or b"done" in state:
            raise NodeStateError("no_recovery", "no recovery is under way")
        process = self._process(state)
        if process is None:
            raise NodeStateError("no_recovery", "no guardian has answered yet")
        old_head = IdentityDocument.from_bytes(entry_bytes(state[b"process"], 1))
        _cert, doc = process.complete(self._user.identity, now=self._user.now())
        chain = DocumentChain(old_head)
        chain.update(doc)
        await self._documents.replace_own(chain)
        state[b"done"] = [int(self._user.now() * 1000)]
        await store_map(self._user, _STATE, state)
        for contact in await self._user.contacts():
            if self._user.is_quiet(contact.identity_id):
                continue
            await self._user.send_control(
                ContactCard.from_bytes(contact.card),
                DOCUMENT_KIND,
                doc.to_bytes(),
                sender_card=self._user.card,
            )
        _log.info("identity recovered", extra={"seq": doc.seq})
        return await self.status()

    async def status(self) -> dict[str, Any]:
        """Where the recovery stands."""
        state = await load_map(self._user, _STATE)
        if not state:
            return {"state": "none"}
        report: dict[str, Any] = {
            "subject": str(IdentityId(entry_bytes(state[b"subject"], 0))),
            "guardians": len(state[b"guardians"]),
        }
        process = self._process(state)
        if b"done" in state:
            return {**report, "state": "done"}
        if process is None:
            return {**report, "state": "waiting_for_guardians"}
        request = process.request
        now_ms = int(self._user.now() * 1000)
        phase = "vetoed" if process.vetoed else "time_locked"
        if not process.vetoed and now_ms >= request.not_before_ms:
            phase = "ready" if process.approvals >= _gset(state).threshold else "approving"
        return {
            **report,
            "state": phase,
            "request_id": request.request_hash.hex(),
            "approvals": process.approvals,
            "threshold": _gset(state).threshold,
            "not_before": request.not_before_ms / 1000,
            "expires": request.expires_ms / 1000,
        }


def _gset(state: dict[bytes, Entry]) -> GuardianSet:
    return GuardianSet.from_bytes(entry_bytes(state[b"process"], 2))
