"""The groups engine's received controls: decoded, checked, applied or kept waiting.

:class:`GroupReceiver` (a floor of :class:`~._group_book.Groups`) takes every
group control kind (:data:`~._group_core.GROUP_KINDS`): invitations in parts,
updates, sender keys, messages, and hands order lists, evidence, link
requests and bot commands to their books. A control that came before what it
needs (its group, key or an earlier update) waits and is tried again after
each change; any other refusal is a :class:`~dchat_messaging.GroupError`.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Final

from dchat_core import IdentityId, MessageId

from ._errors import GroupError
from ._group_anchors import EVIDENCE_KIND, ORDER_KIND
from ._group_bots import COMMAND_KIND
from ._group_invite import PART_KIND
from ._group_links import JOIN_KIND, REFUSED_KIND
from ._group_store import GroupRecord, read_plaintext
from ._groups import GroupState, GroupUpdate, apply_update
from ._sender_keys import (
    GroupCiphertext,
    decode_keyed,
    message_hash,
)

if TYPE_CHECKING:
    from ._conversations import ConversationUpdate
    from ._events import MessageReceived
from ._group_branches import GroupBranches
from ._group_core import INVITE_KIND, KEY_KIND, KEYED_KIND, UPDATE_KIND
from ._group_keys import next_chain

__all__ = ("GroupReceiver",)

_RETRY: Final = frozenset({"unknown_group", "no_key", "not_member", "left"})


class GroupReceiver(GroupBranches):
    """Received group controls (see the module docstring)."""

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
            keys.own, keys.shared = next_chain(keys.own), set()
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
