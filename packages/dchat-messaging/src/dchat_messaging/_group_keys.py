"""The groups engine's sender keys: our chain handed to every reader, theirs kept.

:class:`GroupKeyBook` (a floor of :class:`~._group_book.Groups`) reconciles
who holds our current sender chain after every change (:meth:`_share_keys`;
the rules are in :mod:`._group_book`'s docstring), sends a message with our
chain to whoever lacks it (:meth:`_post`) and keeps the chains members send
us (``group.key``, the newest :data:`MAX_EPOCHS` per device).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ._content import MAX_CONTROL
from ._errors import GroupError
from ._sender_keys import (
    SenderChain,
    decode_distribution,
    encode_distribution,
    encode_keyed,
)

if TYPE_CHECKING:
    from ._conversations import ConversationUpdate
    from ._devices import DeviceAddress
    from ._group_store import GroupKeys, GroupRecord
    from ._groups import GroupState
from ._group_core import KEY_KIND, KEYED_KIND, MESSAGE_KIND, GroupsCore

__all__ = ("MAX_EPOCHS", "GroupKeyBook", "next_chain")

MAX_EPOCHS: Final = 4
"""Chains kept per member device, the newest epochs: a distribution may come after
newer ones (each rotation sends one; sessions deliver them in any order), and the
messages of its epoch wait for it."""


class GroupKeyBook(GroupsCore):
    """Sender-key bookkeeping of our groups (see the module docstring)."""

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
            keys.own, keys.shared = next_chain(keys.own), set()
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


def next_chain(own: SenderChain | None) -> SenderChain:
    """Our next sender chain: epoch + 1, or (a first one) a random epoch below 2^31.

    Epochs only grow, so whoever holds our older chains keeps the new one
    (receivers keep the two highest); the random start is drawn from the new
    chain's fresh signing key.
    """
    fresh = SenderChain.generate(0)
    fresh.epoch = int.from_bytes(fresh.public[:4], "big") >> 1 if own is None else own.epoch + 1
    return fresh
