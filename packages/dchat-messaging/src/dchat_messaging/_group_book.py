"""Private groups of one user node: state, sender keys, history, actions and received controls.

Theory of operation
-------------------
:class:`Groups` (``UserMessaging.groups``) keeps each group the node's
identity is in as sealed state (:mod:`._group_store`), every call synchronous
inside the caller's store transaction, ``now`` passed in. Received controls
that came before what they need (the invitation, the sender key, an earlier
update) wait, and are tried again after each change.

Five control kinds travel over the pairwise sessions: ``group.inv`` and
``group.part`` (an invitation in parts, :mod:`._group_invite`: the state
before the ``add`` and the signed ``add``; from our own device, a new
group's state alone), ``group.upd`` (a signed update),
``group.key`` (a device's sender chain, :func:`encode_distribution`) and
``group.msg`` (a sender-key ciphertext, :class:`GroupCiphertext`, encrypted
once and sent to every member device).

After every change of a group we are active in, :meth:`Groups._share_keys`
reconciles: if a member who held our chain is gone, a new chain (epoch) is
made; every member (and our other devices) who does not hold the current
chain is sent it. So a removed member never receives a chain that encrypts
anything after its removal, and a new member receives chains at their current
iteration, which cannot decrypt what came before.

Received controls that are refused raise :class:`~dchat_messaging.GroupError`
(counted by the caller); our own actions that the group's rules refuse raise
:class:`~dchat_messaging.RequestError` (``not_allowed``, ``unknown_group``, ...).
"""

from __future__ import annotations

import os
import secrets
from typing import TYPE_CHECKING, Final

from dchat_core import (
    IdentityId,
    MessageId,
    canonical_encode,
)

from ._content import MAX_TEXT, Content
from ._conversations import ConversationUpdate
from ._errors import ContentError, GroupError, RequestError
from ._group_invite import PART_KIND, InvitationParts, invitation_controls
from ._group_store import GroupRecord, GroupStore, read_plaintext
from ._groups import ADMIN, MAX_BATCH, MEMBER, GroupState, GroupUpdate, apply_update, update_wins
from ._sender_keys import (
    GroupCiphertext,
    SenderChain,
    decode_distribution,
    encode_distribution,
    message_hash,
)

if TYPE_CHECKING:
    from dchat_identity import ContactCard, Identity

    from ._contacts import ContactBook, UserStore
    from ._devices import DeviceAddress
    from ._engine import MessagingEngine
    from ._events import MessageReceived
    from ._local import LocalEngines

__all__ = ("GROUP_KINDS", "Groups")

INVITE_KIND: Final = "group.inv"
UPDATE_KIND: Final = "group.upd"
KEY_KIND: Final = "group.key"
MESSAGE_KIND: Final = "group.msg"
GROUP_KINDS: Final = frozenset({INVITE_KIND, PART_KIND, UPDATE_KIND, KEY_KIND, MESSAGE_KIND})
MAX_HELD: Final = 16
_BATCH_BYTES: Final = 32_000
"""Cards in one ``adds`` update (it and an invitation head must fit a control)."""
_RETRY: Final = frozenset({"unknown_group", "no_key", "not_member"})


class Groups:
    """The groups of one user node (see the module docstring).

    Args:
        store: The node's store (sealed state).
        engines: Our engines (identity, device, where to send).
        contacts: Resolves the contacts we invite.
    """

    def __init__(self, store: UserStore, engines: LocalEngines, contacts: ContactBook) -> None:
        self._store = store
        self._engines = engines
        self._contacts = contacts
        self.waiting: list[DeviceAddress] = []
        """Devices waiting for a bundle since a received control made us send."""
        self._sent = False
        self.db = GroupStore(store)
        """The groups' stored state."""
        self.parts = InvitationParts(store)
        """Invitations received in part."""

    def history(self, ref: str, limit: int = 100) -> list[dict[str, object]]:
        """The newest ``limit`` messages of a group, oldest first."""
        return self.db.history(self.find(ref).state.group_id, limit)

    # -- who we are -----------------------------------------------------------------

    def _me(self) -> tuple[bytes, MessagingEngine]:
        engine = self._engines.main()
        if engine is None or engine.keys.card is None:
            raise RequestError("no_identity", "this node has no identity yet: run `dchat init`")
        return bytes(engine.keys.identity), engine

    def _signer(self) -> tuple[bytes, Identity, ContactCard]:
        identity, card = self._engines.primary_identity, self._engines.primary_card
        if identity is None or card is None:
            raise RequestError("no_identity", "only the identity's own node changes a group")
        return bytes(identity.identity_id), identity, card

    def find(self, ref: str) -> GroupRecord:
        """The group named by its id (hex, or a unique prefix of 8+) or its exact title.

        Raises:
            RequestError: ``unknown_group``.
        """
        ref = ref.strip().lower()
        ids = self.db.ids()
        by_id = [gid for gid in ids if len(ref) >= 8 and gid.hex().startswith(ref)]
        found = []
        for gid in by_id or ids:  # an id needs no record read; a title reads them all
            record = self.db.record(gid)
            if record is not None and (by_id or record.state.title.lower() == ref):
                found.append(record)
        if len(found) != 1:
            raise RequestError("unknown_group", f"no single group matches {ref!r}")
        return found[0]

    # -- sending ------------------------------------------------------------------------

    def _send(
        self, kind: str, data: bytes, to: list[ContactCard], *, now: float, copies: bool = True
    ) -> list[DeviceAddress]:
        """One control to every device of ``to`` and (``copies``) our other devices."""
        me, engine = self._me()
        content = Content.control(kind, data, now_ms=int(now * 1000))
        cards = {bytes(card.identity_id): card for card in to if bytes(card.identity_id) != me}
        targets = [d for card in cards.values() for d in self._engines.directory.devices_of(card)]
        own = self._engines.own_devices(engine) if copies else []
        if not targets and not own:
            return []
        self._sent = True
        if not targets:
            return engine.send(content, own, now=now, record=False)
        return engine.send(content, targets, now=now, copies=own, peer=IdentityId(me), record=False)

    def take_waiting(self) -> list[DeviceAddress] | None:
        """What received controls made us send: None if nothing, else the devices waiting."""
        waiting, sent = self.waiting, self._sent
        self.waiting, self._sent = [], False
        return waiting if sent else None

    def _invite(
        self, state: GroupState, update: GroupUpdate | None, to: list[ContactCard], *, now: float
    ) -> list[DeviceAddress]:
        """The invitation (head and parts) to ``to``, or without ``to`` to our other devices."""
        waiting = []
        for kind, data in invitation_controls(state, update):
            waiting += self._send(kind, data, to, now=now, copies=not to)
        return waiting

    def _others(self, state: GroupState, me: bytes) -> list[ContactCard]:
        return [m.card for i, m in sorted(state.members.items()) if i != me]

    def _share_keys(self, record: GroupRecord, *, now: float) -> list[DeviceAddress]:
        """Make sure every member (and our other devices) holds our current sender chain."""
        if record.status != "active":
            return []
        gid, (me, engine) = record.state.group_id, self._me()
        keys = self.db.keys(gid)
        members = set(record.state.members)
        gone = [p for p in keys.peers if p[0] not in members]
        for peer in gone:
            keys.peers.discard(peer)  # a member who comes back brings new chains
            self.db.save_chains(gid, peer, [])
        if keys.own is None or keys.shared - members:
            # A first chain starts at a random epoch, so a member who left and
            # came back never reuses an epoch number someone may still hold.
            epoch = secrets.randbelow(1 << 31) if keys.own is None else keys.own.epoch + 1
            keys.own, keys.shared = SenderChain.generate(epoch), set()
        missing = members - keys.shared - {me}
        if not missing and me in keys.shared:
            if gone:
                self.db.save_keys(gid, keys)
            return []  # everyone holds our current chain: nothing to send
        cards = [record.state.members[i].card for i in sorted(missing)]
        data = encode_distribution(gid, engine.keys.device_id, keys.own)
        waiting = self._send(KEY_KIND, data, cards, now=now, copies=me not in keys.shared)
        keys.shared |= missing | {me}
        self.db.save_keys(gid, keys)
        return waiting

    def _event(
        self, kind: str, gid: bytes, by: bytes, now: float, **detail: object
    ) -> ConversationUpdate:
        update = ConversationUpdate(
            kind, f"group:{gid.hex()}", str(IdentityId(by)), (), {"group": gid.hex(), **detail}
        )
        self._store.log_event(kind, update.event(), now)
        return update

    # -- our actions ------------------------------------------------------------------

    def create(self, title: str, *, now: float) -> tuple[str, list[DeviceAddress]]:
        """A new group, with us its only member and admin; returns its id (hex)."""
        me, _, card = self._signer()
        with self._store.transaction():
            state = GroupState.create(os.urandom(32), title, card)
            record = GroupRecord(state)
            self.db.save(record)
            waiting = self._invite(state, None, [], now=now)
            waiting += self._share_keys(record, now=now)
            self._event("group_update", state.group_id, me, now, op="create", version=1)
        return state.group_id.hex(), waiting

    def _change(
        self, ref: str, op: str, arg: object, *, now: float, tell: list[ContactCard] | None = None
    ) -> tuple[GroupRecord, GroupUpdate, list[DeviceAddress]]:
        me, identity, _ = self._signer()
        record = self.find(ref)
        if record.status != "active":
            raise RequestError("not_allowed", "this node is not an active member of that group")
        update = GroupUpdate.make(record.state, me, op, arg, identity.signing_key)
        try:
            new = apply_update(record.state, update)
        except GroupError as exc:
            raise RequestError("not_allowed", str(exc)) from None
        to = self._others(record.state, me) + (tell or [])
        waiting = self._send(UPDATE_KIND, update.to_bytes(), to, now=now)
        record = GroupRecord(
            new, "active" if me in new.members else "left", record.state, update, True
        )
        self.db.save(record)
        waiting += self._share_keys(record, now=now)
        self._event("group_update", new.group_id, me, now, op=op, version=new.version)
        return record, update, waiting

    def invite(
        self, ref: str, contact: str, *, admin: bool = False, now: float
    ) -> tuple[str, list[DeviceAddress]]:
        """Add the contact ``contact`` to the group and send them an invitation."""
        with self._store.transaction():
            card = self._contacts.find(contact)
            old = self.find(ref).state
            role = ADMIN if admin else MEMBER
            _, update, waiting = self._change(ref, "add", [card.to_bytes(), role], now=now)
            waiting += self._invite(old, update, [card], now=now)
        return str(card.identity_id), waiting

    def invite_many(
        self, ref: str, contacts: list[str], *, admin: bool = False, now: float
    ) -> tuple[list[str], list[DeviceAddress]]:
        """Add several contacts with as few updates as fit (``adds``); each gets its invitation.

        Raises:
            RequestError: ``unknown_contact``, ``not_allowed`` (nothing is added).
        """
        role, waiting = ADMIN if admin else MEMBER, []
        with self._store.transaction():
            cards = list({c.identity_id: c for c in map(self._contacts.find, contacts)}.values())
            for batch in _batches(cards):
                old = self.find(ref).state
                rows = [[card.to_bytes(), role] for card in batch]
                op, arg = ("add", rows[0]) if len(rows) == 1 else ("adds", rows)
                _, update, sent = self._change(ref, op, arg, now=now)
                waiting += sent + self._invite(old, update, batch, now=now)
        return [str(card.identity_id) for card in cards], waiting

    def remove(self, ref: str, member: str, *, now: float) -> tuple[str, list[DeviceAddress]]:
        """Remove ``member`` (a contact name or identity id); every remaining member rotates."""
        with self._store.transaction():
            state = self.find(ref).state
            target = self._member_id(state, member)
            gone = [state.members[target].card]
            _, _, waiting = self._change(ref, "remove", target, now=now, tell=gone)
        return str(IdentityId(target)), waiting

    def leave(self, ref: str, *, now: float) -> tuple[str, list[DeviceAddress]]:
        """Leave the group (our node forgets its keys)."""
        me, _, _ = self._signer()
        with self._store.transaction():
            record, _, waiting = self._change(ref, "remove", me, now=now)
            self.db.forget_keys(record.state.group_id)
        return record.state.group_id.hex(), waiting

    def set_title(self, ref: str, title: str, *, now: float) -> tuple[int, list[DeviceAddress]]:
        """Rename the group; its new version."""
        with self._store.transaction():
            record, _, waiting = self._change(ref, "title", title, now=now)
        return record.state.version, waiting

    def join(self, ref: str, *, now: float) -> tuple[str, list[DeviceAddress]]:
        """Accept an invitation: from now on our node shares its sender key and posts."""
        with self._store.transaction():
            record = self.find(ref)
            if record.status == "left":
                raise RequestError("not_allowed", "not a member of that group any more")
            record.status = "active"
            self.db.save(record)
            waiting = self._share_keys(record, now=now)
            self._event(
                "group_update",
                record.state.group_id,
                self._me()[0],
                now,
                op="join",
                version=record.state.version,
            )
        return record.state.group_id.hex(), waiting

    def send_text(
        self, ref: str, text: str, *, now: float
    ) -> tuple[MessageId, list[DeviceAddress]]:
        """Encrypt ``text`` once under our sender chain and send it to every member device."""
        if not isinstance(text, str) or not 0 < len(text) <= MAX_TEXT:
            raise ContentError(f"message text must be 1-{MAX_TEXT} characters")
        me, engine = self._me()
        with self._store.transaction():
            record = self.find(ref)
            if record.status != "active" or not record.state.may(me, "post"):
                raise RequestError("not_allowed", "this node may not post in that group")
            waiting = self._share_keys(record, now=now)
            gid, keys = record.state.group_id, self.db.keys(record.state.group_id)
            assert keys.own is not None  # made by _share_keys
            mid, ts = MessageId.random(), int(now * 1000)
            plain = canonical_encode({"mid": bytes(mid), "ts": ts, "text": text})
            wire = keys.own.encrypt(
                plain, group=gid, sender=me, device=engine.keys.device_id,
                seq=keys.seq + 1, prev_hash=keys.prev_hash,
            ).to_bytes()  # fmt: skip
            keys.seq, keys.prev_hash = keys.seq + 1, message_hash(wire)
            self.db.save_keys(gid, keys)
            waiting += self._send(MESSAGE_KIND, wire, self._others(record.state, me), now=now)
            self.db.log(gid, [bytes(mid).hex(), str(IdentityId(me)), ts, text, "out", keys.seq])
            self._event("group_message", gid, me, now, message_id=str(mid), text=text, seq=keys.seq)
        return mid, waiting

    def _member_id(self, state: GroupState, name: str) -> bytes:
        for i in state.members:
            if str(IdentityId(i)) == name:
                return i
        card = self._contacts.find(name)
        if bytes(card.identity_id) not in state.members:
            raise RequestError("not_found", f"{name!r} is not a member of that group")
        return bytes(card.identity_id)

    # -- listings ---------------------------------------------------------------------

    def listing(self) -> list[dict[str, object]]:
        """Every group: id, title, status, version, member count."""
        rows = []
        for gid in self.db.ids():
            record = self.db.record(gid)
            if record is not None:
                rows.append(
                    {"group_id": gid.hex(), "title": record.state.title, "status": record.status,
                     "version": record.state.version, "members": len(record.state.members)}
                )  # fmt: skip
        return rows

    def show(self, ref: str) -> dict[str, object]:
        """One group: its state, our status, its members with roles."""
        record = self.find(ref)
        state = record.state
        names = {e.identity_id: e.name for e in self._contacts.entries()}
        return {
            "group_id": state.group_id.hex(), "title": state.title, "status": record.status,
            "version": state.version, "settings": dict(state.settings),
            "members": [
                {"identity_id": str(IdentityId(i)), "name": m.card.name,
                 "contact": names.get(str(IdentityId(i))),
                 "role": "admin" if m.role == ADMIN else "member"}
                for i, m in sorted(state.members.items())
            ],
        }  # fmt: skip

    # -- received controls --------------------------------------------------------------

    def apply(self, event: MessageReceived, *, now: float) -> list[ConversationUpdate]:
        """Apply a received group control; what waited for it is tried again.

        Raises:
            GroupError: refused (nothing changed); a control that may become
                applicable later (its group, key or earlier update has not
                arrived yet) is kept waiting instead.
        """
        sender, device = bytes(event.sender), bytes(event.sender_device)
        try:
            updates = self._apply(event.kind, sender, device, event.data, now)
        except GroupError as exc:
            if exc.code not in _RETRY:
                raise
            self.db.wait(event.kind, sender, device, event.data)
            return []
        return updates + self._retry(now)

    def _apply(
        self, kind: str, sender: bytes, device: bytes, data: bytes, now: float
    ) -> list[ConversationUpdate]:
        if kind in (INVITE_KIND, PART_KIND):
            return self._receive_invitation(sender, kind, data, now)
        if kind == UPDATE_KIND:
            return self._receive_update(GroupUpdate.from_bytes(data), now)
        if kind == KEY_KIND:
            return self._receive_key(sender, device, data, now)
        return self._receive_message(sender, device, data, now)

    def _retry(self, now: float) -> list[ConversationUpdate]:
        """Try the waiting controls again until none applies (each refused one is dropped)."""
        updates: list[ConversationUpdate] = []
        progress = bool(self.db.waiting())
        while progress:
            progress, kept = False, []
            for entry in self.db.waiting():
                try:
                    updates += self._apply(*entry, now)
                    progress = True
                except GroupError as exc:
                    if exc.code in _RETRY:
                        kept.append(entry)
            self.db.set_waiting(kept)
            if not kept:
                break
        return updates

    def _receive_invitation(
        self, sender: bytes, kind: str, data: bytes, now: float
    ) -> list[ConversationUpdate]:
        me, _ = self._me()
        if kind == INVITE_KIND:
            complete = self.parts.head(sender, data, own=sender == me)
        else:
            complete = self.parts.part(sender, data)
        if complete is None:
            return []  # more parts to come
        state, update = complete
        if update is not None:
            new = apply_update(state, update)
        elif sender == me:  # our own device's new group
            new = state
        else:
            raise GroupError("malformed", "an invitation without its update")
        if me not in new.members:
            raise GroupError("not_member", "an invitation to a group without us")
        if sender not in new.members:
            raise GroupError("not_member", "an invitation from outside the group")
        known = self.db.record(new.group_id)
        if known is not None and known.status != "left":
            return []  # a group we are in changes only by updates (an invitation is not one)
        status = "active" if sender == me else "invited"
        record = GroupRecord(new, status, state if update else None, update)
        self.db.save(record)
        self.waiting += self._share_keys(record, now=now)
        return [
            self._event(
                "group_update",
                new.group_id,
                sender,
                now,
                op="invited" if status == "invited" else "create",
                version=new.version,
                title=new.title,
            )
        ]

    def _receive_update(self, update: GroupUpdate, now: float) -> list[ConversationUpdate]:
        record = self.db.record(update.group_id)
        if record is None:
            raise GroupError("unknown_group", "an update of a group this node does not know")
        state, last = record.state, record.last
        if update.version > state.version + 1:
            if len(record.held) < MAX_HELD and update.to_bytes() not in record.held:
                record.held.append(update.to_bytes())
                self.db.save(record)
            return []
        if last is not None and update.version == state.version and update.hash() == last.hash():
            return []  # a copy of what we applied
        rebase = None
        if (
            last is not None
            and record.prev is not None
            and update.version == state.version
            and update.prev == last.prev
            and update_wins(update, last)
        ):
            new = apply_update(record.prev, update)  # the concurrent winner replaces ours
            rebase = last if record.own else None
            base = record.prev
        else:
            new, base = apply_update(state, update), state
        me, _ = self._me()
        status = record.status if me in new.members else "left"
        record = GroupRecord(
            new,
            status,
            base,
            update,
            False,
            [h for h in record.held if GroupUpdate.from_bytes(h).version > new.version],
        )
        self.db.save(record)
        updates = [
            self._event(
                "group_update", new.group_id, update.by, now, op=update.op, version=new.version
            )
        ]
        if status == "left":
            self.db.forget_keys(new.group_id)
        else:
            self.waiting += self._share_keys(record, now=now)
        if rebase is not None:
            self.waiting += self._rebase(record, rebase, now)
        for held in list(record.held):
            try:
                updates += self._receive_update(GroupUpdate.from_bytes(held), now)
            except GroupError:
                continue
        return updates

    def _rebase(self, record: GroupRecord, lost: GroupUpdate, now: float) -> list[DeviceAddress]:
        """Sign our update that lost a tie again, on the winner (if still allowed)."""
        try:
            me, identity, _ = self._signer()
            update = GroupUpdate.make(record.state, me, lost.op, lost.arg, identity.signing_key)
            new = apply_update(record.state, update)
        except (GroupError, RequestError):
            return []
        waiting = self._send(
            UPDATE_KIND, update.to_bytes(), self._others(record.state, me), now=now
        )
        record = GroupRecord(
            new, record.status if me in new.members else "left", record.state, update, True
        )
        self.db.save(record)
        return waiting + self._share_keys(record, now=now)

    def _in_group(self, gid: bytes, what: str) -> GroupRecord:
        """The group a received ``what`` is for, if this node is (or was invited) in it."""
        record = self.db.record(gid)
        if record is None:
            raise GroupError("unknown_group", f"{what} of a group this node does not know")
        if record.status == "left":
            raise GroupError("left", f"{what} of a group this node is no longer in")
        return record

    def _receive_key(
        self, sender: bytes, device: bytes, data: bytes, now: float
    ) -> list[ConversationUpdate]:
        gid, claimed, chain = decode_distribution(data)
        if claimed != device:
            raise GroupError("malformed", "a sender key for another device")
        record = self._in_group(gid, "a sender key")
        if sender not in record.state.members:
            raise GroupError("not_member", "a sender key from outside the group")
        keys, peer = self.db.keys(gid), (sender, device)
        chains = self.db.chains(gid, peer)
        if any(c.epoch == chain.epoch for c in chains):
            return []  # already held: never rewind a chain (a replay would open again)
        self.db.save_chains(gid, peer, sorted([*chains, chain], key=lambda c: c.epoch)[-2:])
        if peer not in keys.peers:
            keys.peers.add(peer)
            self.db.save_keys(gid, keys)
        me, _ = self._me()
        if sender == me and record.status == "invited":  # our other device joined
            record.status = "active"
            self.db.save(record)
            self.waiting += self._share_keys(record, now=now)
        return []

    def _receive_message(
        self, sender: bytes, device: bytes, data: bytes, now: float
    ) -> list[ConversationUpdate]:
        message = GroupCiphertext.from_bytes(data)
        if message.sender != sender or message.device != device:
            raise GroupError("malformed", "a group message from another sender than its session's")
        record = self._in_group(message.group, "a message")
        if sender not in record.state.members:
            raise GroupError("not_allowed", "a message from someone outside the group")
        if not record.state.may(sender, "post"):
            raise GroupError("not_allowed", "the group's settings do not let this member post")
        chains = self.db.chains(message.group, (sender, device))
        chain = next((c for c in chains if c.epoch == message.epoch), None)
        if chain is None:
            raise GroupError("no_key", "no sender key for that device and epoch")
        plain = read_plaintext(chain.decrypt(message))
        self.db.save_chains(message.group, (sender, device), chains)
        mid, ts, text = plain
        direction = "out" if sender == self._me()[0] else "in"  # a copy from our other device
        row: list[object] = [mid.hex(), str(IdentityId(sender)), ts, text, direction, message.seq]
        self.db.log(message.group, row)
        return [
            self._event(
                "group_message",
                message.group,
                sender,
                now,
                message_id=str(MessageId(mid)),
                text=text,
                seq=message.seq,
            )
        ]


def _batches(cards: list[ContactCard]) -> list[list[ContactCard]]:
    """``cards`` in runs of at most :data:`MAX_BATCH` and :data:`_BATCH_BYTES` of cards."""
    batches: list[list[ContactCard]] = [[]]
    used = 0
    for card in cards:
        size = len(card.to_bytes()) + 8
        if batches[-1] and (len(batches[-1]) == MAX_BATCH or used + size > _BATCH_BYTES):
            batches.append([])
            used = 0
        batches[-1].append(card)
        used += size
    return [b for b in batches if b]
