"""Guardian recovery on a user node: the trio shell around the identity agents.

The rules live in :mod:`dchat_identity` (:class:`GuardianAgent` for the owner
and the guardian, :class:`RecoveryAgent` for the recovering node, see their
theory of operation). For each API call or control message this shell loads
the agent's sealed maps from the settings table, hands it the document
chains it needs, runs one step, stores what changed and sends what the step
returned through :class:`UserService`. Guardian business is the main
identity's: a burner never takes part.

Contact: when a contact's key rotates through a recovery, its stored card is
replaced by the card that came with the rotated document, mail signed by the
old key is refused from then on, and a share held for it is dropped. Shares
and recovery secrets are never logged.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from dchat_core import IdentityId
from dchat_identity import ContactCard
from dchat_identity.lowlevel import (
    GUARDIAN_STATE,
    KIND_ALERT,
    KIND_LOOKUP,
    KIND_REQUEST,
    KIND_SHARE,
    KIND_VETO,
    GuardianAgent,
    LookupMessage,
    RequestMessage,
    ShareMessage,
    VetoMessage,
)

from .._errors import NodeStateError
from ._guardian_state import check_main, load_blobs, send_all, state_errors, store_blobs
from ._recovery import RecoveryService

if TYPE_CHECKING:
    from dchat_identity import DocumentChain, Identity, IdentityDocument
    from dchat_messaging import MessageReceived as OpenedMessage

    from ._documents import DocumentService
    from ._service import UserService

__all__ = ("GuardianService",)

_log = logging.getLogger("dchat.guardians")


class GuardianService:
    """The owner's and the guardian's side of guardian recovery."""

    def __init__(self, user: UserService, documents: DocumentService, *, min_lock: float) -> None:
        self._user = user
        self._documents = documents
        self._min_lock = min_lock
        self.recovery = RecoveryService(user, documents)
        user.on_control(KIND_SHARE, self._share_received)
        user.on_control(KIND_LOOKUP, self._lookup_received)
        user.on_control(KIND_REQUEST, self._request_received)
        user.on_control(KIND_ALERT, self._alert_received)
        user.on_control(KIND_VETO, self._veto_received)
        documents.on_rotation(self._contact_rotated)

    async def _agent(self, *subjects: IdentityId, held: bool = False) -> GuardianAgent:
        """The agent over our stored maps, believing our chains of ``subjects``.

        ``held``: also of every identity whose share we hold.
        """
        blobs = await load_blobs(self._user, GUARDIAN_STATE)
        agent = GuardianAgent(blobs, min_lock=self._min_lock)
        with state_errors():
            wanted = {*subjects, *(agent.held_subjects() if held else ())}
        for subject in wanted:
            chain = await self._documents.peer_chain(subject)
            if chain is not None:
                agent.believe(chain)
        return agent

    async def _save(self, agent: GuardianAgent) -> None:
        await store_blobs(self._user, agent.changes())

    # -- owner ---------------------------------------------------------------------

    async def setup(self, names: list[str], threshold: int) -> dict[str, Any]:
        """Make the contacts ``names`` our guardians, ``threshold`` of them needed."""
        guardians = [(name, await self._contact(name)) for name in names]
        head = await self._documents.head()
        agent = await self._agent()
        gset, shares = agent.setup(self._user.card, head.subject, guardians, threshold)
        await self._save(agent)
        await self._documents.publish(guardians=gset.set_hash)
        await send_all(self._user, shares)
        _log.info("guardian set published", extra={"guardians": len(names), "m": threshold})
        return await self.describe()

    async def _contact(self, name: str) -> ContactCard:
        for record in await self._user.contacts():
            if record.name == name:
                if self._user.is_quiet(record.identity_id):
                    raise NodeStateError("quiet_contact", f"{name!r} is a burner's contact")
                return ContactCard.from_bytes(record.card)
        raise NodeStateError("unknown_contact", f"no contact named {name!r}")

    async def describe(self) -> dict[str, Any]:
        """Our guardian set (names, ids, threshold) and the recovery alerts received."""
        with state_errors():
            return (await self._agent()).describe()

    async def _alert_received(self, message: OpenedMessage, identity: Identity) -> None:
        check_main(self._user, identity)
        alert = RequestMessage.from_bytes(message.data)
        subject = (await self._documents.head()).subject
        agent = await self._agent()
        if agent.alert_received(identity, subject, message.sender, alert):
            await self._save(agent)
            _log.warning("someone asked our guardians to recover this identity")

    async def veto(self, request_id: str) -> dict[str, Any]:
        """Refuse a recovery request with the current key (before its time lock ends)."""
        if not self._user.has_identity:  # alerts come only to an identity
            raise NodeStateError("not_found", "no such recovery alert")
        agent = await self._agent()
        with state_errors():
            report, vetoes = agent.veto(self._user.identity, request_id, now=self._user.now())
        await send_all(self._user, vetoes)
        await self._save(agent)
        return report

    # -- guardian --------------------------------------------------------------------

    async def _share_received(self, message: OpenedMessage, identity: Identity) -> None:
        check_main(self._user, identity)
        gift = ShareMessage.from_bytes(message.data)
        agent = await self._agent(gift.share.guardian_set.subject)
        agent.share_received(identity, message.sender, gift)
        await self._save(agent)
        _log.info(
            "holding a guardian share", extra={"threshold": gift.share.guardian_set.threshold}
        )

    async def held(self) -> list[dict[str, Any]]:
        """The shares we hold for others (never the shares themselves)."""
        with state_errors():
            return (await self._agent()).held()

    async def _lookup_received(self, message: OpenedMessage, identity: Identity) -> None:
        check_main(self._user, identity)
        lookup = LookupMessage.from_bytes(message.data)
        agent = await self._agent(lookup.subject)
        await send_all(self._user, [agent.lookup_received(message.sender, lookup)])

    async def _request_received(self, message: OpenedMessage, identity: Identity) -> None:
        check_main(self._user, identity)
        incoming = RequestMessage.from_bytes(message.data)
        agent = await self._agent(incoming.request.subject)
        alert = agent.request_received(message.sender, incoming, now=self._user.now())
        await self._save(agent)
        await send_all(self._user, [alert])
        _log.warning("a recovery request is waiting for this guardian's approval")

    async def requests(self) -> list[dict[str, Any]]:
        """Recovery requests waiting for (or given) our approval."""
        with state_errors():
            return (await self._agent()).requests()

    async def approve(self, request_id: str) -> dict[str, Any]:
        """Approve a request: sign it and release our share to its new key.

        Approve only after checking out of band (a call, a meeting) that the
        request really comes from the person.
        """
        if not self._user.has_identity:  # requests come only to an identity
            raise NodeStateError("not_found", "no such recovery request")
        agent = await self._agent(held=True)
        with state_errors():
            report, answer = agent.approve(self._user.identity, request_id, now=self._user.now())
        await send_all(self._user, [answer])
        await self._save(agent)
        _log.info("approved a recovery request")
        return report

    async def _veto_received(self, message: OpenedMessage, identity: Identity) -> None:
        check_main(self._user, identity)
        veto = VetoMessage.from_bytes(message.data).veto
        if await self.recovery.veto_received(veto):
            return
        agent = await self._agent(held=True)
        applied = agent.veto_received(veto, now=self._user.now())
        await self._save(agent)
        if applied:
            _log.warning("a recovery request was vetoed by the identity's current key")

    # -- contact ---------------------------------------------------------------------

    async def _contact_rotated(
        self, chain: DocumentChain, previous: IdentityDocument, card: ContactCard
    ) -> None:
        old = IdentityId.derive(previous.identity_key.to_bytes())
        await self._user.replace_contact(old, card)
        await self._user.refuse_sender(old)
        agent = await self._agent()
        if agent.forget(chain.subject):  # the set is gone with the key
            await self._save(agent)
        _log.info("a contact's identity key rotated (guardian recovery)")
