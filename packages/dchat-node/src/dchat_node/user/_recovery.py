"""The recovering node: the trio shell around :class:`dchat_identity.lowlevel.RecoveryAgent`.

The agent holds the rules and the flow (lookup, request, approvals, veto,
finish; see its theory of operation). This shell keeps its state sealed in
the settings table (``recovery.state``, written after every accepted
message, so a crash loses nothing), creates the node's identity (the new
keys) when a recovery starts, sends what the agent returns, and on finish
adopts the continued document chain and sends its head, with our new card,
to every contact that is not a burner's.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from dchat_identity import ContactCard
from dchat_identity.lowlevel import (
    DOCUMENT_KIND,
    KIND_APPROVAL,
    KIND_INFO,
    RECOVERY_STATE,
    RecoveryAgent,
)

from .._errors import NodeStateError
from ._guardian_state import check_main, send_all, state_errors, store_blobs

if TYPE_CHECKING:
    from dchat_core import IdentityId
    from dchat_identity import Identity, RecoveryVeto
    from dchat_messaging import MessageReceived as OpenedMessage

    from ._documents import DocumentService
    from ._service import UserService

__all__ = ("RecoveryService",)

_log = logging.getLogger("dchat.recovery")


class RecoveryService:
    """Drives one recovery of an identity whose devices are all lost."""

    def __init__(self, user: UserService, documents: DocumentService) -> None:
        self._user = user
        self._documents = documents
        user.on_control(KIND_INFO, self._info_received)
        user.on_control(KIND_APPROVAL, self._approval_received)

    async def _agent(self) -> RecoveryAgent:
        stored = await self._user.state_get(RECOVERY_STATE)
        with state_errors():
            return RecoveryAgent(stored)

    async def start(
        self, subject: IdentityId, guardians: list[str], *, lock: float, name: str | None
    ) -> dict[str, Any]:
        """Begin recovering ``subject`` through the contacts ``guardians``.

        Creates this node's identity (the new keys) if it has none yet.
        """
        agent = await self._agent()
        with state_errors():
            agent.check_start(len(guardians), lock=lock)
        cards = [await self._guardian_card(n) for n in guardians]
        if not self._user.has_identity:
            await self._user.create_identity(name or "recovered")
        lookups = agent.start(subject, cards, self._user.card, lock=lock)
        await store_blobs(self._user, agent.changes())
        await send_all(self._user, lookups)
        return await self.status()

    async def _guardian_card(self, name: str) -> ContactCard:
        for record in await self._user.contacts():
            if record.name == name:
                return ContactCard.from_bytes(record.card)
        raise NodeStateError("unknown_contact", f"no contact named {name!r}")

    async def _info_received(self, message: OpenedMessage, identity: Identity) -> None:
        check_main(self._user, identity)
        agent = await self._agent()
        requests = agent.info_received(
            identity, message.sender, message.data, self._user.card, now=self._user.now()
        )
        if requests:
            await store_blobs(self._user, agent.changes())
            await send_all(self._user, requests)
            _log.info("recovery request sent to the guardians")

    async def _approval_received(self, message: OpenedMessage, identity: Identity) -> None:
        check_main(self._user, identity)
        agent = await self._agent()
        count = agent.approval_received(
            identity, message.sender, message.data, now=self._user.now()
        )
        await store_blobs(self._user, agent.changes())
        _log.info("guardian approval recorded", extra={"approvals": count})

    async def veto_received(self, veto: RecoveryVeto) -> bool:
        """Apply a veto if it is for our request; False if it is not ours."""
        agent = await self._agent()
        if not agent.veto_received(veto, now=self._user.now()):
            return False
        if agent.changes():
            await store_blobs(self._user, agent.changes())
            _log.warning("the identity's current key vetoed this recovery")
        return True

    async def finish(self) -> dict[str, Any]:
        """Complete the recovery (after the lock, with M approvals); announce it."""
        if not self._user.has_identity:  # the identity is made when a recovery starts
            raise NodeStateError("no_recovery", "no recovery is under way")
        agent = await self._agent()
        with state_errors():
            chain = agent.finish(self._user.identity, now=self._user.now())
        await self._documents.replace_own(chain)
        await store_blobs(self._user, agent.changes())
        for contact in await self._user.contacts():
            if self._user.is_quiet(contact.identity_id):
                continue
            await self._user.send_control(
                ContactCard.from_bytes(contact.card),
                DOCUMENT_KIND,
                chain.head.to_bytes(),
                sender_card=self._user.card,
            )
        _log.info("identity recovered", extra={"seq": chain.head.seq})
        return await self.status()

    async def status(self) -> dict[str, Any]:
        """Where the recovery stands."""
        agent = await self._agent()
        with state_errors():
            return agent.status(now=self._user.now())
