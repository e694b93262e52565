"""Private groups of one user node: state, sender keys, history, actions and received controls.

Theory of operation
-------------------
:class:`Groups` (``UserMessaging.groups``) keeps each group the node's
identity is in as sealed state (:mod:`._group_store`), every call synchronous
inside the caller's store transaction, ``now`` passed in. Received controls
that came before what they need (the invitation, the sender key, an earlier
update) wait, and are tried again after each change.

Eleven control kinds travel over the pairwise sessions: ``group.inv`` and
``group.part`` (an invitation in parts, :mod:`._group_invite`: the state
before the ``add`` and the signed ``add``; from our own device, a new
group's state alone), ``group.upd`` (a signed update),
``group.key`` (a device's sender chain, :func:`encode_distribution`) and
``group.msg`` (a sender-key ciphertext, :class:`GroupCiphertext`, encrypted
once and sent to every member device); for anchored groups, ``group.ord``
and ``group.evi`` (:mod:`._group_anchors`); ``group.kmsg`` (a message with
the sender's chain, after a rotation); ``group.join`` and ``group.jno`` (a
request to join by invite link and its refusal, :mod:`._group_links`);
``group.cmd`` (a command to a bot that reads commands only, sent to it
pairwise: :mod:`._group_bots`, :mod:`._group_bot_book`).

After every change of a group we are active in, :meth:`Groups._share_keys`
reconciles (over the *readers*: every person and the bots that read all,
:meth:`GroupState.readers`): if a member who held our chain is gone, a new chain (epoch) is
made at once; every member (and our other devices) who does not hold the
current chain is sent it. A new chain is handed out lazily, with our next
message (a removal at 1,000 members would otherwise make every member seal
its chain to every other one at once: a million envelopes for the group,
most of them from members who never post again); a chain already handed out
goes to a new member at once. So a removed member never receives a chain
that encrypts anything after its removal, and a new member receives chains
at their current iteration, which cannot decrypt what came before.

Received controls that are refused raise :class:`~dchat_messaging.GroupError`
(counted by the caller); our own actions that the group's rules refuse raise
:class:`~dchat_messaging.RequestError` (``not_allowed``, ``unknown_group``, ...).
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Final

from dchat_core import (
    IdentityId,
    MessageId,
    canonical_encode,
)
from dchat_identity import ContactCard, InvalidCardError

from ._content import MAX_CONTROL, MAX_TEXT, Content
from ._conversations import ConversationUpdate
from ._errors import ContentError, GroupError, RequestError
from ._group_anchors import EVIDENCE_KIND, ORDER_KIND, GroupAnchors
from ._group_bot_book import GroupBots
from ._group_bots import COMMAND_KIND, encode_command
from ._group_invite import PART_KIND, InvitationParts, invitation_controls
from ._group_links import JOIN_KIND, REFUSED_KIND, GroupLinks
from ._group_store import GroupKeys, GroupRecord, GroupStore, read_plaintext
from ._groups import ADMIN, MAX_BATCH, MEMBER, GroupState, GroupUpdate, apply_update
from ._sender_keys import (
    GroupCiphertext,
    SenderChain,
    decode_distribution,
    decode_keyed,
    encode_distribution,
    encode_keyed,
    message_hash,
)

if TYPE_CHECKING:
    from dchat_identity import Identity

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
KEYED_KIND: Final = "group.kmsg"
GROUP_KINDS: Final = frozenset(
    {INVITE_KIND, PART_KIND, UPDATE_KIND, KEY_KIND, MESSAGE_KIND, KEYED_KIND, ORDER_KIND,
     EVIDENCE_KIND, JOIN_KIND, REFUSED_KIND, COMMAND_KIND}
)  # fmt: skip
MAX_HELD: Final = 64
"""Updates a node knows but has not applied (ahead of its state, or on another branch)."""
MAX_CHAIN: Final = 32
"""Updates kept behind a node's state: how deep a fork it can still undo."""
MAX_EPOCHS: Final = 4
"""Chains kept per member device, the newest epochs: a distribution may come after
newer ones (each rotation sends one; sessions deliver them in any order), and the
messages of its epoch wait for it."""
_BATCH_BYTES: Final = 32_000
"""Cards in one ``adds`` update (it and an invitation head must fit a control)."""
_RETRY: Final = frozenset({"unknown_group", "no_key", "not_member", "left"})


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
        self.store = store
        self.db = GroupStore(store)
        """The groups' stored state."""
        self.parts = InvitationParts(store)
        """Invitations received in part."""
        self.anchors = GroupAnchors(self)
        """Anchored order (chat chain) of the groups that ask for it."""
        self.links = GroupLinks(self)
        """Invite links: ours, and our requests to join by one (:mod:`._group_links`)."""
        self.bots = GroupBots(self, contacts)
        """Bots in our groups: adding them, their grants, commands to us as a bot."""

    def history(self, ref: str, limit: int = 100) -> list[dict[str, object]]:
        """The newest ``limit`` messages of a group, oldest first (``anchored``: its order
        number on the chain, for anchored groups; None until anchored)."""
        record = self.find(ref)
        rows = self.db.history(record.state.group_id, limit)
        if record.state.anchor is not None:
            marks = self.anchors.marks(record.state.group_id)
            for row in rows:
                row["anchored"] = marks.get(str(row.get("hash", "")))
        return rows

    # -- who we are -----------------------------------------------------------------

    def _me(self) -> tuple[bytes, MessagingEngine]:
        engine = self._engines.main()
        if engine is None or engine.keys.card is None:
            raise RequestError("no_identity", "this node has no identity yet: run `dchat init`")
        return bytes(engine.keys.identity), engine

    def identity(self) -> bytes:
        """Our identity id (raises ``no_identity``)."""
        return self._me()[0]

    def signer_id(self) -> bytes | None:
        """Our identity id if this is the identity's own (primary) node, else None."""
        identity = self._engines.primary_identity
        return None if identity is None else bytes(identity.identity_id)

    def signer(self) -> tuple[bytes, Identity, ContactCard]:
        """Our identity id, identity and card (the identity's own node only)."""
        return self._signer()

    def send(
        self, kind: str, data: bytes, to: list[ContactCard], *, now: float
    ) -> list[DeviceAddress]:
        """One group control to every device of ``to`` and our other devices."""
        return self._send(kind, data, to, now=now)

    def event(
        self, kind: str, gid: bytes, by: bytes, now: float, **detail: object
    ) -> ConversationUpdate:
        """Log and return one group event."""
        return self._event(kind, gid, by, now, **detail)

    def change(
        self, ref: str, op: str, arg: object, *, now: float, invite: ContactCard | None = None
    ) -> tuple[GroupRecord, list[DeviceAddress]]:
        """Sign ``op`` on the group and send it (``invite``: who it adds, sent its invitation)."""
        old = self.find(ref).state
        record, update, waiting = self._change(ref, op, arg, now=now)
        if invite is not None:
            waiting += self._invite(old, update, [invite], now=now)
        return record, waiting

    def member_id(self, state: GroupState, name: str) -> bytes:
        """The member named ``name`` (identity id or contact name; raises ``not_found``)."""
        return self._member_id(state, name)

    def in_group(self, gid: bytes, what: str) -> GroupRecord:
        """The group a received ``what`` is for (raises ``unknown_group``, ``left``)."""
        return self._in_group(gid, what)

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

    def _share_keys(
        self, record: GroupRecord, *, now: float, dropped: frozenset[bytes] = frozenset(),
        rotate: bool = False, lazy: bool = False,
    ) -> list[DeviceAddress]:  # fmt: skip
        """Make sure every member (and our other devices) holds our current sender chain.

        ``dropped``: members removed on the way to this state (some may be back:
        they come back with new chains, and ours must be new to them);
        ``rotate``: members may have dropped our chain (they removed us, on a
        branch that lost): a new one for everyone;
        ``lazy`` (a membership change): a new chain is made at once but handed
        out with our next message (:meth:`send_text`), as is one not handed out
        yet; a chain already handed out still goes to new members at once.
        """
        if record.status != "active":
            return []
        gid, (me, engine) = record.state.group_id, self._me()
        keys = self.db.keys(gid)
        # The chains of members gone stay: their messages wait (not members), and
        # if the removal loses to a concurrent update, those in flight open.
        # A member who comes back brings a chain of a higher epoch (see join).
        readers = record.state.readers() | {me}  # a bot that reads commands still posts
        if keys.own is None or keys.shared - (readers - dropped) or rotate:
            keys.own, keys.shared = _next_chain(keys.own), set()
            if lazy:  # nobody holds it yet: one distribution, on our next message
                self.db.save_keys(gid, keys)
                return []
        if lazy and not keys.shared:
            return []  # rotated already, not handed out yet
        missing = readers - keys.shared - {me}
        if not missing and me in keys.shared:
            return []  # everyone holds our current chain: nothing to write
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

    def create(
        self, title: str, *, anchored: bool = False, now: float, group_id: bytes | None = None
    ) -> tuple[str, list[DeviceAddress]]:
        """A new group, with us its only member and admin; returns its id (hex).

        ``anchored``: its order is anchored on the chat chain, in a channel we own.
        ``group_id``: 32 bytes to use rather than random ones (a simulation's, drawn from its seed).
        """
        me, _, card = self._signer()
        with self._store.transaction():
            state = GroupState.create(group_id or os.urandom(32), title, card)
            record = GroupRecord(state)
            self.db.save(record)
            waiting = self._invite(state, None, [], now=now)
            waiting += self._share_keys(record, now=now)
            self._event("group_update", state.group_id, me, now, op="create", version=1)
            if anchored:
                waiting += self._change(state.group_id.hex(), "anchor", me, now=now)[2]
        return state.group_id.hex(), waiting

    def set_anchor(self, ref: str, on: bool, *, now: float) -> tuple[int, list[DeviceAddress]]:
        """Anchor the group's order on the chat chain (a channel we own), or stop; its version."""
        me, _, _ = self._signer()
        with self._store.transaction():
            record, _, waiting = self._change(ref, "anchor", me if on else b"", now=now)
        return record.state.version, waiting

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
        record = self._advance(record, update, new, own=True)
        self.db.save(record)
        waiting += self._share_keys(record, now=now, lazy=True)
        self._event("group_update", new.group_id, me, now, op=op, version=new.version)
        return record, update, waiting

    def invite(
        self, ref: str, contact: str, *, admin: bool = False, now: float
    ) -> tuple[str, list[DeviceAddress]]:
        """Add the contact ``contact`` to the group and send them an invitation."""
        with self._store.transaction():
            card = self._contacts.find(contact)
            waiting = self.add_by_link(self.find(ref).state.group_id, card, admin=admin, now=now)
        return str(card.identity_id), waiting

    def add_by_link(
        self, gid: bytes, card: ContactCard, *, admin: bool = False, now: float
    ) -> list[DeviceAddress]:
        """Add ``card`` (a contact, or who asked by link) and send it the invitation."""
        old = self.find(gid.hex()).state
        role = ADMIN if admin else MEMBER
        _, update, waiting = self._change(gid.hex(), "add", [card.to_bytes(), role], now=now)
        return waiting + self._invite(old, update, [card], now=now)

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
        """Leave the group.

        The others' chains stay: our removal may lose to a concurrent update,
        and then the messages they sent meanwhile (waiting while we are out)
        must still open; they rotate on our removal, so nothing newer does.
        """
        me, _, _ = self._signer()
        with self._store.transaction():
            record, _, waiting = self._change(ref, "remove", me, now=now)
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
        self, ref: str, text: str, *, now: float, message_id: MessageId | None = None
    ) -> tuple[MessageId, list[DeviceAddress]]:
        """Encrypt ``text`` once under our sender chain and send it to every member device.

        ``message_id``: the id to give it rather than a random one (a simulation's).
        """
        if not isinstance(text, str) or not 0 < len(text) <= MAX_TEXT:
            raise ContentError(f"message text must be 1-{MAX_TEXT} characters")
        me, engine = self._me()
        with self._store.transaction():
            record = self.find(ref)
            if record.status != "active" or not record.state.may(me, "post"):
                raise RequestError("not_allowed", "this node may not post in that group")
            gid, keys = record.state.group_id, self.db.keys(record.state.group_id)
            if keys.own is None or keys.shared - record.state.readers() - {me}:
                keys.own, keys.shared = _next_chain(keys.own), set()
            dist = encode_distribution(gid, engine.keys.device_id, keys.own)  # before it moves
            mid, ts = message_id or MessageId.random(), int(now * 1000)
            plain = canonical_encode({"mid": bytes(mid), "ts": ts, "text": text})
            message = keys.own.encrypt(
                plain, group=gid, sender=me, device=engine.keys.device_id,
                seq=keys.seq + 1, prev_hash=keys.prev_hash,
            )  # fmt: skip
            wire = message.to_bytes()
            keys.seq, keys.prev_hash = keys.seq + 1, message_hash(wire)
            waiting = self._post(record.state, keys, dist, wire, now=now)
            bots = [record.state.members[i].card for i in record.state.commanded(text) if i != me]
            if bots:  # they hold no chain: this one text, pairwise
                waiting += self._send(COMMAND_KIND, encode_command(gid, plain), bots, now=now)
            self.db.save_keys(gid, keys)
            row = [bytes(mid).hex(), str(IdentityId(me)), ts, text, "out", keys.seq]
            self.db.log(gid, [*row, message_hash(wire).hex()])
            self._event("group_message", gid, me, now, message_id=str(mid), text=text, seq=keys.seq)
            self.anchors.note(record.state, message, wire, now)
            waiting, self.waiting = waiting + self.waiting, []
        return mid, waiting

    def _post(
        self, state: GroupState, keys: GroupKeys, dist: bytes, wire: bytes, *, now: float
    ) -> list[DeviceAddress]:
        """Send message ``wire``: with our chain (``dist``) to whoever lacks it, else alone."""
        me, _ = self._me()
        readers = state.readers()
        missing = readers - keys.shared - {me}
        ours = me not in keys.shared  # our other devices lack it too
        keyed = [state.members[i].card for i in sorted(missing)]
        plain = [state.members[i].card for i in sorted(readers - missing - {me})]
        waiting: list[DeviceAddress] = []
        if keyed or ours:
            both = encode_keyed(dist, wire)
            if len(both) <= MAX_CONTROL:
                waiting += self._send(KEYED_KIND, both, keyed, now=now, copies=ours)
            else:  # a long text: the chain, then the message, as two controls
                waiting += self._send(KEY_KIND, dist, keyed, now=now, copies=ours)
                waiting += self._send(MESSAGE_KIND, wire, keyed, now=now, copies=ours)
        waiting += self._send(MESSAGE_KIND, wire, plain, now=now, copies=not ours)
        keys.shared |= missing | {me}
        return waiting

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
            "anchor": self.anchors.view(state),
            "members": [
                {"identity_id": str(IdentityId(i)), "name": m.card.name,
                 "contact": names.get(str(IdentityId(i))),
                 "role": "admin" if m.role == ADMIN else "bot" if m.bot else "member"}
                | ({"bot": m.bot.to_json()} if m.bot else {})
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
        if kind == JOIN_KIND:
            return self.links.receive_request(sender, data, now)
        if kind == REFUSED_KIND:
            return self.links.receive_refusal(sender, data, now)
        if kind == KEYED_KIND:
            dist, data = decode_keyed(data)
            self._receive_key(sender, device, dist, now)  # a copy: nothing changes
            return self._receive_message(sender, device, data, now)
        if kind == ORDER_KIND:
            return self.anchors.receive_order(sender, data, now)
        if kind == COMMAND_KIND:
            return self.bots.receive_command(sender, data, now)
        if kind == EVIDENCE_KIND:
            return self.anchors.receive_evidence(sender, data, now)
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
        try:
            events = self._take_invitation(sender, *complete, now)
        except GroupError as exc:
            if exc.code not in _RETRY:
                self.parts.done(sender)
            raise  # else kept whole: the control that waits completes it again
        self.parts.done(sender)
        return events

    def _take_invitation(
        self, sender: bytes, state: GroupState, update: GroupUpdate | None, now: float
    ) -> list[ConversationUpdate]:
        me, _ = self._me()
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
            # A group we are in changes only by updates. Before we join, a newer
            # add of us (signed again after the first lost to a concurrent
            # update) starts it anew: as trustworthy as any first invitation.
            if update is None:
                return []
            with contextlib.suppress(GroupError):  # the add of us: an update we may connect
                events = self._receive_update(update, now)
                if update in (self.db.record(new.group_id) or known).history()[1]:
                    return events
            known = self.db.record(new.group_id) or known
            if known.status != "invited" or new.version <= known.state.version:
                # It may fit once we learn more (our removal, then this re-add): wait.
                raise GroupError("not_member", "an invitation beside the branch this node holds")
        asked = sender != me and self.links.asked(new.group_id, sender, now)  # joined by link
        bot = new.members[me].bot is not None  # a bot is in when added, as on Telegram
        status = "active" if sender == me or asked or bot else "invited"
        if known is not None:  # members dropped our old membership: a new chain for all
            keys = self.db.keys(new.group_id)
            keys.own, keys.shared = _next_chain(keys.own), set()
            self.db.save_keys(new.group_id, keys)
        record = GroupRecord(new, status, state if update else None, update)
        self.db.save(record)
        self.waiting += self._share_keys(record, now=now)
        events = [
            self._event(
                "group_update",
                new.group_id,
                sender,
                now,
                op="invited" if status == "invited" else "joined" if asked else "create",
                version=new.version,
                title=new.title,
            )
        ]
        for held in known.held if known else []:  # updates that came before the invitation
            with contextlib.suppress(GroupError):
                events += self._receive_update(GroupUpdate.from_bytes(held), now)
        return events

    def _receive_update(self, update: GroupUpdate, now: float) -> list[ConversationUpdate]:
        """Add ``update`` to what we know of the group; follow the branch that wins.

        Every node keeps the updates behind its state (up to :data:`MAX_CHAIN`)
        and those it knows but did not apply (ahead of it, or on another
        branch: :data:`MAX_HELD`), and holds the branch :func:`_best_branch`
        picks from them. When that branch changes, our own updates left off
        it are signed again on the new state (if still allowed).
        """
        record = self.db.record(update.group_id)
        if record is None:
            raise GroupError("unknown_group", "an update of a group this node does not know")
        base, chain = record.history()
        held = [GroupUpdate.from_bytes(h) for h in record.held]
        digest = update.hash()
        if any(u.hash() == digest for u in (*chain, *held)):
            return []  # a copy of one we know
        if update.version <= base.version:
            raise GroupError("stale", "an update older than the history this node keeps")
        tip = record.state
        if update.version == tip.version + 1 and update.prev == tip.hash():
            new = apply_update(tip, update)  # on our state: its refusal is final, nothing kept
            if record.status != "left" and all(h.version <= tip.version for h in held):
                return self._extend(record, update, new, now)  # nothing held competes
        states, branch = _best_branch(base, [*chain, *held, update])
        fork = next(
            (
                i
                for i, (a, b) in enumerate(zip(chain, branch, strict=False))
                if a.hash() != b.hash()
            ),
            min(len(chain), len(branch)),
        )
        if fork == len(chain) == len(branch):  # ahead of us, or on a branch that loses: keep it
            record.held = [*record.held, update.to_bytes()][-MAX_HELD:]
            self.db.save(record)
            me, _ = self._me()
            if update.op == "remove" and update.arg == me and me in tip.members:
                # Members who applied it (before the winner) dropped our chain.
                self.waiting += self._share_keys(record, now=now, rotate=True)
            return []
        was = record.status
        on_branch, before = {u.hash() for u in branch}, {u.hash() for u in chain}
        applied = [u for u in branch if u.hash() not in before]
        lost = [u for u in chain[fork:] if u.hash() in record.mine]
        rest = [u for u in (*chain, *held, update) if u.hash() not in on_branch]
        while len(branch) > MAX_CHAIN:  # forget the oldest: a fork below it is refused as stale
            states, branch = states[1:], branch[1:]
        me, _ = self._me()
        new = states[-1]
        status = (
            ("active" if record.status == "left" else record.status)
            if me in new.members
            else "left"
        )
        record = GroupRecord(
            new, status, states[-2] if branch else None, branch[-1] if branch else None,
            bool(branch) and branch[-1].hash() in record.mine,
            [u.to_bytes() for u in rest if u.version > states[0].version][-MAX_HELD:],
            states[0], branch, record.mine,
        )  # fmt: skip
        self.db.save(record)
        updates = [
            self._event("group_update", new.group_id, u.by, now, op=u.op, version=u.version)
            for u in applied
        ]
        if status != "left":
            dropped = frozenset(
                u.arg
                for u in applied
                if u.op == "remove" and isinstance(u.arg, bytes) and u.arg != me
            )
            rotate = was == "left" or any(u.op == "remove" and u.arg == me for u in chain[fork:])
            self.waiting += self._share_keys(
                record, now=now, dropped=dropped, rotate=rotate, lazy=True
            )
        if lost:
            self.waiting += self._rebase(record, lost, now)
        return updates

    def _extend(
        self, record: GroupRecord, update: GroupUpdate, new: GroupState, now: float
    ) -> list[ConversationUpdate]:
        """A received ``update`` (which made ``new``) on our state, no held update beside or
        ahead of it: the branch :func:`_best_branch` would pick, without applying the kept
        history again (at 1,000 members that replay was most of a removal's cost)."""
        me, _ = self._me()
        record = self._advance(record, update, new, own=False)
        self.db.save(record)
        event = self._event(
            "group_update", new.group_id, update.by, now, op=update.op, version=update.version
        )
        if record.status != "left":
            arg = update.arg
            gone = update.op == "remove" and isinstance(arg, bytes) and arg != me
            dropped = frozenset([arg]) if gone and isinstance(arg, bytes) else frozenset[bytes]()
            self.waiting += self._share_keys(record, now=now, dropped=dropped, lazy=True)
        return [event]

    def _advance(
        self, record: GroupRecord, update: GroupUpdate, new: GroupState, *, own: bool
    ) -> GroupRecord:
        """``record`` with ``update`` (which made ``new``) applied on its state."""
        me, _ = self._me()
        base, chain = record.history()
        chain = [*chain, update]
        if len(chain) > MAX_CHAIN:
            base, chain = apply_update(base, chain[0]), chain[1:]
        mine = [*record.mine, update.hash()][-MAX_CHAIN:] if own else record.mine
        status = record.status if me in new.members else "left"
        held = [h for h in record.held if GroupUpdate.from_bytes(h).version > base.version]
        return GroupRecord(new, status, record.state, update, own, held, base, chain, mine)

    def _rebase(
        self, record: GroupRecord, lost: list[GroupUpdate], now: float
    ) -> list[DeviceAddress]:
        """Sign our updates that lost (left off the winning branch) again, if still allowed."""
        try:
            me, identity, _ = self._signer()
        except RequestError:
            return []  # a linked device: the identity's own node re-signs
        waiting: list[DeviceAddress] = []
        for old in lost:
            state = record.state
            try:
                update = GroupUpdate.make(state, me, old.op, old.arg, identity.signing_key)
                new = apply_update(state, update)
            except GroupError:  # no longer allowed, or done already (the member added, removed)
                if old.op in ("add", "bot") and isinstance(old.arg, list):  # on the losing branch
                    with contextlib.suppress(ValueError, InvalidCardError):
                        card = ContactCard.from_bytes(old.arg[0])
                        if bytes(card.identity_id) not in state.members:
                            waiting += self._tell_branch(record, card, now)
                continue
            waiting += self._send(UPDATE_KIND, update.to_bytes(), self._others(state, me), now=now)
            record = self._advance(record, update, new, own=True)
            if update.op in ("add", "bot"):  # the new member may hold the losing branch
                card = new.members[max(set(new.members) - set(state.members))].card
                waiting += self._invite(state, update, [card], now=now)
                waiting += self._tell_branch(record, card, now)
            self.db.save(record)
            self._event("group_update", new.group_id, me, now, op=update.op, version=new.version)
        return waiting + self._share_keys(record, now=now)

    def _tell_branch(
        self, record: GroupRecord, card: ContactCard, now: float
    ) -> list[DeviceAddress]:
        """Send ``card`` the updates of our branch (it may hold one that lost)."""
        waiting = []
        for update in record.chain:
            waiting += self._send(UPDATE_KIND, update.to_bytes(), [card], now=now, copies=False)
        return waiting

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
        self.db.save_chains(
            gid, peer, sorted([*chains, chain], key=lambda c: c.epoch)[-MAX_EPOCHS:]
        )
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
        if sender not in record.state.members:  # its add may not have reached us yet: wait
            raise GroupError("not_member", "a message from someone outside the group")
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
        self.db.log(message.group, [*row, message_hash(data).hex()])
        checked = self.anchors.note(record.state, message, data, now)
        return [
            *checked,
            self._event(
                "group_message",
                message.group,
                sender,
                now,
                message_id=str(MessageId(mid)),
                text=text,
                seq=message.seq,
                title=record.state.title,
                sent_at_ms=ts,
                sender_name=record.state.members[sender].card.name,
            ),
        ]


def _best_branch(
    base: GroupState, known: list[GroupUpdate]
) -> tuple[list[GroupState], list[GroupUpdate]]:
    """The branch every node holding ``known`` picks from ``base``, and its states.

    At each version, of the known updates on the state reached that apply,
    the one with the lowest hash (``update_wins``); so two nodes that know the
    same updates hold the same state, whatever order they came in.
    """
    states, branch = [base], []
    while True:
        state = states[-1]
        at = state.hash()
        nexts = sorted(
            {u.hash(): u for u in known if u.version == state.version + 1 and u.prev == at}.items()
        )
        for _, update in nexts:
            try:
                states.append(apply_update(state, update))
            except GroupError:
                continue
            branch.append(update)
            break
        else:
            return states, branch


def _next_chain(own: SenderChain | None) -> SenderChain:
    """Our next sender chain: epoch + 1, or (a first one) a random epoch below 2^31.

    Epochs only grow, so whoever holds our older chains keeps the new one
    (receivers keep the two highest); the random start is drawn from the new
    chain's fresh signing key.
    """
    fresh = SenderChain.generate(0)
    fresh.epoch = int.from_bytes(fresh.public[:4], "big") >> 1 if own is None else own.epoch + 1
    return fresh


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
