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

:class:`Groups` is built in floors, each its own module: the control kinds,
who we are, sending and lookups (:mod:`._group_core`); sender keys
(:mod:`._group_keys`); the branch of signed updates every member holds
(:mod:`._group_branches`); received controls (:mod:`._group_receive`); and
here, our own actions and the listings.

Received controls that are refused raise :class:`~dchat_messaging.GroupError`
(counted by the caller); our own actions that the group's rules refuse raise
:class:`~dchat_messaging.RequestError` (``not_allowed``, ``unknown_group``, ...).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final

from dchat_core import IdentityId, MessageId, canonical_encode

from ._content import MAX_TEXT
from ._errors import ContentError, GroupError, RequestError
from ._group_anchors import GroupAnchors
from ._group_bot_book import GroupBots
from ._group_bots import COMMAND_KIND, encode_command
from ._group_invite import InvitationParts
from ._group_links import GroupLinks
from ._group_store import GroupRecord, GroupStore
from ._groups import ADMIN, MAX_BATCH, MEMBER, GroupState, GroupUpdate, apply_update
from ._sender_keys import (
    encode_distribution,
    message_hash,
)

if TYPE_CHECKING:
    from dchat_identity import ContactCard

    from ._contacts import ContactBook, UserStore
    from ._devices import DeviceAddress
    from ._local import LocalEngines
from ._group_core import GROUP_KINDS, UPDATE_KIND
from ._group_keys import next_chain
from ._group_receive import GroupReceiver

__all__ = ("GROUP_KINDS", "Groups")

_BATCH_BYTES: Final = 32_000
"""Cards in one ``adds`` update (it and an invitation head must fit a control)."""


class Groups(GroupReceiver):
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
        self.waiting = []
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

    def change(
        self, ref: str, op: str, arg: object, *, now: float, invite: ContactCard | None = None
    ) -> tuple[GroupRecord, list[DeviceAddress]]:
        """Sign ``op`` on the group and send it (``invite``: who it adds, sent its invitation)."""
        old = self.find(ref).state
        record, update, waiting = self._change(ref, op, arg, now=now)
        if invite is not None:
            waiting += self._invite(old, update, [invite], now=now)
        return record, waiting

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
                keys.own, keys.shared = next_chain(keys.own), set()
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
