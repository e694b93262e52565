"""Invitations in parts: a group's state sent as a signed-over header and member lists.

Theory of operation
-------------------
A group of :data:`~dchat_messaging.lowlevel.MAX_MEMBERS` members does not fit
one control (each member's card is about 270 bytes, up to 2 kB). The state
hash covers only a header that commits to the members by count and root
(:meth:`GroupState.header_bytes`), so an invitation is a *head*
(``group.inv``: the header, the signed update, and as many members as fit)
and *parts* (``group.part``: more members, naming the state hash), each a
control of at most :data:`MAX_CONTROL` bytes.

The receiver trusts nothing before the end: the head's update must sign over
the header's hash (checked on arrival, one SHA-256), the parts only gather
rows (their shape checked, at most the header's count, only from the head's
sender over its authenticated session; a row of a member already gathered, a
copy of a part, adds nothing), and when the count is reached the rows must
rebuild the header's members root (cards checked then). Only then does
:mod:`._group_book` check the update itself (its signer a member of that
state, its signature, its permission). A hostile invitation thus costs at
most one stored pending state per sender (at most :data:`MAX_PENDING`
senders, the oldest dropped) and one card check per member it names, then it
is refused and forgotten.

A complete invitation is kept, as its state, until the group book takes it or
refuses it for good (:meth:`InvitationParts.done`): when the book must wait
(the invitation came before what it needs, say our removal before this re-add)
only the control that completed it waits, and tried again (as is any copy of
its head or parts) it finds the invitation complete.

Stored (sealed state): ``group.invs`` the senders with a pending invitation,
oldest first; ``group.inv.<sender hex>`` ``{"hd": header, ["up": update],
"m": [rows so far]}``, once complete ``{"hd": header, ["up": update],
"st": state}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode, canonical_encode

from ._content import MAX_CONTROL
from ._errors import GroupError
from ._groups import MAX_MEMBERS, GroupState, GroupUpdate, header_hash, read_header

if TYPE_CHECKING:
    from ._store import StateStore

__all__ = ("MAX_PENDING", "PART_KIND", "InvitationParts", "invitation_controls")

PART_KIND: Final = "group.part"
MAX_PENDING: Final = 8
"""Senders whose invitation may be half-received at once (the oldest is dropped)."""
_ROOM: Final = MAX_CONTROL - 512  # what the map around the rows may take
_MAX_ROW: Final = 2048 + 64
_LIMITS: Final = DecodeLimits(max_size=MAX_CONTROL, max_depth=3, max_items=4 * 1024)
_STORED: Final = DecodeLimits(
    max_size=MAX_MEMBERS * (_MAX_ROW + 16) + 2 * MAX_CONTROL, max_depth=3,
    max_items=5 * MAX_MEMBERS + 64,
)  # fmt: skip
_INDEX: Final = "group.invs"


def _key(sender: bytes) -> str:
    return f"group.inv.{sender.hex()}"


def _malformed() -> GroupError:
    return GroupError("malformed", "an invitation is malformed")


def invitation_controls(state: GroupState, update: GroupUpdate | None) -> list[tuple[str, bytes]]:
    """``[(kind, data), ...]``: the head, then the parts, for ``state`` and ``update``.

    ``state`` is the state the update applies to (or, without update, a new
    group's state for our other devices).
    """
    head: dict[str, object] = {"v": 2, "hd": state.header_bytes()}
    if update is not None:
        head["up"] = update.to_bytes()
    rows = state.member_rows()
    used = sum(len(v) for v in head.values() if isinstance(v, bytes))
    batches: list[list[object]] = [[]]
    for row in rows:
        size = len(canonical_encode(row))
        if used + size > _ROOM:
            batches.append([])
            used = 64
        batches[-1].append(row)
        used += size
    controls = [("group.inv", canonical_encode({**head, "m": batches[0]}))]
    sh = state.hash()
    controls += [(PART_KIND, canonical_encode({"v": 2, "sh": sh, "m": b})) for b in batches[1:]]
    return controls


def _rows(raw: object) -> list[list[object]]:
    """Rows of an untrusted control, their shape checked (cards are checked at the end)."""
    if not isinstance(raw, list):
        raise DecodeError("rows")
    for row in raw:
        if not (
            isinstance(row, list)
            and len(row) in (3, 4)
            and isinstance(row[0], bytes)
            and len(row[0]) == 32
            and row[1] in (0, 1)
            and not isinstance(row[1], bool)
            and isinstance(row[2], bytes)
            and len(row[2]) <= _MAX_ROW
        ):  # fmt: skip (a bot's row has its grant last, checked with the state)
            raise DecodeError("row")
    return raw


class InvitationParts:
    """Half-received invitations, by sender (see the module docstring)."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def _senders(self) -> list[bytes]:
        data = self._store.get_state(_INDEX)
        return [bytes(s) for s in canonical_decode(data, _STORED)] if data else []

    def _pending(self, sender: bytes) -> dict[str, object] | None:
        stored = self._store.get_state(_key(sender))
        pending = canonical_decode(stored, _STORED) if stored else None
        return pending if isinstance(pending, dict) else None

    def _forget(self, sender: bytes) -> None:
        self._store.delete_state(_key(sender))
        self._store.put_state(_INDEX, canonical_encode([s for s in self._senders() if s != sender]))

    def head(
        self, sender: bytes, data: bytes, *, own: bool
    ) -> tuple[GroupState, GroupUpdate | None] | None:
        """Take a head; the invitation if it is complete already.

        ``own``: the sender is our own identity (only then may the update be absent).

        Raises:
            GroupError: ``malformed`` (nothing is kept).
        """
        try:
            f = Fields(
                canonical_decode(data, _LIMITS), "invitation", frozenset({"v", "hd", "up", "m"})
            )
            if f.get_int("v") != 2:
                raise DecodeError("version")
            hd = f.get_bytes("hd", max_size=1024)
            header = read_header(canonical_decode(hd, _LIMITS))
            update = GroupUpdate.from_bytes(f.get_bytes("up")) if f.has("up") else None
            rows = _rows(f.raw("m"))
        except (DecodeError, ValueError, TypeError):
            raise _malformed() from None
        if update is None and not own:
            raise _malformed()
        if update is not None and (
            update.group_id != header.group_id or update.prev != header_hash(hd)
        ):
            raise _malformed()  # the update must sign over this very state
        if len(rows) > header.count:
            raise _malformed()
        kept = self._pending(sender)
        up = update.to_bytes() if update is not None else None
        if kept is not None and "st" in kept and kept.get("hd") == hd and kept.get("up") == up:
            return self._complete(kept)  # a copy of a head we hold complete: not anew
        senders = [s for s in self._senders() if s != sender] + [sender]
        for old in senders[:-MAX_PENDING]:
            self._forget(old)
        self._store.put_state(_INDEX, canonical_encode(senders[-MAX_PENDING:]))
        pending: dict[str, object] = {"hd": hd, "m": rows}
        if update is not None:
            pending["up"] = update.to_bytes()
        return self._settle(sender, pending)

    def part(self, sender: bytes, data: bytes) -> tuple[GroupState, GroupUpdate | None] | None:
        """Take a part of ``sender``'s pending invitation; the invitation once complete.

        A part of an invitation complete already returns it again (see the
        module docstring).

        Raises:
            GroupError: ``malformed`` (the pending invitation is dropped if the
                part overflows it); ``unknown_group`` when no head of that
                state from that sender is pending (the part may wait for it).
        """
        try:
            f = Fields(
                canonical_decode(data, _LIMITS), "invitation part", frozenset({"v", "sh", "m"})
            )
            if f.get_int("v") != 2:
                raise DecodeError("version")
            sh, rows = f.get_bytes("sh", size=32), _rows(f.raw("m"))
        except (DecodeError, ValueError, TypeError):
            raise _malformed() from None
        pending = self._pending(sender)
        hd = pending.get("hd") if pending is not None else None
        if pending is None or not isinstance(hd, bytes) or header_hash(hd) != sh:
            raise GroupError("unknown_group", "a part of an invitation not received (yet)")
        if "st" in pending:  # complete, waiting for what its membership check needs
            return self._complete(pending)
        held = pending["m"]
        if not isinstance(held, list):
            raise _malformed()
        seen = {row[0] for row in held if isinstance(row, list) and row}
        pending["m"] = [*held, *(row for row in rows if row[0] not in seen)]  # copies add nothing
        return self._settle(sender, pending)

    def done(self, sender: bytes) -> None:
        """Forget ``sender``'s invitation: taken, or refused for good."""
        self._forget(sender)

    def _settle(
        self, sender: bytes, pending: dict[str, object]
    ) -> tuple[GroupState, GroupUpdate | None] | None:
        """Keep ``pending`` or, once it has its count of rows, check and return it."""
        hd, rows = pending["hd"], pending["m"]
        if not isinstance(hd, bytes) or not isinstance(rows, list):
            raise _malformed()
        header = read_header(canonical_decode(hd, _LIMITS))
        if len(rows) < header.count:
            self._store.put_state(_key(sender), canonical_encode(pending))
            return None
        if len(rows) > header.count:
            self._forget(sender)
            raise _malformed()
        try:
            state = GroupState.assemble(header, rows)  # the members root must match
        except GroupError:
            self._forget(sender)
            raise
        complete = {
            "hd": hd,
            "st": state.to_bytes(),
            **({"up": pending["up"]} if "up" in pending else {}),
        }
        self._store.put_state(_key(sender), canonical_encode(complete))
        return self._complete(complete)

    @staticmethod
    def _complete(pending: dict[str, object]) -> tuple[GroupState, GroupUpdate | None]:
        """A complete invitation as kept (its cards checked once, when it completed)."""
        st, up = pending.get("st"), pending.get("up")
        if not isinstance(st, bytes):
            raise _malformed()
        return GroupState.from_bytes(st), GroupUpdate.from_bytes(up) if isinstance(
            up, bytes
        ) else None
