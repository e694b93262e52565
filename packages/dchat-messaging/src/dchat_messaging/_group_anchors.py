"""Anchored groups on a user node: the checks, the sequencer's steps and the received lists.

Theory of operation
-------------------
:class:`GroupAnchors` (``Groups.anchors``) runs :mod:`._group_order` for
every group whose state names an ``anchor`` (the owner of its chat-chain
channel). It is sans-IO like :class:`~dchat_messaging.lowlevel.Groups`: the
node shell does the chain's I/O and calls back in.

* Every message we accept or send is noted (:meth:`note`): forks and gaps
  become ``group_equivocation`` and ``group_gap`` events, and a fork's
  artefacts are sent to the other members (``group.evi``; like the lists,
  to readers only: a bot that reads commands only hears of no other message).
* The sequencer's node (``GroupState.sequencer``, the primary device of that
  identity) asks :meth:`jobs` what is due, reads the channel's next number,
  signs the batch (:meth:`propose`), commits ``commit_order`` and sends the
  list to every member (:meth:`publish`); if the chain refuses, :meth:`abandon`.
  A crash (or a chain that did not answer) between those steps is repaired
  by :meth:`resends`: a list of ours the chain never got is committed again,
  the same signed bytes (:meth:`retry`), and one the chain holds but the
  members never got is sent to them.
* Every member keeps received lists (``group.ord``, :meth:`receive_order`)
  until the shell has read the chain's record of their range through its
  light client (:meth:`checks`, :meth:`settle`): then messages are anchored
  (``group_anchored``) or the list is evidence against the sequencer.
* Received evidence (``group.evi``) is checked here, never taken on trust: a
  fork's message must carry its sender's signature and conflict with what we
  hold or what the chain anchored; a list must carry an admin's signature and
  is checked against the chain like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from dchat_core import IdentityId
from dchat_crypto import BadSignatureError, VerifyKey

from ._anchor_book import AnchorBook, Finding, Held
from ._errors import ContentError, GroupError, RequestError
from ._group_order import Evidence, OrderBatch, decode_evidence, encode_evidence, order_channel
from ._groups import ADMIN
from ._sender_keys import GroupCiphertext, message_hash

if TYPE_CHECKING:
    from ._conversations import ConversationUpdate
    from ._devices import DeviceAddress
    from ._group_book import Groups
    from ._group_order import OrderEntry
    from ._group_store import GroupRecord
    from ._groups import GroupState

__all__ = ("EVIDENCE_KIND", "ORDER_KIND", "AnchorJob", "AnchorResend", "GroupAnchors")

ORDER_KIND: Final = "group.ord"
EVIDENCE_KIND: Final = "group.evi"
RESEND_INTERVALS: Final = 3
"""Batch intervals after which a list of ours the chain still lacks is committed again."""


@dataclass(frozen=True, slots=True)
class AnchorJob:
    """Sequencer work on one group: a batch to commit and/or admins to grant on the chain."""

    group: bytes
    channel: bytes
    owner: bytes
    entries: tuple[OrderEntry, ...]
    grant: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class AnchorResend:
    """A list of ours to commit again (``commit``) or to send to the members."""

    group: bytes
    channel: bytes
    first: int
    batch: bytes
    commit: bool


def _ms(now: float) -> int:
    return int(now * 1000)


class GroupAnchors:
    """The anchored groups of one node (see the module docstring)."""

    def __init__(self, groups: Groups) -> None:
        self._g = groups

    def book(self, gid: bytes) -> AnchorBook:
        data = self._g.store.get_state(f"group.anchor.{gid.hex()}")
        if data is None:
            return AnchorBook()
        try:
            return AnchorBook.decode(data)
        except (ValueError, TypeError, KeyError):
            raise RequestError("corrupt_state", "stored group anchor state is malformed") from None

    def _save(self, gid: bytes, book: AnchorBook) -> None:
        self._g.store.put_state(f"group.anchor.{gid.hex()}", book.encode())

    # -- messages ---------------------------------------------------------------------

    def note(
        self, state: GroupState, message: GroupCiphertext, wire: bytes, now: float
    ) -> list[ConversationUpdate]:
        """A message of ``state``'s group we accepted or sent (anchored groups only)."""
        if state.anchor is None:
            return []
        book = self.book(state.group_id)
        held = Held(message.sender, message.device, message.seq, message.prev_hash, wire)
        findings = book.note(message_hash(wire), held, _ms(now))
        self._save(state.group_id, book)
        return self._report(state, findings, now)

    def _report(
        self, state: GroupState, findings: list[Finding], now: float, *, tell: bool = True
    ) -> list[ConversationUpdate]:
        """Events for ``findings``; evidence artefacts sent to the other members."""
        updates = []
        me = self._g.identity()
        for finding in findings:
            kind = f"group_{finding.kind}"
            updates.append(self._g.event(kind, state.group_id, me, now, **finding.detail))
            for evi_kind, artefact in finding.tell if tell else ():
                data = encode_evidence(Evidence(state.group_id, evi_kind, artefact))
                try:
                    others = [state.members[i].card for i in sorted(state.readers() - {me})]
                    self._g.waiting += self._g.send(EVIDENCE_KIND, data, others, now=now)
                except ContentError:
                    continue  # too large for one control: kept here, not told
        return updates

    # -- the sequencer (the node shell drives these) --------------------------------------

    def jobs(self, now: float, *, count: int, interval: float) -> list[AnchorJob]:
        """What this node, as the sequencer of anchored groups, should commit now."""
        me = self._g.signer_id()
        if me is None:
            return []
        jobs = []
        for gid in self._g.db.ids():
            record = self._g.db.record(gid)
            if record is None or record.status != "active" or record.state.anchor is None:
                continue
            state, owner = record.state, record.state.anchor
            if state.sequencer() != me:
                continue
            book = self.book(gid)
            entries = book.due(_ms(now), count, int(interval * 1000), me=me)
            grant: tuple[bytes, ...] = ()
            if state.anchor == me:
                grant = tuple(
                    a for a in sorted(state.admins()) if a != me and a not in book.granted
                )
            if entries or grant:
                channel = order_channel(owner, gid)
                jobs.append(AnchorJob(gid, channel, owner, tuple(entries), grant))
        return jobs

    def propose(self, job: AnchorJob, first: int, *, now: float) -> OrderBatch:
        """Sign the batch of ``job`` as the range starting at ``first`` (the chain's next)."""
        me, identity, _ = self._g.signer()
        draft = OrderBatch(job.group, job.channel, first, job.entries, me)
        batch = draft.signed(identity.signing_key)
        with self._g.store.transaction():
            book = self.book(job.group)
            book.hold(batch, _ms(now))
            self._save(job.group, book)
        return batch

    def publish(self, batch: bytes, *, now: float) -> tuple[None, list[DeviceAddress]]:
        """Send our committed list to every member device (and our other devices), once."""
        parsed = OrderBatch.from_bytes(batch)
        with self._g.store.transaction():
            record = self._g.db.record(parsed.group)
            if record is None:
                return None, []
            book = self.book(parsed.group)
            book.sent(batch)
            self._save(parsed.group, book)
            me = self._g.identity()
            readers = record.state.readers() - {me}  # a commands-only bot: not its business
            others = [record.state.members[i].card for i in sorted(readers)]
            return None, self._g.send(ORDER_KIND, batch, others, now=now)

    def resends(
        self, now: float, *, interval: float, restarted: bool = False
    ) -> list[AnchorResend]:
        """Our lists a crash left behind: to commit again or to send (see the module docstring).

        ``restarted``: the first call since the node started (commit at once
        instead of ``RESEND_INTERVALS`` batch intervals after the last try).
        """
        me = self._g.signer_id()
        if me is None:
            return []
        out = []
        grace = int(interval * RESEND_INTERVALS * 1000)
        for gid in self._g.db.ids():
            record = self._g.db.record(gid)
            if record is None or record.status != "active" or record.state.anchor is None:
                continue
            found = self.book(gid).resends(me, _ms(now), grace, restarted=restarted)
            sequencer = record.state.sequencer() == me
            for commit, raw in found:
                batch = OrderBatch.from_bytes(raw)
                if sequencer or not commit:
                    out.append(AnchorResend(gid, batch.channel, batch.first, raw, commit))
        return out

    def retry(self, gid: bytes, batch: bytes, next_first: int, now: float) -> bool:
        """Whether to commit our ``batch`` again (else it is dropped).

        The chain has no record at its first number, and its channel's next
        is ``next_first``: see :meth:`AnchorBook.retry`.
        """
        with self._g.store.transaction():
            book = self.book(gid)
            again = book.retry(batch, next_first, _ms(now))
            self._save(gid, book)
        return again

    def abandon(self, gid: bytes, first: int) -> None:
        """The chain did not take our batch at ``first``: its messages wait for the next."""
        with self._g.store.transaction():
            book = self.book(gid)
            book.abandon(first)
            self._save(gid, book)

    def granted(self, gid: bytes, who: bytes) -> None:
        """``who`` now holds the channel's admin role on the chain."""
        with self._g.store.transaction():
            book = self.book(gid)
            book.granted.add(who)
            self._save(gid, book)

    # -- checking lists against the chain ---------------------------------------------

    def checks(self) -> list[tuple[bytes, bytes, int]]:
        """``(group, channel, first)`` of every list waiting for the chain's record."""
        found = []
        for gid in self._g.db.ids():
            record = self._g.db.record(gid)
            if record is None or record.status == "left" or record.state.anchor is None:
                continue
            for raw in self.book(gid).unverified:
                batch = OrderBatch.from_bytes(raw)
                if (gid, batch.channel, batch.first) not in found:
                    found.append((gid, batch.channel, batch.first))
        return found

    def settle(
        self, gid: bytes, channel: bytes, first: int,
        chain: tuple[int, bytes, bytes, int] | None, *, now: float,
    ) -> tuple[list[ConversationUpdate], list[DeviceAddress]]:  # fmt: skip
        """The chain's verified record ``(last, root, by, height)`` of ``[first, ...]``."""
        with self._g.store.transaction():
            record = self._g.db.record(gid)
            if record is None or chain is None:
                return [], []
            book = self.book(gid)
            findings = book.settle(channel, first, chain, _ms(now))
            self._save(gid, book)
            saved, self._g.waiting = self._g.waiting, []
            updates = self._report(record.state, findings, now)
            waiting, self._g.waiting = self._g.waiting, saved
        return updates, waiting

    # -- received controls ------------------------------------------------------------

    def _checked_batch(self, record: GroupRecord, data: bytes) -> OrderBatch:
        batch = OrderBatch.from_bytes(data)
        state = record.state
        if batch.group != state.group_id or state.anchor is None:
            raise GroupError("not_allowed", "an order list for a group that is not anchored")
        if batch.channel != order_channel(state.anchor, state.group_id):
            raise GroupError("malformed", "an order list for another channel")
        member = state.members.get(batch.by)
        if member is None or member.role != ADMIN:
            raise GroupError("not_allowed", "an order list from someone who is not an admin")
        batch.verify(member.card.identity_key)
        return batch

    def receive_order(self, sender: bytes, data: bytes, now: float) -> list[ConversationUpdate]:
        """A sequencer's ``group.ord``: checked, then kept until the chain is read for it."""
        batch = OrderBatch.from_bytes(data)
        record = self._g.in_group(batch.group, "an order list")
        batch = self._checked_batch(record, data)
        if sender != batch.by:
            raise GroupError("malformed", "an order list sent by another than its sequencer")
        book = self.book(batch.group)
        findings = book.receive(batch, _ms(now))
        self._save(batch.group, book)
        return self._report(record.state, findings, now)

    def receive_evidence(self, sender: bytes, data: bytes, now: float) -> list[ConversationUpdate]:
        """A member's ``group.evi``: its artefact checked by us, recorded only if it convicts."""
        evidence = decode_evidence(data)
        record = self._g.in_group(evidence.group, "evidence")
        if sender not in record.state.members:
            raise GroupError("not_member", "evidence from outside the group")
        book = self.book(evidence.group)
        if evidence.kind == "order":
            findings = book.receive(self._checked_batch(record, evidence.artefact), _ms(now))
        else:
            message = self._signed_message(record, evidence.artefact)
            h = message_hash(evidence.artefact)
            held = Held(message.sender, message.device, message.seq, message.prev_hash,
                        evidence.artefact)  # fmt: skip
            findings = [] if h in book.held else book.conflicts(h, held, _ms(now))
        self._save(evidence.group, book)
        return self._report(record.state, findings, now, tell=False)

    def _signed_message(self, record: GroupRecord, wire: bytes) -> GroupCiphertext:
        message = GroupCiphertext.from_bytes(wire)
        if message.group != record.state.group_id:
            raise GroupError("malformed", "evidence of another group")
        keys = self._g.db.keys(message.group)
        chains = list(self._g.db.chains(message.group, (message.sender, message.device)))
        if keys.own is not None and message.sender == self._g.identity():
            chains.append(keys.own)
        chain = next((c for c in chains if c.epoch == message.epoch), None)
        if chain is None:
            raise GroupError("no_key", "no sender key to check that evidence with")
        try:
            VerifyKey(chain.public).verify(message.signature, message.signed_bytes())
        except BadSignatureError:
            raise GroupError("unreadable", "evidence that its sender did not sign") from None
        return message

    # -- views ------------------------------------------------------------------------

    def marks(self, gid: bytes) -> dict[str, int]:
        """Hash (hex) to order number of every anchored message of the group."""
        return {h.hex(): v[3] for h, v in self.book(gid).listed.items()}

    def view(self, state: GroupState) -> dict[str, object]:
        """The anchor part of ``GET /v1/groups/{g}``."""
        if state.anchor is None:
            return {"enabled": False}
        book = self.book(state.group_id)
        sequencer = state.sequencer()
        return {
            "enabled": True, "owner": str(IdentityId(state.anchor)),
            "channel": order_channel(state.anchor, state.group_id).hex(),
            "sequencer": None if sequencer is None else str(IdentityId(sequencer)),
            "next": book.next_first(), "anchored": sum(h in book.held for h in book.listed),
            "pending": len(book.pending), "unverified": len(book.unverified),
            "missing": [
                {"by": str(IdentityId(s)), "device": d.hex(), "seq": q}
                for s, d, q in sorted(book.missing)
            ],
            "equivocations": [_evidence_json(e) for e in book.evidence],
        }  # fmt: skip


def _evidence_json(e: dict[str, Any]) -> dict[str, object]:
    out: dict[str, object] = {
        "kind": e["k"], "accused": str(IdentityId(bytes(e["who"]))), "why": e["why"],
        "at_ms": e["at"], "a": bytes(e["a"]).hex(), "b": bytes(e["b"]).hex(),
    }  # fmt: skip
    if "c" in e:
        first, last, root, height = e["c"]
        out["chain"] = {"first": first, "last": last, "root": bytes(root).hex(), "height": height}
    return out
