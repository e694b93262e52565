"""Guardian recovery on a user node: the trio shells around the identity agents.

The rules live in :mod:`dchat_identity` (:class:`GuardianAgent` for the owner
and the guardian, :class:`RecoveryAgent` for the recovering node, see their
theory of operation). For each API call or control message a shell loads
the agent's sealed maps from the settings table, hands it the document
chains it needs, runs one step with ``now``, stores what changed and sends
what the step returned (:func:`._guardian_state.commit`). Guardian business
is the main identity's: a burner never takes part.

Recovering node (:class:`RecoveryService`): its state is ``recovery.state``,
written after every accepted message, so a crash loses nothing; it creates
the node's identity (the new keys) when a recovery starts, and on finish
adopts the continued document chain and sends its head, with our new card,
to every contact that is not a burner's.

Contact: when a contact's key rotates through a recovery, its stored card is
replaced by the card that came with the rotated document, mail signed by the
old key is refused from then on, and a share held for it is dropped. Shares
and recovery secrets are never logged.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from dchat_core import IdentityId
from dchat_identity.lowlevel import (
    GUARDIAN_KINDS,
    GUARDIAN_STATE,
    KIND_APPROVAL,
    KIND_INFO,
    KIND_VETO,
    RECOVERY_STATE,
    GuardianAgent,
    RecoveryAgent,
    VetoMessage,
)

from .._errors import NodeStateError
from ._guardian_state import check_main, commit, one_step_at_a_time, send_all, state_errors

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from dchat_identity import ContactCard, DocumentChain, Identity, IdentityDocument, RecoveryVeto
    from dchat_messaging import MessageReceived as OpenedMessage

    from ._documents import DocumentService
    from ._service import UserService

__all__ = ("GuardianService", "RecoveryService")

_log = logging.getLogger("dchat.guardians")
_rlog = logging.getLogger("dchat.recovery")
if TYPE_CHECKING:
    _Wanted = Callable[[GuardianAgent], Iterable[IdentityId]]


class RecoveryService:
    """Drives one recovery of an identity whose devices are all lost."""

    def __init__(self, user: UserService, documents: DocumentService, steps: trio.Lock) -> None:
        self._user = user
        self._documents = documents
        self._steps = steps
        user.agent.on_control(KIND_INFO, self._info_received)
        user.agent.on_control(KIND_APPROVAL, self._approval_received)

    async def _agent(self) -> RecoveryAgent:
        stored = await self._user.state_get(RECOVERY_STATE)
        with state_errors():
            return RecoveryAgent(stored)

    @one_step_at_a_time
    async def start(
        self, subject: IdentityId, guardians: list[str], *, lock: float, name: str | None
    ) -> dict[str, Any]:
        """Begin recovering ``subject`` through the contacts ``guardians``.

        Creates this node's identity (the new keys) if it has none yet.
        """
        agent = await self._agent()
        with state_errors():
            agent.check_start(len(guardians), lock=lock)
        cards = [await self._user.run(self._user.book.named, n) for n in guardians]
        if not self._user.has_identity:
            await self._user.create_identity(name or "recovered")
        lookups = agent.start(subject, cards, self._user.card, lock=lock)
        await commit(self._user, agent.changes(), lookups)
        return await self.status()

    @one_step_at_a_time
    async def _info_received(self, message: OpenedMessage, identity: Identity) -> None:
        check_main(self._user, identity)
        agent = await self._agent()
        requests = agent.info_received(
            identity, message.sender, message.data, self._user.card, now=self._user.now()
        )
        if requests:
            await commit(self._user, agent.changes(), requests)
            _rlog.info("recovery request sent to the guardians")

    @one_step_at_a_time
    async def _approval_received(self, message: OpenedMessage, identity: Identity) -> None:
        check_main(self._user, identity)
        agent = await self._agent()
        count = agent.approval_received(
            identity, message.sender, message.data, now=self._user.now()
        )
        await commit(self._user, agent.changes())
        _rlog.info("guardian approval recorded", extra={"approvals": count})

    async def veto_received(self, veto: RecoveryVeto) -> bool:
        """Apply a veto if it is for our request; False if it is not ours."""
        agent = await self._agent()
        if not agent.veto_received(veto, now=self._user.now()):
            return False
        if agent.changes():
            await commit(self._user, agent.changes())
            _rlog.warning("the identity's current key vetoed this recovery")
        return True

    @one_step_at_a_time
    async def finish(self) -> dict[str, Any]:
        """Complete the recovery (after the lock, with M approvals); announce it."""
        if not self._user.has_identity:  # the identity is made when a recovery starts
            raise NodeStateError("no_recovery", "no recovery is under way")
        agent = await self._agent()
        with state_errors():
            chain = agent.finish(self._user.identity, now=self._user.now())
        await self._documents.replace_own(chain)
        await commit(self._user, agent.changes())
        await self._documents.announce(chain.head, sender_card=self._user.card)
        _rlog.info("identity recovered", extra={"seq": chain.head.seq})
        return await self.status()

    async def status(self) -> dict[str, Any]:
        """Where the recovery stands."""
        agent = await self._agent()
        with state_errors():
            return agent.status(now=self._user.now())


class GuardianService:
    """The owner's and the guardian's side of guardian recovery."""

    def __init__(self, user: UserService, documents: DocumentService, *, min_lock: float) -> None:
        self._user = user
        self._documents = documents
        self._min_lock = min_lock
        self._steps = trio.Lock()  # one agent step at a time, this service's or recovery's
        self.recovery = RecoveryService(user, documents, self._steps)
        for kind in GUARDIAN_KINDS:
            user.agent.on_control(kind, self._received)
        documents.on_rotation(self._contact_rotated)

    async def _agent(self, wanted: _Wanted = lambda _agent: ()) -> GuardianAgent:
        """The agent over our stored maps, believing our chains of the ``wanted`` identities."""
        blobs = {key: await self._user.state_get(key) for key in GUARDIAN_STATE}
        agent = GuardianAgent(blobs, min_lock=self._min_lock)
        with state_errors():
            subjects = set(wanted(agent))
        for subject in subjects:
            agent.believe(await self._documents.peer_chain(subject))
        return agent

    # -- owner ---------------------------------------------------------------------

    @one_step_at_a_time
    async def setup(self, names: list[str], threshold: int) -> dict[str, Any]:
        """Make the contacts ``names`` our guardians, ``threshold`` of them needed."""
        guardians = [
            (name, await self._user.run(self._user.book.named, name, quiet_ok=False))
            for name in names
        ]
        head = await self._documents.head()
        agent = await self._agent()
        gset, shares = agent.setup(self._user.card, head.subject, guardians, threshold)
        await commit(self._user, agent.changes())
        await self._documents.publish(guardians=gset.set_hash)
        await send_all(self._user, shares)
        _log.info("guardian set published", extra={"guardians": len(names), "m": threshold})
        return await self.describe()

    async def describe(self) -> dict[str, Any]:
        """Our guardian set (names, ids, threshold) and the recovery alerts received."""
        with state_errors():
            return (await self._agent()).describe()

    @one_step_at_a_time
    async def veto(self, request_id: str) -> dict[str, Any]:
        """Refuse a recovery request with the current key (before its time lock ends)."""
        if not self._user.has_identity:  # alerts come only to an identity
            raise NodeStateError("not_found", "no such recovery alert")
        agent = await self._agent()
        with state_errors():
            report, vetoes = agent.veto(self._user.identity, request_id, now=self._user.now())
        await send_all(self._user, vetoes)
        await commit(self._user, agent.changes())
        return report

    # -- guardian --------------------------------------------------------------------

    @one_step_at_a_time
    async def _received(self, message: OpenedMessage, identity: Identity) -> None:
        """A guardian control message to our identity: one agent step."""
        check_main(self._user, identity)
        kind, data = message.kind, message.data
        if kind == KIND_VETO and await self.recovery.veto_received(
            VetoMessage.from_bytes(data).veto
        ):
            return  # it was for our own recovery
        agent = await self._agent(lambda agent: agent.needs(kind, data))
        step = agent.receive(kind, identity, message.sender, data, now=self._user.now())
        await commit(self._user, agent.changes(), step.outgoing)
        if step.note is not None:
            _log.log(logging.WARNING if step.warn else logging.INFO, step.note)

    async def held(self) -> list[dict[str, Any]]:
        """The shares we hold for others (never the shares themselves)."""
        with state_errors():
            return (await self._agent()).held()

    async def requests(self) -> list[dict[str, Any]]:
        """Recovery requests waiting for (or given) our approval."""
        with state_errors():
            return (await self._agent()).requests()

    @one_step_at_a_time
    async def approve(self, request_id: str) -> dict[str, Any]:
        """Approve a request: sign it and release our share to its new key.

        Approve only after checking out of band (a call, a meeting) that the
        request really comes from the person.
        """
        if not self._user.has_identity:  # requests come only to an identity
            raise NodeStateError("not_found", "no such recovery request")
        agent = await self._agent(GuardianAgent.held_subjects)
        with state_errors():
            report, answer = agent.approve(self._user.identity, request_id, now=self._user.now())
        await send_all(self._user, [answer])
        await commit(self._user, agent.changes())
        _log.info("approved a recovery request")
        return report

    # -- contact ---------------------------------------------------------------------

    @one_step_at_a_time
    async def _contact_rotated(
        self, chain: DocumentChain, previous: IdentityDocument, card: ContactCard
    ) -> None:
        old = IdentityId.derive(previous.identity_key.to_bytes())
        await self._user.run(self._user.book.replace, old, card)
        await self._user.run(self._user.senders.retire, old)
        agent = await self._agent()
        if agent.forget(chain.subject):  # the set is gone with the key
            await commit(self._user, agent.changes())
        _log.info("a contact's identity key rotated (guardian recovery)")
