"""Private groups in the simulator: the workload, the ground truth and the invariants.

Theory of operation
-------------------
The users of a :class:`~dchat_testing.sim.MessagingWorld` (each the real
messaging engine, :class:`UserNode`) know each other as contacts; their apps
drive the real group engine (``UserMessaging.groups``) through
:meth:`UserNode.group_act`, the calls the node's API makes: ``create``,
``invite``, ``join``, ``remove``, ``leave``, ``send_text``. An app whose node
is down acts when it is up again; an action the node's rules refuse (it is not
an admin in its view, or not a member any more) is counted and dropped, as a
user would see a 403. An invited user's app joins soon after the invitation.

:class:`GroupLedger` is the ground truth: every group state any node stored
(:attr:`UserNode.group_saved`: hash, version, the hash it follows, members)
and every message a node accepted to send (its sender's view of the group
then). The invariants:

* :class:`GroupEpochs` (at every opened message): a node opens a message
  only if its user was a member in the sender's view when it was sent (a
  removed member opens nothing sent after the sender knew of the removal, a
  new member nothing sent before the sender knew of its join); and at most
  once. To give it teeth, every post is also handed, as if its sender's
  session had brought it, to every user outside the sender's view (removed,
  not yet added, never added): what a relay stored, or a member forwarded.
* :class:`GroupAgreement` (at the end, after healing): every node that holds
  itself a member of a group holds the same state (hash), and that state's
  members are exactly those nodes.
* :class:`GroupNoLoss` (at the end): the agreed history is the chain of
  states from the agreed one back to version 1 (each update names the hash of
  the state it follows); a message reached every user who was a member in its
  sender's view and, with its sender, stayed one along the agreed history
  from the sender's version on. (A message of a sender removed later, still
  in flight at its removal, may be refused: a receiver cannot tell it from
  one sent after the removal: see docs/rationale.md.)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from dchat_core import IdentityId, MessageId
from dchat_messaging import RequestError

from ._simulation import Violation
from ._world import MessagingWorld

if TYPE_CHECKING:
    import random
    from collections.abc import Iterable

    from dchat_messaging.lowlevel import GroupRecord

    from ._relay import RelayNode
    from ._simulation import Observation, Simulation
    from ._user import UserNode

__all__ = ("GroupAgreement", "GroupEpochs", "GroupLedger", "GroupNoLoss", "GroupWorld")

JOIN_DELAY: Final = 0.5
"""Seconds between an invitation reaching a user's app and the user joining."""
LEAK_DELAY: Final = 0.05
"""Seconds after a post that every user outside its sender's view is handed it."""


@dataclass(frozen=True, slots=True)
class GroupSend:
    """A group message its sender's node accepted, and the sender's view then."""

    group: str
    sender: str
    time: float
    version: int
    members: frozenset[str]


@dataclass(slots=True)
class GroupLedger:
    """Every group state stored anywhere, every accepted message, who opened what."""

    states: dict[bytes, tuple[int, bytes | None, frozenset[str]]] = field(default_factory=dict)
    sends: dict[str, GroupSend] = field(default_factory=dict)
    opened: dict[str, list[str]] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)
    refused: int = 0

    def stored(self, record: GroupRecord) -> None:
        state = record.state
        prev = record.last.prev if record.last and record.last.version == state.version else None
        members = frozenset(str(IdentityId(i)) for i in state.members)
        self.states.setdefault(state.hash(), (state.version, prev, members))

    def history(self, final: bytes) -> dict[int, frozenset[str]] | None:
        """The members at each version of the chain that ends in state ``final``."""
        chain: dict[int, frozenset[str]] = {}
        at: bytes | None = final
        while at is not None:
            known = self.states.get(at)
            if known is None:
                return None
            version, at, members = known
            chain[version] = members
        return chain if sorted(chain) == list(range(1, len(chain) + 1)) else None


class GroupEpochs:
    """A node opens only what was sent while its user was a member, and once."""

    name = "group message readable only inside its epoch"

    def __init__(self, ledger: GroupLedger, users: list[UserNode]) -> None:
        self._ledger = ledger
        self._ids = {u.name: str(u.card.identity_id) for u in users}

    def observe(self, obs: Observation) -> Iterable[Violation]:
        if obs.kind != "group_message":
            return ()
        mid, who = str(obs.data["message_id"]), self._ids[obs.node]
        sent = self._ledger.sends.get(mid)
        opened = self._ledger.opened.setdefault(mid, [])
        opened.append(who)
        if sent is None:
            return (Violation(self.name, obs.time, f"{obs.node} opened {mid}, never sent"),)
        if who not in sent.members:
            detail = (
                f"{obs.node} opened {mid} (sent at t={sent.time:.3f}s, version "
                f"{sent.version}) though not a member in its sender's view"
            )
            return (Violation(self.name, obs.time, detail),)
        if opened.count(who) > 1:
            return (Violation(self.name, obs.time, f"{obs.node} opened {mid} twice"),)
        return ()

    def finish(self, sim: Simulation) -> Iterable[Violation]:
        return ()


def _final(users: list[UserNode], gid: str) -> dict[str, GroupRecord]:
    """Each user's record of group ``gid`` (hex) where it holds itself a member."""
    found = {}
    for user in users:
        record = user.agent.groups.db.record(bytes.fromhex(gid))
        if record is not None and record.status != "left":
            found[str(user.card.identity_id)] = record
    return found


class _EndCheck:
    """An invariant checked once, after healing, over the ledger and the users' final state."""

    def __init__(self, ledger: GroupLedger, users: list[UserNode]) -> None:
        self._ledger = ledger
        self._users = users

    def observe(self, obs: Observation) -> Iterable[Violation]:
        return ()


class GroupAgreement(_EndCheck):
    """After healing, the members of each group hold one state, whose members they are."""

    name = "group membership agreement"

    def finish(self, sim: Simulation) -> Iterable[Violation]:
        found = []
        for gid in self._ledger.groups:
            records = _final(self._users, gid)
            views = {r.state.hash() for r in records.values()}
            if len(views) > 1:
                versions = sorted({r.state.version for r in records.values()})
                detail = f"group {gid[:8]}: members hold {len(views)} states (versions {versions})"
                found.append(Violation(self.name, sim.now, detail))
                continue
            if not records:
                continue
            state = next(iter(records.values())).state
            members = {str(IdentityId(i)) for i in state.members}
            if members != set(records):
                detail = (
                    f"group {gid[:8]} v{state.version}: {len(members)} members, "
                    f"{len(records)} nodes hold themselves members"
                )
                found.append(Violation(self.name, sim.now, detail))
        return found


class GroupNoLoss(_EndCheck):
    """After healing, each accepted message reached every member who stayed one."""

    name = "no accepted group message lost"

    def finish(self, sim: Simulation) -> Iterable[Violation]:
        found = []
        for gid in self._ledger.groups:
            records = _final(self._users, gid)
            if not records:
                continue
            final = next(iter(records.values())).state
            chain = self._ledger.history(final.hash())
            if chain is None:
                detail = f"group {gid[:8]}: the agreed state's history is incomplete"
                found.append(Violation(self.name, sim.now, detail))
                continue
            for mid, sent in self._ledger.sends.items():
                if sent.group != gid:
                    continue
                if sent.version > final.version:
                    continue  # sent on a branch that lost: the agreed history never got there
                later = [chain[v] for v in range(sent.version, final.version + 1)]
                for member in sorted(sent.members - {sent.sender}):
                    stayed = all(member in m and sent.sender in m for m in later)
                    if stayed and member not in self._ledger.opened.get(mid, []):
                        detail = (
                            f"group {gid[:8]}: {mid} (t={sent.time:.3f}s, v{sent.version}) "
                            f"never opened by member {member[:12]}"
                        )
                        found.append(Violation(self.name, sim.now, detail))
        return found[:3]


class GroupWorld(MessagingWorld):
    """A messaging world whose users are contacts and act in groups (see the module)."""

    def __init__(self, sim: Simulation, relays: list[RelayNode], users: list[UserNode]) -> None:
        super().__init__(sim, relays, users)
        self.groups = GroupLedger()
        self._later: dict[str, list[tuple[str, tuple[object, ...], dict[str, object]]]] = {}
        for user in self.users:
            user.group_saved = self.groups.stored
            for other in self.users:
                if other is not user:
                    now = user.clock.now()
                    user.agent.contacts.add_card(other.name, other.card, now=now, announce=False)
        sim.add_invariant(GroupEpochs(self.groups, self.users))
        sim.add_invariant(GroupAgreement(self.groups, self.users))
        sim.add_invariant(GroupNoLoss(self.groups, self.users))
        sim.on("group_update", self._on_group_update)
        sim.on("up", self._on_group_up)

    def act(self, user: UserNode, action: str, *args: object, **kwargs: object) -> None:
        """``user``'s app does ``action`` (later if its node is down; a refusal is counted)."""
        if not user.up:
            self._later.setdefault(user.name, []).append((action, args, kwargs))
            return
        view = None
        try:
            if action == "send_text":
                view = user.agent.groups.find(str(args[0])).state
            result = user.group_act(action, *args, **kwargs)
        except RequestError as exc:
            self.groups.refused += 1
            user.observe("group_refused", action=action, code=exc.code)
            return
        if action == "create":
            self.groups.groups.append(str(result))
        user.observe("group_act", action=action, args=" ".join(str(a)[:8] for a in args))
        if view is not None:
            members = frozenset(str(IdentityId(i)) for i in view.members)
            sender = str(user.card.identity_id)
            send = GroupSend(str(args[0]), sender, self.sim.now, view.version, members)
            self.groups.sends[str(result)] = send
            # Everyone outside the sender's view is handed the ciphertext too (as a
            # relay or a member could): none of them may open it.
            for other in self.users:
                if str(other.card.identity_id) not in members:
                    leak = functools.partial(self._leak, other, user, user.group_wires[-1])
                    self.sim.at(self.sim.now + LEAK_DELAY, leak)

    def _leak(self, to: UserNode, sender: UserNode, wire: bytes) -> None:
        if to.up:
            to.group_leak(sender, wire)

    def _on_group_update(self, obs: Observation) -> None:
        if obs.data.get("op") == "invited":
            user = next(u for u in self.users if u.name == obs.node)
            join = functools.partial(self.act, user, "join", str(obs.data["group"]))
            self.sim.at(self.sim.now + JOIN_DELAY, join)

    def _on_group_up(self, obs: Observation) -> None:
        user = next((u for u in self.users if u.name == obs.node), None)
        for action, args, kwargs in self._later.pop(obs.node, []) if user else []:
            assert user is not None
            self.sim.at(self.sim.now, functools.partial(self.act, user, action, *args, **kwargs))

    def invite_by(self, user: UserNode, index: int, name: str, admin: bool) -> None:
        """``user`` adds the user ``name`` to the ``index``th group created."""
        if index < len(self.groups.groups):
            self.act(user, "invite", self.groups.groups[index], name, admin=admin)

    def random_act(self, gid_index: int, rng: random.Random) -> None:
        """One random action on group ``gid_index``: mostly posts, else membership changes."""
        if gid_index >= len(self.groups.groups):
            return
        gid = self.groups.groups[gid_index]
        user = rng.choice(self.users)
        if not user.up:
            return
        record = user.agent.groups.db.record(bytes.fromhex(gid))
        others = [u for u in self.users if u is not user]
        roll = rng.random()
        if record is None or record.status != "active":
            return
        state = record.state
        members = [u for u in others if bytes(u.card.identity_id) in state.members]
        outside = [u for u in others if bytes(u.card.identity_id) not in state.members]
        if roll < 0.55:
            text, mid = f"{user.name} in {gid[:6]} {rng.randbytes(4).hex()}", rng.randbytes(16)
            self.act(user, "send_text", gid, text, message_id=MessageId(mid))
        elif roll < 0.75 and outside:
            self.act(user, "invite", gid, rng.choice(outside).name, admin=rng.random() < 0.3)
        elif roll < 0.92 and members:
            self.act(user, "remove", gid, rng.choice(members).name)
        else:
            self.act(user, "leave", gid)

    def quiescent(self) -> bool:
        return super().quiescent() and not any(self._later.values())
