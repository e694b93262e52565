"""Guardian recovery on a user node: as the owner, as a guardian, and as a contact.

Owner: :meth:`GuardianService.setup` picks contacts as guardians, splits a
recovery secret (:func:`dchat_identity.setup_guardians`), publishes the set's
hash in the next identity document and sends each guardian its sealed share
(``guardian.share``). When a guardian forwards a recovery request
(``guardian.alert``), the owner can :meth:`veto` it until its time lock ends;
the veto goes to every guardian and to the requester.

Guardian: keeps the shares it receives, answers ``guardian.lookup`` with the
set and the newest document of the subject it follows, records
``guardian.request`` messages (refusing replays, requests for a version other
than the one it follows, and time locks below ``guardian_min_lock``), tells
the owner, and on :meth:`approve` sends the signed approval with its share
re-sealed to the new key. A vetoed request is never approved.

Contact: when a contact's key rotates through a recovery, its stored card is
replaced by the card that came with the rotated document, and mail signed by
the old key is refused from then on.

The recovering side is :mod:`._recovery_service`. Shares and recovery
secrets are never logged.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DchatError, IdentityId
from dchat_identity import (
    ContactCard,
    Guardian,
    GuardianSet,
    InvalidCardError,
    RecoveryProcess,
    RecoveryRequest,
    RecoveryVeto,
    approve_recovery,
    setup_guardians,
)
from dchat_identity.lowlevel import GuardianShare, TimeLockedError, VetoedError

from ._errors import NodeStateError
from ._guardian_state import Entry, entry_bytes, entry_str, load_map, store_map
from ._guardian_wire import (
    KIND_ALERT,
    KIND_APPROVAL,
    KIND_INFO,
    KIND_LOOKUP,
    KIND_REQUEST,
    KIND_SHARE,
    KIND_VETO,
    ApprovalMessage,
    InfoMessage,
    LookupMessage,
    RecoveryLockTooShortError,
    ReplayedRecoveryError,
    RequestMessage,
    ShareMessage,
    UnexpectedRecoveryError,
    VetoMessage,
)
from ._recovery_service import RecoveryService

if TYPE_CHECKING:
    from dchat_identity import DocumentChain, Identity, IdentityDocument
    from dchat_messaging import MessageReceived as OpenedMessage

    from ._documents import DocumentService
    from ._user_service import UserService

__all__ = ("GuardianService",)

_log = logging.getLogger("dchat.guardians")
_MINE: Final = "guardian.mine"  # b"set" -> [gset, card, card, ...]; b"names" -> [name, ...]
_HELD: Final = "guardian.held"  # subject -> [share, owner card]
_REQUESTS: Final = "guardian.requests"  # request hash -> [request, card, status, received ms]
_ALERTS: Final = "guardian.alerts"  # request hash -> [request, card, status]
_EARLY_VETOES: Final = "guardian.vetoes"  # request hash -> [veto]: arrived before the request
_MAX_REQUESTS: Final = 64
_SKEW_MS: Final = 300_000


class GuardianService:
    """The owner's and the guardian's side of guardian recovery."""

    def __init__(self, user: UserService, documents: DocumentService, *, min_lock: float) -> None:
        self._user = user
        self._documents = documents
        self._min_lock_ms = int(min_lock * 1000)
        self.recovery = RecoveryService(user, documents)
        user.on_control(KIND_SHARE, self._share_received)
        user.on_control(KIND_LOOKUP, self._lookup_received)
        user.on_control(KIND_REQUEST, self._request_received)
        user.on_control(KIND_ALERT, self._alert_received)
        user.on_control(KIND_VETO, self._veto_received)
        documents.on_rotation(self._contact_rotated)

    def _now_ms(self) -> int:
        return int(self._user.now() * 1000)

    def _main(self, identity: Identity) -> None:
        # Guardian business is the main identity's: a burner never takes part.
        if identity.identity_id != self._user.identity.identity_id:
            raise UnexpectedRecoveryError("guardian messages go to the main identity")

    # -- owner ---------------------------------------------------------------------

    async def setup(self, names: list[str], threshold: int) -> dict[str, Any]:
        """Make the contacts ``names`` our guardians, ``threshold`` of them needed."""
        cards = [await self._contact(name) for name in names]
        head = await self._documents.head()
        gset, shares = setup_guardians(
            head.subject, [Guardian.from_card(card) for card in cards], threshold
        )
        mine: dict[bytes, Entry] = {
            b"set": [gset.to_bytes(), *(card.to_bytes() for card in cards)],
            b"names": list(names),
        }
        await store_map(self._user, _MINE, mine)
        await self._documents.publish(guardians=gset.set_hash)
        for card, share in zip(cards, shares, strict=True):
            message = ShareMessage(share, self._user.card)
            await self._user.send_control(card, KIND_SHARE, message.to_bytes())
        _log.info("guardian set published", extra={"guardians": len(cards), "m": threshold})
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
        mine = await load_map(self._user, _MINE)
        alerts = await load_map(self._user, _ALERTS)
        report: dict[str, Any] = {"threshold": None, "guardians": [], "alerts": []}
        if mine:
            gset = _gset_of(mine)
            names = [str(n) for n in mine.get(b"names", [])]
            report["threshold"] = gset.threshold
            report["guardians"] = [
                {"name": name, "identity_id": str(IdentityId.derive(g.identity_key.to_bytes()))}
                for name, g in zip(names, gset.guardians, strict=True)
            ]
        for digest, entry in alerts.items():
            request = RecoveryRequest.from_bytes(entry_bytes(entry, 0))
            report["alerts"].append({**_request_json(digest, request), "status": entry[2]})
        return report

    async def _alert_received(self, message: OpenedMessage, identity: Identity) -> None:
        self._main(identity)
        incoming = RequestMessage.from_bytes(message.data)
        request = incoming.request
        head = await self._documents.head()
        if request.subject != head.subject or request.old_key != identity.signing_key.public_key:
            raise UnexpectedRecoveryError("the alert is not about this identity")
        mine = await load_map(self._user, _MINE)
        if not mine or not any(
            IdentityId.derive(g.identity_key.to_bytes()) == message.sender
            for g in _gset_of(mine).guardians
        ):
            raise UnexpectedRecoveryError("alerts come from our guardians")
        alerts = await load_map(self._user, _ALERTS)
        digest = request.request_hash
        if digest not in alerts:  # every guardian forwards the same request
            alerts[digest] = [request.to_bytes(), incoming.requester.to_bytes(), "open"]
            await store_map(self._user, _ALERTS, alerts)
            _log.warning("someone asked our guardians to recover this identity")

    async def veto(self, request_id: str) -> dict[str, Any]:
        """Refuse a recovery request with the current key (before its time lock ends)."""
        digest = _parse_request_id(request_id)
        alerts = await load_map(self._user, _ALERTS)
        if digest not in alerts:
            raise NodeStateError("not_found", "no such recovery alert")
        entry = alerts[digest]
        request = RecoveryRequest.from_bytes(entry_bytes(entry, 0))
        if self._now_ms() >= request.not_before_ms:
            raise TimeLockedError("the time lock has ended; a veto is too late")
        veto = RecoveryVeto.sign(self._user.identity, request, now=self._user.now())
        data = VetoMessage(veto).to_bytes()
        mine = await load_map(self._user, _MINE)
        guardians = mine.get(b"set", [])
        for index in range(1, len(guardians)):
            card = ContactCard.from_bytes(entry_bytes(guardians, index))
            await self._user.send_control(card, KIND_VETO, data)
        await self._user.send_control(
            ContactCard.from_bytes(entry_bytes(entry, 1)), KIND_VETO, data
        )
        alerts[digest] = [entry[0], entry[1], "vetoed"]
        await store_map(self._user, _ALERTS, alerts)
        return {**_request_json(digest, request), "status": "vetoed"}

    # -- guardian --------------------------------------------------------------------

    async def _share_received(self, message: OpenedMessage, identity: Identity) -> None:
        self._main(identity)
        gift = ShareMessage.from_bytes(message.data)
        share, gset = gift.share, gift.share.guardian_set
        if gset.guardians[share.index].identity_key != identity.signing_key.public_key:
            raise UnexpectedRecoveryError("this share is for another guardian")
        share.open(identity)  # refuse a box we could not open later (words discarded)
        if gift.owner.identity_id != message.sender or not await self._speaks_for(
            gset.subject, gift.owner
        ):
            raise UnexpectedRecoveryError("a share must come from the identity it protects")
        held = await load_map(self._user, _HELD)
        held[bytes(gset.subject)] = [share.to_bytes(), gift.owner.to_bytes()]
        await store_map(self._user, _HELD, held)
        _log.info("holding a guardian share", extra={"threshold": gset.threshold})

    async def _speaks_for(self, subject: IdentityId, card: ContactCard) -> bool:
        if card.identity_id == subject:
            return True
        chain = await self._documents.peer_chain(subject)
        return chain is not None and chain.identity_key == card.identity_key

    async def held(self) -> list[dict[str, Any]]:
        """The shares we hold for others (never the shares themselves)."""
        rows = []
        for subject, entry in (await load_map(self._user, _HELD)).items():
            share = GuardianShare.from_bytes(entry_bytes(entry, 0))
            owner = ContactCard.from_bytes(entry_bytes(entry, 1))
            rows.append(
                {
                    "subject": str(IdentityId(subject)),
                    "owner": owner.name,
                    "threshold": share.guardian_set.threshold,
                    "guardians": len(share.guardian_set.guardians),
                    "position": share.index,
                }
            )
        return rows

    async def _held_share(self, subject: IdentityId) -> tuple[GuardianShare, ContactCard]:
        entry = (await load_map(self._user, _HELD)).get(bytes(subject))
        if entry is None:
            raise UnexpectedRecoveryError("we hold no share for that identity")
        return (
            GuardianShare.from_bytes(entry_bytes(entry, 0)),
            ContactCard.from_bytes(entry_bytes(entry, 1)),
        )

    async def _followed_head(self, subject: IdentityId) -> IdentityDocument:
        chain = await self._documents.peer_chain(subject)
        if chain is None:
            raise UnexpectedRecoveryError("we follow no document of that identity")
        return chain.head

    async def _lookup_received(self, message: OpenedMessage, identity: Identity) -> None:
        self._main(identity)
        lookup = LookupMessage.from_bytes(message.data)
        if lookup.requester.identity_id != message.sender:
            raise UnexpectedRecoveryError("the lookup's card is not its sender's")
        share, _owner = await self._held_share(lookup.subject)
        head = await self._followed_head(lookup.subject)
        if head.guardians != share.guardian_set.set_hash:
            raise UnexpectedRecoveryError("that guardian set is no longer in force")
        info = InfoMessage(share.guardian_set, head)
        await self._user.send_control(lookup.requester, KIND_INFO, info.to_bytes())

    async def _request_received(self, message: OpenedMessage, identity: Identity) -> None:
        self._main(identity)
        incoming = RequestMessage.from_bytes(message.data)
        request, now_ms = incoming.request, self._now_ms()
        requests = await load_map(self._user, _REQUESTS)
        digest = request.request_hash
        if digest in requests:
            raise ReplayedRecoveryError("this recovery request was received before")
        if incoming.requester.identity_id != message.sender:
            raise UnexpectedRecoveryError("the request's card is not its sender's")
        share, owner = await self._held_share(request.subject)
        head = await self._followed_head(request.subject)
        if (
            request.guardian_set != share.guardian_set.set_hash
            or request.old_document != head.document_hash
        ):
            raise UnexpectedRecoveryError("the request is not for the version we follow")
        if request.expires_ms <= now_ms or request.created_ms > now_ms + _SKEW_MS:
            raise UnexpectedRecoveryError("the request is expired or from the future")
        if request.not_before_ms - request.created_ms < self._min_lock_ms:
            raise RecoveryLockTooShortError("the request's time lock is too short")
        requests = {d: e for d, e in requests.items() if _expires_ms(e) > now_ms}
        if len(requests) >= _MAX_REQUESTS:
            raise UnexpectedRecoveryError("too many pending recovery requests")
        status = "vetoed" if await self._early_veto(request, share, head) else "pending"
        requests[digest] = [request.to_bytes(), incoming.requester.to_bytes(), status, now_ms]
        await store_map(self._user, _REQUESTS, requests)
        # Tell the identity itself, in case its owner still has a device and can veto.
        await self._user.send_control(owner, KIND_ALERT, incoming.to_bytes())
        _log.warning("a recovery request is waiting for this guardian's approval")

    async def _early_veto(
        self, request: RecoveryRequest, share: GuardianShare, head: IdentityDocument
    ) -> bool:
        """Whether a valid veto for ``request`` arrived before it (mail is unordered)."""
        vetoes = await load_map(self._user, _EARLY_VETOES)
        entry = vetoes.pop(request.request_hash, None)
        if entry is None:
            return False
        await store_map(self._user, _EARLY_VETOES, vetoes)
        try:
            veto = RecoveryVeto.from_bytes(entry_bytes(entry, 0))
            RecoveryProcess(request, share.guardian_set, head).add_veto(veto, now=self._user.now())
        except DchatError:
            return False  # not a valid veto of this request after all
        return True

    async def requests(self) -> list[dict[str, Any]]:
        """Recovery requests waiting for (or given) our approval."""
        rows = []
        for digest, entry in (await load_map(self._user, _REQUESTS)).items():
            request = RecoveryRequest.from_bytes(entry_bytes(entry, 0))
            card = ContactCard.from_bytes(entry_bytes(entry, 1))
            rows.append(
                {
                    **_request_json(digest, request),
                    "status": entry_str(entry, 2),
                    "requester": card.name,
                    "requester_id": str(card.identity_id),
                }
            )
        return rows

    async def approve(self, request_id: str) -> dict[str, Any]:
        """Approve a request: sign it and release our share to its new key.

        Approve only after checking out of band (a call, a meeting) that the
        request really comes from the person.
        """
        digest = _parse_request_id(request_id)
        requests = await load_map(self._user, _REQUESTS)
        if digest not in requests:
            raise NodeStateError("not_found", "no such recovery request")
        entry = requests[digest]
        status = entry_str(entry, 2)
        if status == "vetoed":
            raise VetoedError("the identity's current key vetoed this recovery")
        if status == "approved":
            raise NodeStateError("already_approved", "this request was approved already")
        request = RecoveryRequest.from_bytes(entry_bytes(entry, 0))
        share, _owner = await self._held_share(request.subject)
        head = await self._followed_head(request.subject)
        if head.document_hash != request.old_document:
            raise NodeStateError("stale_request", "the identity published a newer version")
        approval, release = approve_recovery(
            self._user.identity, share, request, now=self._user.now()
        )
        card = ContactCard.from_bytes(entry_bytes(entry, 1))
        answer = ApprovalMessage(approval, release)
        await self._user.send_control(card, KIND_APPROVAL, answer.to_bytes())
        requests[digest] = [entry[0], entry[1], "approved", entry[3]]
        await store_map(self._user, _REQUESTS, requests)
        _log.info("approved a recovery request")
        return {**_request_json(digest, request), "status": "approved"}

    async def _veto_received(self, message: OpenedMessage, identity: Identity) -> None:
        self._main(identity)
        veto = VetoMessage.from_bytes(message.data).veto
        if await self.recovery.veto_received(veto):
            return
        requests = await load_map(self._user, _REQUESTS)
        entry = requests.get(veto.request_hash)
        if entry is None:
            await self._keep_early_veto(veto)
            return
        request = RecoveryRequest.from_bytes(entry_bytes(entry, 0))
        share, _owner = await self._held_share(request.subject)
        head = await self._followed_head(request.subject)
        # The process object checks the veto: the old key's signature, before the lock.
        RecoveryProcess(request, share.guardian_set, head).add_veto(veto, now=self._user.now())
        requests[veto.request_hash] = [entry[0], entry[1], "vetoed", entry[3]]
        await store_map(self._user, _REQUESTS, requests)
        _log.warning("a recovery request was vetoed by the identity's current key")

    async def _keep_early_veto(self, veto: RecoveryVeto) -> None:
        # It can be checked only against its request: keep it (bounded) until that comes.
        if not await load_map(self._user, _HELD):
            raise UnexpectedRecoveryError("a veto, but we are nobody's guardian")
        vetoes = await load_map(self._user, _EARLY_VETOES)
        if veto.request_hash not in vetoes and len(vetoes) >= _MAX_REQUESTS:
            raise UnexpectedRecoveryError("too many vetoes for unknown requests")
        vetoes[veto.request_hash] = [veto.to_bytes()]
        await store_map(self._user, _EARLY_VETOES, vetoes)

    # -- contact ---------------------------------------------------------------------

    async def _contact_rotated(
        self, chain: DocumentChain, previous: IdentityDocument, card: ContactCard | None
    ) -> None:
        head = chain.head
        if (
            card is None
            or card.identity_key != head.identity_key
            or card.encryption_key != head.encryption_key
        ):
            raise InvalidCardError("a recovered identity must send its new card")
        old = IdentityId.derive(previous.identity_key.to_bytes())
        await self._user.replace_contact(old, card)
        await self._user.refuse_sender(old)
        held = await load_map(self._user, _HELD)
        if held.pop(bytes(chain.subject), None) is not None:  # the set is gone with the key
            await store_map(self._user, _HELD, held)
        _log.info("a contact's identity key rotated (guardian recovery)")


def _gset_of(mine: dict[bytes, Entry]) -> GuardianSet:
    return GuardianSet.from_bytes(entry_bytes(mine[b"set"], 0))


def _expires_ms(entry: Entry) -> int:
    return RecoveryRequest.from_bytes(entry_bytes(entry, 0)).expires_ms


def _parse_request_id(text: str) -> bytes:
    try:
        digest = bytes.fromhex(text)
    except ValueError:
        digest = b""
    if len(digest) != 32:
        raise NodeStateError("not_found", "a request id is 64 hex digits")
    return digest


def _request_json(digest: bytes, request: RecoveryRequest) -> dict[str, Any]:
    return {
        "request_id": digest.hex(),
        "subject": str(request.subject),
        "new_key": request.new_key.to_bytes().hex(),
        "created": request.created_ms / 1000,
        "not_before": request.not_before_ms / 1000,
        "expires": request.expires_ms / 1000,
        "request": request.to_bytes().hex(),
    }
