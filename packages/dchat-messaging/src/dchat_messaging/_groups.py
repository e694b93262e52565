"""Group state and the signed, versioned updates that change it (pure rules, no store).

Theory of operation
-------------------
A private group is a :class:`GroupState`: its id (32 random bytes), version,
title, members (identity id, role, contact card) and settings (who may add,
remove, post, edit). Only a :class:`GroupUpdate` changes it: the acting
member signs, with its identity key, update ``N + 1`` over the hash of
state ``N`` (:meth:`GroupState.hash`); :func:`apply_update` checks, under
state ``N``, that the signer is a member, that its signature holds, and that
the settings let it do the operation, and returns state ``N + 1``; anything
else is a typed :class:`~dchat_messaging.GroupError` and nothing changes.
Every member's node runs these checks on every update it receives, so a
member whose node skips them (a modified client) convinces nobody else.

Two updates made concurrently on the same version are told apart by their
hash: the lower one wins on every node (:func:`update_wins`); a node that
applied the other rolls back one version and applies the winner, and the
author of the loser re-bases it (signs it again on the winner).

The state hash does not hash the whole state: each member is a 32-byte
leaf (kept with the member, made once), the members a root over the leaves
in id order, and the hash covers a small header with that root
(:meth:`GroupState.header_bytes`). So an update costs a hash of 32 bytes per
member, not a re-encoding of every card, and an invitation can carry the
header alone and the members in parts that are checked against it.

Operations (``op``, ``arg``): ``add`` ``[card, role]``; ``adds`` ``[[card,
role], ...]`` (1 to :data:`MAX_BATCH` members at once); ``remove`` identity
id (a member may always remove itself: leaving); ``title`` text; ``role``
``[identity id, role]``; ``settings`` ``{"add", "remove", "post", "edit"}``;
``anchor`` an admin's identity id (the owner of the group's chat-chain
channel: its order is anchored there, :mod:`._group_order`) or empty bytes
(not anchored); ``bot`` ``[card, grant]`` (a bot, admins only) and ``grant``
``[identity id, grant]`` (a bot's new grant, admins only): :mod:`._group_bots`.
A bot's member row carries its grant as a fourth field (a person's has
three: their leaves hash as before). A bot's role is ``0``; what it may do is
its grant alone (no setting gives it more), and a role update never names it.
A role is ``1`` (admin) or ``0`` (member); a setting is ``1`` (admins only)
or ``0`` (any member). Changing a role or the settings is for admins only,
and the last admin cannot leave or step down while others remain.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode, canonical_encode
from dchat_crypto import BadSignatureError
from dchat_identity import ContactCard, InvalidCardError

from ._errors import ContentError, GroupError
from ._group_bots import BotGrant, addressed

if TYPE_CHECKING:
    from dchat_crypto import SigningKey

__all__ = (
    "ADMIN",
    "MAX_BATCH",
    "MAX_MEMBERS",
    "MEMBER",
    "GroupHeader",
    "GroupState",
    "GroupUpdate",
    "Member",
    "apply_update",
    "header_hash",
    "member_leaf",
    "read_header",
    "update_wins",
)

ADMIN: Final = 1
MEMBER: Final = 0
MAX_MEMBERS: Final = 1000
"""Members of one group (an invitation travels in parts; see docs/rationale.md)."""
MAX_BATCH: Final = 128
"""Members one ``adds`` update may add."""
MAX_TITLE: Final = 128
SETTINGS: Final = ("add", "remove", "post", "edit")
DEFAULT_SETTINGS: Final = {"add": ADMIN, "remove": ADMIN, "post": MEMBER, "edit": ADMIN}
_STATE_INFO: Final = b"dchat-group-state-v2"
_MEMBERS_INFO: Final = b"dchat-group-members-v2"
_LEAF_INFO: Final = b"dchat-group-member-v2"
_UPDATE_INFO: Final = b"dchat-group-update-v1"
_STATE: Final = frozenset({"v", "g", "ver", "t", "m", "s", "a"})
_HEADER: Final = frozenset({"v", "g", "ver", "t", "s", "n", "mr", "a"})
_UPDATE: Final = frozenset({"v", "g", "ver", "prev", "by", "op", "arg", "sig"})
_OPS: Final = frozenset(
    {"add", "adds", "remove", "title", "role", "settings", "anchor", "bot", "grant"}
)
_LIMITS: Final = DecodeLimits(max_size=400_000, max_depth=4, max_items=8 * MAX_BATCH + 64)
_MAX_CARD: Final = 2048  # bytes of a contact card (dchat_identity)
_STATE_LIMITS: Final = DecodeLimits(
    max_size=MAX_MEMBERS * (_MAX_CARD + 64) + 4096, max_depth=4, max_items=8 * MAX_MEMBERS + 64
)
_MAX_VERSION: Final = 2**53


def _malformed(what: str) -> GroupError:
    return GroupError("malformed", f"a group {what} is malformed")


def member_leaf(identity: bytes, role: int, card: bytes, bot: BotGrant | None = None) -> bytes:
    """A member's leaf in the state hash: ``SHA-256(info || canonical(row))``, the row
    ``[id, role, card]`` (a bot's: ``[id, role, card, grant]``)."""
    row: list[object] = [identity, role, card]
    if bot is not None:
        row.append(bot.to_wire())
    return hashlib.sha256(_LEAF_INFO + canonical_encode(row)).digest()


@dataclass(frozen=True, slots=True)
class Member:
    """One member: role and contact card (how to reach it, its identity key)."""

    role: int
    card: ContactCard
    raw: bytes = field(default=b"", compare=False, repr=False)
    """The card's bytes when the caller has them (``card.to_bytes()``, not encoded again)."""
    bot: BotGrant | None = None
    """A bot's grant (None: a person)."""
    leaf: bytes = field(init=False, compare=False, repr=False)
    """Its leaf in the state hash (:func:`member_leaf`), made once."""

    def __post_init__(self) -> None:
        raw = self.raw or self.card.to_bytes()
        object.__setattr__(self, "raw", raw)
        leaf = member_leaf(bytes(self.card.identity_id), self.role, raw, self.bot)
        object.__setattr__(self, "leaf", leaf)

    def row(self) -> list[object]:
        """``[identity id, role, card bytes]``, a bot's with its grant last."""
        row: list[object] = [bytes(self.card.identity_id), self.role, self.raw]
        return row if self.bot is None else [*row, self.bot.to_wire()]


@dataclass(frozen=True, slots=True)
class GroupState:
    """One version of a group (see the module docstring)."""

    group_id: bytes
    version: int
    title: str
    members: dict[bytes, Member]
    settings: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_SETTINGS))
    anchor: bytes | None = None
    """The identity owning the group's chat-chain channel, if its order is anchored."""
    _memo: dict[str, bytes] = field(default_factory=dict, init=False, compare=False, repr=False)
    """Encodings once computed (a state never changes: updates make new ones)."""

    @classmethod
    def create(cls, group_id: bytes, title: str, creator: ContactCard) -> GroupState:
        """Version 1: ``creator`` its only member, an admin."""
        return cls(
            group_id, 1, _check_title(title), {bytes(creator.identity_id): Member(1, creator)}
        )

    def admins(self) -> list[bytes]:
        return [i for i, m in self.members.items() if m.role == ADMIN]

    def sequencer(self) -> bytes | None:
        """Who commits the order (anchored groups): the channel's owner while an admin, else
        the lowest admin identity (which the owner made a channel admin on the chain)."""
        if self.anchor is None:
            return None
        admins = self.admins()
        return self.anchor if self.anchor in admins else min(admins, default=None)

    def may(self, who: bytes, action: str) -> bool:
        """Whether member ``who`` may ``action`` (``add``, ``remove``, ``post``, ``edit``);
        a bot by its grant alone (``post``; ``add`` and ``remove`` if it administers)."""
        member = self.members.get(who)
        if member is None:
            return False
        if member.bot is not None:
            return member.bot.post if action == "post" else member.bot.admin and action != "edit"
        return member.role == ADMIN or self.settings.get(action, ADMIN) == MEMBER

    def readers(self) -> set[bytes]:
        """Who is handed the sender chains: every person, and the bots that read all."""
        return {i for i, m in self.members.items() if m.bot is None or m.bot.read_all}

    def commanded(self, text: str) -> list[bytes]:
        """The bots that read commands only and that ``text`` is a command to."""
        return [
            i
            for i, m in sorted(self.members.items())
            if m.bot is not None and not m.bot.read_all and addressed(text, m.card.name)
        ]

    def member_rows(self) -> list[list[object]]:
        """``[[identity id, role, card bytes(, grant)], ...]`` in id order (what invitations
        carry)."""
        return [m.row() for _, m in sorted(self.members.items())]

    def to_bytes(self) -> bytes:
        """The whole state, every card included (how a node stores it)."""
        if "full" not in self._memo:
            value: dict[str, object] = {
                "v": 1, "g": self.group_id, "ver": self.version, "t": self.title,
                "m": self.member_rows(), "s": dict(self.settings),
            }  # fmt: skip
            if self.anchor is not None:
                value["a"] = self.anchor
            self._memo["full"] = canonical_encode(value)
        return self._memo["full"]

    def members_root(self) -> bytes:
        """``SHA-256(info || leaf 1 || ... || leaf n)``, leaves in member id order."""
        leaves = b"".join(m.leaf for _, m in sorted(self.members.items()))
        return hashlib.sha256(_MEMBERS_INFO + leaves).digest()

    def header_bytes(self) -> bytes:
        """What the state hash covers: everything but the members, who count by their root
        (``a``, the anchor, only when the group is anchored)."""
        if "header" not in self._memo:
            value: dict[str, object] = {
                "v": 2, "g": self.group_id, "ver": self.version, "t": self.title,
                "s": dict(self.settings), "n": len(self.members), "mr": self.members_root(),
            }  # fmt: skip
            if self.anchor is not None:
                value["a"] = self.anchor
            self._memo["header"] = canonical_encode(value)
        return self._memo["header"]

    def hash(self) -> bytes:
        """What update ``version + 1`` signs over."""
        return header_hash(self.header_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> GroupState:
        """Parse a stored state (our store: up to :data:`MAX_MEMBERS` cards).

        Raises:
            GroupError: ``malformed`` (a card that is not its member's counts as malformed).
        """
        try:
            f = Fields(canonical_decode(data, _STATE_LIMITS), "group state", _STATE)
            if f.get_int("v") != 1:
                raise DecodeError("version")
            header = GroupHeader(
                f.get_bytes("g", size=32), f.get_int("ver", lo=1, hi=_MAX_VERSION),
                _check_title(f.get_str("t", max_len=MAX_TITLE)), _check_settings(f.raw("s")),
                0, b"", f.get_bytes("a", size=32) if f.has("a") else None,
            )  # fmt: skip
            return cls.assemble(header, f.get_list("m", max_len=MAX_MEMBERS), check=False)
        except (DecodeError, InvalidCardError, ValueError, TypeError):
            raise _malformed("state") from None

    @classmethod
    def assemble(cls, header: GroupHeader, rows: list[object], *, check: bool = True) -> GroupState:
        """The state of ``header`` with the members ``rows`` (``[id, role, card bytes]``).

        With ``check``, the result must hash to ``header`` (its count and
        members root): what a new member does with an invitation's parts.

        Raises:
            GroupError: ``malformed``.
        """
        members: dict[bytes, Member] = {}
        try:
            for item in rows:
                if not isinstance(item, list) or len(item) not in (3, 4) or item[1] not in (0, 1):
                    raise DecodeError("member")
                bot = BotGrant.from_wire(item[3]) if len(item) == 4 else None
                if bot is not None and item[1] != MEMBER:
                    raise DecodeError("a bot is no admin")
                card = ContactCard.from_bytes(item[2])
                if bytes(card.identity_id) != item[0] or item[0] in members:
                    raise DecodeError("member card")
                members[item[0]] = Member(item[1], card, bytes(item[2]), bot)
        except (DecodeError, InvalidCardError, ValueError, TypeError):
            raise _malformed("state") from None
        state = cls(
            header.group_id, header.version, header.title, members, header.settings, header.anchor
        )
        if check and (len(members) != header.count or state.members_root() != header.root):
            raise _malformed("state")
        return state


@dataclass(frozen=True, slots=True)
class GroupHeader:
    """What a state hash covers (:meth:`GroupState.header_bytes`), read from an invitation."""

    group_id: bytes
    version: int
    title: str
    settings: dict[str, int]
    count: int
    root: bytes
    anchor: bytes | None = None


def header_hash(header: bytes) -> bytes:
    """The state hash: ``SHA-256("dchat-group-state-v2" || canonical(header))``."""
    return hashlib.sha256(_STATE_INFO + header).digest()


def read_header(raw: object) -> GroupHeader:
    """Check a decoded state header (untrusted).

    Raises:
        DecodeError, ValueError, TypeError: malformed.
    """
    f = Fields(raw, "group state header", _HEADER)
    if f.get_int("v") != 2:
        raise DecodeError("version")
    return GroupHeader(
        f.get_bytes("g", size=32), f.get_int("ver", lo=1, hi=_MAX_VERSION),
        _check_title(f.get_str("t", max_len=MAX_TITLE)), _check_settings(f.raw("s")),
        f.get_int("n", lo=1, hi=MAX_MEMBERS), f.get_bytes("mr", size=32),
        f.get_bytes("a", size=32) if f.has("a") else None,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class GroupUpdate:
    """A signed change from version ``version - 1`` (hash ``prev``) to ``version``."""

    group_id: bytes
    version: int
    prev: bytes
    by: bytes
    op: str
    arg: object
    signature: bytes = b""

    def _unsigned(self) -> dict[str, object]:
        return {
            "v": 1, "g": self.group_id, "ver": self.version, "prev": self.prev, "by": self.by,
            "op": self.op, "arg": self.arg,
        }  # fmt: skip

    def signed_bytes(self) -> bytes:
        return _UPDATE_INFO + canonical_encode(self._unsigned())

    @classmethod
    def make(
        cls, state: GroupState, by: bytes, op: str, arg: object, key: SigningKey
    ) -> GroupUpdate:
        """The update ``op`` on ``state``, signed by ``key`` (``by``'s identity key)."""
        draft = cls(state.group_id, state.version + 1, state.hash(), by, op, arg)
        return replace(draft, signature=key.sign(draft.signed_bytes()))

    def to_bytes(self) -> bytes:
        return canonical_encode({**self._unsigned(), "sig": self.signature})

    def hash(self) -> bytes:
        """Tells concurrent updates apart (:func:`update_wins`)."""
        return hashlib.sha256(_UPDATE_INFO + self.to_bytes()).digest()

    @classmethod
    def from_bytes(cls, data: bytes) -> GroupUpdate:
        """Parse an untrusted update (the signature is checked by :func:`apply_update`).

        Raises:
            GroupError: ``malformed``.
        """
        try:
            f = Fields(canonical_decode(data, _LIMITS), "group update", _UPDATE)
            op = f.get_str("op", max_len=16)
            if f.get_int("v") != 1 or op not in _OPS:
                raise DecodeError("version or op")
            return cls(
                f.get_bytes("g", size=32), f.get_int("ver", lo=2, hi=_MAX_VERSION),
                f.get_bytes("prev", size=32), f.get_bytes("by", size=32), op, f.raw("arg"),
                f.get_bytes("sig", size=64),
            )  # fmt: skip
        except (DecodeError, ValueError):
            raise _malformed("update") from None


def update_wins(new: GroupUpdate, applied: GroupUpdate) -> bool:
    """Whether ``new`` replaces ``applied``, made concurrently on the same version."""
    return new.hash() < applied.hash()


def apply_update(state: GroupState, update: GroupUpdate) -> GroupState:
    """State ``N + 1``: ``update`` checked under ``state`` (version ``N``) and applied.

    Raises:
        GroupError: ``unknown_group``, ``stale`` (not on this version),
            ``not_member``, ``bad_signature``, ``not_allowed``, ``malformed``
            (an argument out of bounds), ``too_large``.
    """
    if update.group_id != state.group_id:
        raise GroupError("unknown_group", "an update of another group")
    if update.version != state.version + 1 or update.prev != state.hash():
        raise GroupError("stale", "an update on another version of the group")
    signer = state.members.get(update.by)
    if signer is None:
        raise GroupError("not_member", "an update signed by someone outside the group")
    try:
        signer.card.identity_key.verify(update.signature, update.signed_bytes())
    except BadSignatureError:
        raise GroupError("bad_signature", "an update not signed by its author") from None
    if signer.bot is not None and update.op not in _BOT_OPS:
        raise _refuse("a bot only adds and removes members, and only if it administers")
    members, settings, title = dict(state.members), dict(state.settings), state.title
    anchor = state.anchor
    try:
        _OPERATIONS[update.op](state, update, members, settings)
        if update.op == "anchor":
            anchor = _check_anchor(state, update)
    except (DecodeError, InvalidCardError, ValueError, TypeError, IndexError) as exc:
        if isinstance(exc, GroupError):
            raise
        raise _malformed("update argument") from None
    if update.op == "title":
        title = _check_title(update.arg)
    return GroupState(state.group_id, update.version, title, members, settings, anchor)


def _refuse(why: str) -> GroupError:
    return GroupError("not_allowed", why)


def _add(
    state: GroupState, u: GroupUpdate, members: dict[bytes, Member], _s: dict[str, int]
) -> None:
    if not isinstance(u.arg, list) or len(u.arg) != 2 or u.arg[1] not in (0, 1):
        raise ValueError("add")
    card = ContactCard.from_bytes(u.arg[0])
    if not state.may(u.by, "add") or (u.arg[1] == ADMIN and state.members[u.by].role != ADMIN):
        raise _refuse("the group's settings do not let this member add")
    if bytes(card.identity_id) in members:
        raise _refuse("already a member")
    if len(members) >= MAX_MEMBERS:
        raise GroupError("too_large", f"a group has at most {MAX_MEMBERS} members")
    members[bytes(card.identity_id)] = Member(u.arg[1], card, bytes(u.arg[0]))


def _adds(
    state: GroupState, u: GroupUpdate, members: dict[bytes, Member], s: dict[str, int]
) -> None:
    if not isinstance(u.arg, list) or not 0 < len(u.arg) <= MAX_BATCH:
        raise ValueError("adds")
    for item in u.arg:
        _add(state, replace(u, arg=item), members, s)


def _remove(
    state: GroupState, u: GroupUpdate, members: dict[bytes, Member], _s: dict[str, int]
) -> None:
    target = u.arg
    if not isinstance(target, bytes) or target not in members:
        raise ValueError("remove")
    leaving = target == u.by
    if not leaving and not state.may(u.by, "remove"):
        raise _refuse("the group's settings do not let this member remove others")
    if not leaving and members[target].role == ADMIN and state.members[u.by].role != ADMIN:
        raise _refuse("only an admin removes an admin")
    del members[target]
    _keep_an_admin(members)


def _title(state: GroupState, u: GroupUpdate, _m: dict[bytes, Member], _s: dict[str, int]) -> None:
    _check_title(u.arg)
    if not state.may(u.by, "edit"):
        raise _refuse("the group's settings do not let this member edit it")


def _role(
    state: GroupState, u: GroupUpdate, members: dict[bytes, Member], _s: dict[str, int]
) -> None:
    if not isinstance(u.arg, list) or len(u.arg) != 2 or u.arg[1] not in (0, 1):
        raise ValueError("role")
    target, role = u.arg
    if state.members[u.by].role != ADMIN:
        raise _refuse("only an admin changes roles")
    if not isinstance(target, bytes) or target not in members:
        raise ValueError("role target")
    if members[target].bot is not None:
        raise _refuse("a bot has no role: its grant says what it may do")
    members[target] = replace(members[target], role=role)
    _keep_an_admin(members)


def _settings(
    state: GroupState, u: GroupUpdate, _m: dict[bytes, Member], settings: dict[str, int]
) -> None:
    if state.members[u.by].role != ADMIN:
        raise _refuse("only an admin changes the settings")
    settings.update(_check_settings(u.arg))


def _anchor(state: GroupState, u: GroupUpdate, _m: dict[bytes, Member], _s: dict[str, int]) -> None:
    if state.members[u.by].role != ADMIN:
        raise _refuse("only an admin anchors the group's order")


def _check_anchor(state: GroupState, u: GroupUpdate) -> bytes | None:
    if not isinstance(u.arg, bytes) or len(u.arg) not in (0, 32):
        raise ValueError("anchor")
    if u.arg and (u.arg not in state.members or state.members[u.arg].role != ADMIN):
        raise _refuse("the owner of the group's chain channel must be an admin")
    return u.arg or None


def _bot(
    state: GroupState, u: GroupUpdate, members: dict[bytes, Member], _s: dict[str, int]
) -> None:
    if not isinstance(u.arg, list) or len(u.arg) != 2:
        raise ValueError("bot")
    card, grant = ContactCard.from_bytes(u.arg[0]), BotGrant.from_wire(u.arg[1])
    if state.members[u.by].role != ADMIN:
        raise _refuse("only an admin adds a bot")
    if bytes(card.identity_id) in members:
        raise _refuse("already a member")
    if len(members) >= MAX_MEMBERS:
        raise GroupError("too_large", f"a group has at most {MAX_MEMBERS} members")
    members[bytes(card.identity_id)] = Member(MEMBER, card, bytes(u.arg[0]), grant)


def _grant(
    state: GroupState, u: GroupUpdate, members: dict[bytes, Member], _s: dict[str, int]
) -> None:
    if not isinstance(u.arg, list) or len(u.arg) != 2 or not isinstance(u.arg[0], bytes):
        raise ValueError("grant")
    target, grant = members.get(u.arg[0]), BotGrant.from_wire(u.arg[1])
    if state.members[u.by].role != ADMIN:
        raise _refuse("only an admin changes a bot's grant")
    if target is None or target.bot is None:
        raise ValueError("grant target")
    members[u.arg[0]] = replace(target, bot=grant)


_BOT_OPS: Final = frozenset({"add", "adds", "remove"})
_OPERATIONS: Final = {
    "bot": _bot,
    "grant": _grant,
    "anchor": _anchor,
    "add": _add,
    "adds": _adds,
    "remove": _remove,
    "title": _title,
    "role": _role,
    "settings": _settings,
}


def _keep_an_admin(members: dict[bytes, Member]) -> None:
    if members and not any(m.role == ADMIN for m in members.values()):
        raise _refuse("the last admin must name another admin first")


def _check_title(title: object) -> str:
    if not isinstance(title, str) or not 0 < len(title) <= MAX_TITLE:
        raise ContentError(f"a group title is 1-{MAX_TITLE} characters")
    return title


def _check_settings(raw: object) -> dict[str, int]:
    if not isinstance(raw, dict) or not set(raw) <= set(SETTINGS):
        raise ValueError("settings")
    if not all(v in (ADMIN, MEMBER) and not isinstance(v, bool) for v in raw.values()):
        raise ValueError("setting value")
    return {**DEFAULT_SETTINGS, **raw}
