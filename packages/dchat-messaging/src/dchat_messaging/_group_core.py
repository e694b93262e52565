"""The groups engine's ground floor: who we are, sending, events and finding a group.

:class:`GroupsCore` is the base of :class:`~._group_book.Groups` (see that
module for the theory of operation): the control kinds, our identity and
signer, one control to every device of some members, the events we log,
and the group a reference or a received control names. The floors above it
are sender keys (:mod:`._group_keys`), the membership branches
(:mod:`._group_branches`) and received controls (:mod:`._group_receive`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from dchat_core import IdentityId

from ._content import Content
from ._conversations import ConversationUpdate
from ._errors import GroupError, RequestError
from ._group_anchors import EVIDENCE_KIND, ORDER_KIND, GroupAnchors
from ._group_bots import COMMAND_KIND
from ._group_invite import PART_KIND, InvitationParts, invitation_controls
from ._group_links import JOIN_KIND, REFUSED_KIND, GroupLinks

if TYPE_CHECKING:
    from dchat_identity import ContactCard, Identity

    from ._contacts import ContactBook, UserStore
    from ._devices import DeviceAddress
    from ._engine import MessagingEngine
    from ._group_bot_book import GroupBots
    from ._group_store import GroupRecord, GroupStore
    from ._groups import GroupState, GroupUpdate
    from ._local import LocalEngines

__all__ = ("GROUP_KINDS", "GroupsCore")

INVITE_KIND: Final = "group.inv"
UPDATE_KIND: Final = "group.upd"
KEY_KIND: Final = "group.key"
MESSAGE_KIND: Final = "group.msg"
KEYED_KIND: Final = "group.kmsg"
GROUP_KINDS: Final = frozenset(
    {INVITE_KIND, PART_KIND, UPDATE_KIND, KEY_KIND, MESSAGE_KIND, KEYED_KIND, ORDER_KIND,
     EVIDENCE_KIND, JOIN_KIND, REFUSED_KIND, COMMAND_KIND}
)  # fmt: skip


class GroupsCore:
    """Our identity, sending and lookups, for the floors above (see the module docstring)."""

    _store: UserStore
    _engines: LocalEngines
    _contacts: ContactBook
    _sent: bool
    waiting: list[DeviceAddress]
    store: UserStore
    db: GroupStore
    parts: InvitationParts
    anchors: GroupAnchors
    links: GroupLinks
    bots: GroupBots

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

    def _event(
        self, kind: str, gid: bytes, by: bytes, now: float, **detail: object
    ) -> ConversationUpdate:
        update = ConversationUpdate(
            kind, f"group:{gid.hex()}", str(IdentityId(by)), (), {"group": gid.hex(), **detail}
        )
        self._store.log_event(kind, update.event(), now)
        return update

    def _member_id(self, state: GroupState, name: str) -> bytes:
        for i in state.members:
            if str(IdentityId(i)) == name:
                return i
        card = self._contacts.find(name)
        if bytes(card.identity_id) not in state.members:
            raise RequestError("not_found", f"{name!r} is not a member of that group")
        return bytes(card.identity_id)

    def _in_group(self, gid: bytes, what: str) -> GroupRecord:
        """The group a received ``what`` is for, if this node is (or was invited) in it."""
        record = self.db.record(gid)
        if record is None:
            raise GroupError("unknown_group", f"{what} of a group this node does not know")
        if record.status == "left":
            raise GroupError("left", f"{what} of a group this node is no longer in")
        return record
