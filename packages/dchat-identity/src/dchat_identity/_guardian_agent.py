"""The owner's and the guardian's side of guardian recovery, sans-IO.

Theory of operation. :class:`GuardianAgent` is rebuilt from the caller's
stored maps for each step, applies one step, and reports what changed
(:meth:`GuardianAgent.changes`) and what to send (:class:`Outgoing`); it reads
no clock (``now`` is an argument) and does no I/O. A step that raises changes
nothing the caller would store.

Owner: :meth:`~GuardianAgent.setup` splits a recovery secret among contacts
(:func:`setup_guardians`) and gives each its sealed share (``guardian.share``);
the caller publishes the set's hash in the next identity document. When a
guardian forwards a recovery request (``guardian.alert``) the owner may
:meth:`~GuardianAgent.veto` it until its time lock ends; the veto goes to
every guardian and to the requester.

Guardian: keeps the shares it receives (only from the identity they protect),
answers ``guardian.lookup`` with the set and the newest document of the
subject it follows, records ``guardian.request`` messages (refusing replays,
requests for a version other than the one it follows, expired or future ones,
and time locks below its policy), alerts the owner, and on
:meth:`~GuardianAgent.approve` releases its share re-sealed to the new key. A
vetoed request is never approved; a veto that arrives before its request
(mail is unordered) is kept, bounded, until the request comes.

Which documents the guardian follows is the caller's knowledge: it hands the
agent those chains (:meth:`~GuardianAgent.believe`). The stored maps::

    guardian.mine      b"set" -> [set, card, ...]; b"names" -> [name, ...]
    guardian.held      subject -> [share, owner card]
    guardian.requests  request hash -> [request, requester card, status, received ms]
    guardian.alerts    request hash -> [request, requester card, status]
    guardian.vetoes    request hash -> [veto]        (arrived before the request)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DchatError, IdentityId

from ._card import ContactCard
from ._errors import (
    RecoveryLockTooShortError,
    RecoveryStateError,
    ReplayedRecoveryError,
    TimeLockedError,
    UnexpectedRecoveryError,
    VetoedError,
)
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
    Outgoing,
    RequestMessage,
    ShareMessage,
    VetoMessage,
)
from ._guardians import Guardian, GuardianSet, GuardianShare, setup_guardians
from ._records import Rng, default_rng, to_ms
from ._recovery import RecoveryRequest, RecoveryVeto, approve_recovery
from ._recovery_process import RecoveryProcess
from ._stored_maps import EntryMap, decode_map, encode_map, entry_bytes, entry_str

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ._chain import DocumentChain
    from ._document import IdentityDocument
    from ._identity import Identity

__all__ = (
    "GUARDIAN_KINDS",
    "GUARDIAN_STATE",
    "GuardianAgent",
    "GuardianStep",
    "parse_request_id",
    "request_json",
)

_MINE: Final = "guardian.mine"
_HELD: Final = "guardian.held"
_REQUESTS: Final = "guardian.requests"
_ALERTS: Final = "guardian.alerts"
_EARLY_VETOES: Final = "guardian.vetoes"
GUARDIAN_STATE: Final = (_MINE, _HELD, _REQUESTS, _ALERTS, _EARLY_VETOES)
GUARDIAN_KINDS: Final = (KIND_SHARE, KIND_LOOKUP, KIND_REQUEST, KIND_ALERT, KIND_VETO)
"""The control messages an owner or a guardian takes (:meth:`GuardianAgent.receive`)."""
_MAX_REQUESTS: Final = 64
_SKEW_MS: Final = 300_000


@dataclass(frozen=True, slots=True)
class GuardianStep:
    """What one received message did: what to send, and a line for the caller's log."""

    outgoing: list[Outgoing]
    note: str | None = None  # None: nothing worth logging
    warn: bool = False  # the note is a warning: someone is recovering an identity


class GuardianAgent:
    """One step of guardian business, over the maps stored under :data:`GUARDIAN_STATE`.

    Args:
        stored: The blob stored under each key (missing or ``None``: empty).
        min_lock: The shortest time lock (seconds) this guardian accepts.
    """

    __slots__ = ("_chains", "_dirty", "_maps", "_min_lock_ms", "_stored")

    def __init__(self, stored: Mapping[str, bytes | None], *, min_lock: float = 0.0) -> None:
        self._stored = dict(stored)
        self._maps: dict[str, EntryMap] = {}
        self._dirty: set[str] = set()
        self._min_lock_ms = to_ms(min_lock)
        self._chains: dict[IdentityId, DocumentChain] = {}

    def _map(self, key: str) -> EntryMap:
        if key not in self._maps:
            self._maps[key] = decode_map(self._stored.get(key), key)
        return self._maps[key]

    def _put(self, key: str, value: EntryMap) -> None:
        self._maps[key] = value
        self._dirty.add(key)

    def changes(self) -> dict[str, bytes]:
        """The maps this agent changed, encoded: store each under its key."""
        return {key: encode_map(self._maps[key]) for key in GUARDIAN_STATE if key in self._dirty}

    def believe(self, chain: DocumentChain | None) -> None:
        """Tell the agent the document chain the caller follows for ``chain.subject``.

        ``None`` (the caller follows no chain for an identity the agent asked
        about) changes nothing: a step that needs that chain refuses.
        """
        if chain is not None:
            self._chains[chain.subject] = chain

    def held_subjects(self) -> list[IdentityId]:
        """The identities whose shares we hold (the chains worth :meth:`believe`-ing)."""
        return [IdentityId(subject) for subject in self._map(_HELD)]

    # -- received messages -------------------------------------------------------------

    def needs(self, kind: str, data: bytes) -> list[IdentityId]:
        """The identities whose chains a ``kind`` message needs: :meth:`believe` them first.

        Raises:
            UnexpectedRecoveryError: ``kind`` is not in :data:`GUARDIAN_KINDS`.
            DecodeError, MalformedRecordError: ``data`` is not a ``kind`` message.
            RecoveryStateError: ``corrupt_state`` (a veto needs the held shares' owners).
        """
        if kind == KIND_SHARE:
            return [ShareMessage.from_bytes(data).share.guardian_set.subject]
        if kind == KIND_LOOKUP:
            return [LookupMessage.from_bytes(data).subject]
        if kind in (KIND_REQUEST, KIND_ALERT):
            subject = RequestMessage.from_bytes(data).request.subject
            return [subject] if kind == KIND_REQUEST else []
        if kind == KIND_VETO:
            VetoMessage.from_bytes(data)
            return self.held_subjects()
        raise UnexpectedRecoveryError(f"{kind!r} is no guardian message")

    def receive(
        self, kind: str, identity: Identity, sender: IdentityId, data: bytes, *, now: float
    ) -> GuardianStep:
        """Take one ``kind`` message from ``sender`` to ``identity`` (ours).

        Dispatches to the step for ``kind`` below; an alert is checked against
        the subject of our guardian set (there is none: it is refused).

        Raises:
            UnexpectedRecoveryError, ReplayedRecoveryError, RecoveryLockTooShortError:
                refused (nothing changed).
            DecodeError, MalformedRecordError: ``data`` is not a ``kind`` message.
        """
        if kind == KIND_SHARE:
            gift = ShareMessage.from_bytes(data)
            self.share_received(identity, sender, gift)
            return GuardianStep([], "holding a guardian share")
        if kind == KIND_LOOKUP:
            return GuardianStep([self.lookup_received(sender, LookupMessage.from_bytes(data))])
        if kind == KIND_REQUEST:
            alert = self.request_received(sender, RequestMessage.from_bytes(data), now=now)
            note = "a recovery request is waiting for this guardian's approval"
            return GuardianStep([alert], note, warn=True)
        if kind == KIND_ALERT:
            gset = self._gset()
            if gset is None:
                raise UnexpectedRecoveryError("alerts come from our guardians")
            new = self.alert_received(
                identity, gset.subject, sender, RequestMessage.from_bytes(data)
            )
            note = "someone asked our guardians to recover this identity"
            return GuardianStep([], note if new else None, warn=True)
        if kind == KIND_VETO:
            applied = self.veto_received(VetoMessage.from_bytes(data).veto, now=now)
            note = "a recovery request was vetoed by the identity's current key"
            return GuardianStep([], note if applied else None, warn=True)
        raise UnexpectedRecoveryError(f"{kind!r} is no guardian message")

    # -- owner ---------------------------------------------------------------------

    def setup(
        self,
        owner: ContactCard,
        subject: IdentityId,
        guardians: Sequence[tuple[str, ContactCard]],
        threshold: int,
        *,
        rng: Rng = default_rng,
    ) -> tuple[GuardianSet, list[Outgoing]]:
        """Make the named contacts our guardians; the set and the shares to send them."""
        cards = [card for _, card in guardians]
        gset, shares = setup_guardians(
            subject, [Guardian.from_card(card) for card in cards], threshold, rng=rng
        )
        mine: EntryMap = {
            b"set": [gset.to_bytes(), *(card.to_bytes() for card in cards)],
            b"names": [name for name, _ in guardians],
        }
        self._put(_MINE, mine)
        data = [ShareMessage(share, owner).to_bytes() for share in shares]
        return gset, [Outgoing(card, KIND_SHARE, d) for card, d in zip(cards, data, strict=True)]

    def _gset(self) -> GuardianSet | None:
        mine = self._map(_MINE)
        return GuardianSet.from_bytes(entry_bytes(mine[b"set"], 0)) if mine else None

    def own_set(self) -> GuardianSet | None:
        """Our guardian set (None before a setup), e.g. for a node to mirror on a chain."""
        return self._gset()

    def describe(self) -> dict[str, Any]:
        """Our guardian set (names, ids, threshold) and the recovery alerts received."""
        report: dict[str, Any] = {"threshold": None, "guardians": [], "alerts": []}
        gset = self._gset()
        if gset is not None:
            names = [str(n) for n in self._map(_MINE).get(b"names", [])]
            report["threshold"] = gset.threshold
            report["guardians"] = [
                {"name": name, "identity_id": str(IdentityId.derive(g.identity_key.to_bytes()))}
                for name, g in zip(names, gset.guardians, strict=True)
            ]
        for digest, entry in self._map(_ALERTS).items():
            request = RecoveryRequest.from_bytes(entry_bytes(entry, 0))
            report["alerts"].append({**request_json(digest, request), "status": entry[2]})
        return report

    def alert_received(
        self, identity: Identity, subject: IdentityId, sender: IdentityId, alert: RequestMessage
    ) -> bool:
        """A guardian forwards a request to recover us (``subject``); True if it is new."""
        request = alert.request
        if request.subject != subject or request.old_key != identity.signing_key.public_key:
            raise UnexpectedRecoveryError("the alert is not about this identity")
        gset = self._gset()
        if gset is None or not any(
            IdentityId.derive(g.identity_key.to_bytes()) == sender for g in gset.guardians
        ):
            raise UnexpectedRecoveryError("alerts come from our guardians")
        alerts = self._map(_ALERTS)
        if request.request_hash in alerts:  # every guardian forwards the same request
            return False
        alerts[request.request_hash] = [request.to_bytes(), alert.requester.to_bytes(), "open"]
        self._dirty.add(_ALERTS)
        return True

    def veto(
        self, identity: Identity, request_id: str, *, now: float
    ) -> tuple[dict[str, Any], list[Outgoing]]:
        """Refuse a recovery request with the current key (before its time lock ends)."""
        digest = parse_request_id(request_id)
        alerts = self._map(_ALERTS)
        if digest not in alerts:
            raise RecoveryStateError("not_found", "no such recovery alert")
        entry = alerts[digest]
        request = RecoveryRequest.from_bytes(entry_bytes(entry, 0))
        if to_ms(now) >= request.not_before_ms:
            raise TimeLockedError("the time lock has ended; a veto is too late")
        data = VetoMessage(RecoveryVeto.sign(identity, request, now=now)).to_bytes()
        guardians = self._map(_MINE).get(b"set", [])
        cards = [
            ContactCard.from_bytes(entry_bytes(guardians, i)) for i in range(1, len(guardians))
        ]
        cards.append(ContactCard.from_bytes(entry_bytes(entry, 1)))
        alerts[digest] = [entry[0], entry[1], "vetoed"]
        self._dirty.add(_ALERTS)
        report = {**request_json(digest, request), "status": "vetoed"}
        return report, [Outgoing(card, KIND_VETO, data) for card in cards]

    # -- guardian --------------------------------------------------------------------

    def share_received(self, identity: Identity, sender: IdentityId, gift: ShareMessage) -> None:
        """Keep a share the owner ``sender`` gives us (believe their chain first)."""
        share, gset = gift.share, gift.share.guardian_set
        if gset.guardians[share.index].identity_key != identity.signing_key.public_key:
            raise UnexpectedRecoveryError("this share is for another guardian")
        share.open(identity)  # refuse a box we could not open later (words discarded)
        if gift.owner.identity_id != sender or not self._speaks_for(gset.subject, gift.owner):
            raise UnexpectedRecoveryError("a share must come from the identity it protects")
        self._map(_HELD)[bytes(gset.subject)] = [share.to_bytes(), gift.owner.to_bytes()]
        self._dirty.add(_HELD)

    def _speaks_for(self, subject: IdentityId, card: ContactCard) -> bool:
        if card.identity_id == subject:
            return True
        chain = self._chains.get(subject)
        return chain is not None and chain.identity_key == card.identity_key

    def held(self) -> list[dict[str, Any]]:
        """The shares we hold for others (never the shares themselves)."""
        rows = []
        for subject, entry in self._map(_HELD).items():
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

    def _held_share(self, subject: IdentityId) -> tuple[GuardianShare, ContactCard]:
        entry = self._map(_HELD).get(bytes(subject))
        if entry is None:
            raise UnexpectedRecoveryError("we hold no share for that identity")
        return (
            GuardianShare.from_bytes(entry_bytes(entry, 0)),
            ContactCard.from_bytes(entry_bytes(entry, 1)),
        )

    def _followed_head(self, subject: IdentityId) -> IdentityDocument:
        chain = self._chains.get(subject)
        if chain is None:
            raise UnexpectedRecoveryError("we follow no document of that identity")
        return chain.head

    def lookup_received(self, sender: IdentityId, lookup: LookupMessage) -> Outgoing:
        """Someone recovering ``lookup.subject`` asks: answer with the set and the head."""
        if lookup.requester.identity_id != sender:
            raise UnexpectedRecoveryError("the lookup's card is not its sender's")
        share, _owner = self._held_share(lookup.subject)
        head = self._followed_head(lookup.subject)
        if head.guardians != share.guardian_set.set_hash:
            raise UnexpectedRecoveryError("that guardian set is no longer in force")
        return Outgoing(
            lookup.requester, KIND_INFO, InfoMessage(share.guardian_set, head).to_bytes()
        )

    def request_received(
        self, sender: IdentityId, incoming: RequestMessage, *, now: float
    ) -> Outgoing:
        """Record a recovery request for our approval; the alert to send its owner."""
        request, now_ms = incoming.request, to_ms(now)
        requests = self._map(_REQUESTS)
        digest = request.request_hash
        if digest in requests:
            raise ReplayedRecoveryError("this recovery request was received before")
        if incoming.requester.identity_id != sender:
            raise UnexpectedRecoveryError("the request's card is not its sender's")
        share, owner = self._held_share(request.subject)
        head = self._followed_head(request.subject)
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
        status = "vetoed" if self._early_veto(request, share, head, now) else "pending"
        requests[digest] = [request.to_bytes(), incoming.requester.to_bytes(), status, now_ms]
        self._put(_REQUESTS, requests)
        # Tell the identity itself, in case its owner still has a device and can veto.
        return Outgoing(owner, KIND_ALERT, incoming.to_bytes())

    def _early_veto(
        self, request: RecoveryRequest, share: GuardianShare, head: IdentityDocument, now: float
    ) -> bool:
        """Whether a valid veto for ``request`` arrived before it (mail is unordered)."""
        entry = self._map(_EARLY_VETOES).pop(request.request_hash, None)
        if entry is None:
            return False
        self._dirty.add(_EARLY_VETOES)
        try:
            veto = RecoveryVeto.from_bytes(entry_bytes(entry, 0))
            RecoveryProcess(request, share.guardian_set, head).add_veto(veto, now=now)
        except DchatError:
            return False  # not a valid veto of this request after all
        return True

    def requests(self) -> list[dict[str, Any]]:
        """Recovery requests waiting for (or given) our approval."""
        rows = []
        for digest, entry in self._map(_REQUESTS).items():
            request = RecoveryRequest.from_bytes(entry_bytes(entry, 0))
            card = ContactCard.from_bytes(entry_bytes(entry, 1))
            rows.append(
                {
                    **request_json(digest, request),
                    "status": entry_str(entry, 2),
                    "requester": card.name,
                    "requester_id": str(card.identity_id),
                }
            )
        return rows

    def approve(
        self, identity: Identity, request_id: str, *, now: float
    ) -> tuple[dict[str, Any], Outgoing]:
        """Approve a request: sign it and release our share to its new key.

        Approve only after checking out of band (a call, a meeting) that the
        request really comes from the person.
        """
        digest = parse_request_id(request_id)
        requests = self._map(_REQUESTS)
        if digest not in requests:
            raise RecoveryStateError("not_found", "no such recovery request")
        entry = requests[digest]
        status = entry_str(entry, 2)
        if status == "vetoed":
            raise VetoedError("the identity's current key vetoed this recovery")
        if status == "approved":
            raise RecoveryStateError("already_approved", "this request was approved already")
        request = RecoveryRequest.from_bytes(entry_bytes(entry, 0))
        share, _owner = self._held_share(request.subject)
        if self._followed_head(request.subject).document_hash != request.old_document:
            raise RecoveryStateError("stale_request", "the identity published a newer version")
        approval, release = approve_recovery(identity, share, request, now=now)
        answer = ApprovalMessage(approval, release).to_bytes()
        requests[digest] = [entry[0], entry[1], "approved", entry[3]]
        self._dirty.add(_REQUESTS)
        requester = ContactCard.from_bytes(entry_bytes(entry, 1))
        report = {**request_json(digest, request), "status": "approved"}
        return report, Outgoing(requester, KIND_APPROVAL, answer)

    def veto_received(self, veto: RecoveryVeto, *, now: float) -> bool:
        """Apply the owner's veto to a request; False if it was kept for a later request."""
        requests = self._map(_REQUESTS)
        entry = requests.get(veto.request_hash)
        if entry is None:
            self._keep_early_veto(veto)
            return False
        request = RecoveryRequest.from_bytes(entry_bytes(entry, 0))
        share, _owner = self._held_share(request.subject)
        head = self._followed_head(request.subject)
        # The process object checks the veto: the old key's signature, before the lock.
        RecoveryProcess(request, share.guardian_set, head).add_veto(veto, now=now)
        requests[veto.request_hash] = [entry[0], entry[1], "vetoed", entry[3]]
        self._dirty.add(_REQUESTS)
        return True

    def _keep_early_veto(self, veto: RecoveryVeto) -> None:
        # It can be checked only against its request: keep it (bounded) until that comes.
        if not self._map(_HELD):
            raise UnexpectedRecoveryError("a veto, but we are nobody's guardian")
        vetoes = self._map(_EARLY_VETOES)
        if veto.request_hash not in vetoes and len(vetoes) >= _MAX_REQUESTS:
            raise UnexpectedRecoveryError("too many vetoes for unknown requests")
        vetoes[veto.request_hash] = [veto.to_bytes()]
        self._dirty.add(_EARLY_VETOES)

    def forget(self, subject: IdentityId) -> bool:
        """Drop the share held for ``subject`` (its key rotated: the set is gone)."""
        if self._map(_HELD).pop(bytes(subject), None) is None:
            return False
        self._dirty.add(_HELD)
        return True


def _expires_ms(entry: list[bytes | str | int]) -> int:
    return RecoveryRequest.from_bytes(entry_bytes(entry, 0)).expires_ms


def parse_request_id(text: str) -> bytes:
    """The request hash a request id (64 hex digits) names.

    Raises:
        RecoveryStateError: ``not_found``, not such an id.
    """
    try:
        digest = bytes.fromhex(text)
    except ValueError:
        digest = b""
    if len(digest) != 32:
        raise RecoveryStateError("not_found", "a request id is 64 hex digits")
    return digest


def request_json(digest: bytes, request: RecoveryRequest) -> dict[str, Any]:
    """A request as the node's API shows it."""
    return {
        "request_id": digest.hex(),
        "subject": str(request.subject),
        "new_key": request.new_key.to_bytes().hex(),
        "created": request.created_ms / 1000,
        "not_before": request.not_before_ms / 1000,
        "expires": request.expires_ms / 1000,
        "request": request.to_bytes().hex(),
    }
