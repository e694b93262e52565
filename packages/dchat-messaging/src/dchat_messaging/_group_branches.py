"""The groups engine's membership state: the branch of signed updates every member holds.

:class:`GroupBranches` (a floor of :class:`~._group_book.Groups`) adds a
received update to what we know of a group and follows the branch
:func:`best_branch` picks (the same on every node that knows the same
updates), keeps :data:`MAX_CHAIN` updates behind the state and
:data:`MAX_HELD` beside or ahead of it, and signs our own updates that lost
again on the winning branch.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Final

from dchat_identity import ContactCard, InvalidCardError

from ._errors import GroupError, RequestError
from ._group_store import GroupRecord
from ._groups import GroupState, GroupUpdate, apply_update

if TYPE_CHECKING:
    from ._conversations import ConversationUpdate
    from ._devices import DeviceAddress
from ._group_core import UPDATE_KIND
from ._group_keys import GroupKeyBook

__all__ = ("MAX_CHAIN", "MAX_HELD", "GroupBranches", "best_branch")

MAX_HELD: Final = 64
"""Updates a node knows but has not applied (ahead of its state, or on another branch)."""
MAX_CHAIN: Final = 32
"""Updates kept behind a node's state: how deep a fork it can still undo."""


class GroupBranches(GroupKeyBook):
    """The membership branches of our groups (see the module docstring)."""

    def _receive_update(self, update: GroupUpdate, now: float) -> list[ConversationUpdate]:
        """Add ``update`` to what we know of the group; follow the branch that wins.

        Every node keeps the updates behind its state (up to :data:`MAX_CHAIN`)
        and those it knows but did not apply (ahead of it, or on another
        branch: :data:`MAX_HELD`), and holds the branch :func:`best_branch`
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
        states, branch = best_branch(base, [*chain, *held, update])
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
        ahead of it: the branch :func:`best_branch` would pick, without applying the kept
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


def best_branch(
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
