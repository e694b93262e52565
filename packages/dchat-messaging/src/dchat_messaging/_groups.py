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

Operations (``op``, ``arg``): ``add`` ``[card, role]``; ``remove`` identity
id (a member may always remove itself: leaving); ``title`` text; ``role``
``[identity id, role]``; ``settings`` ``{"add", "remove", "post", "edit"}``;
``anchor`` an admin's identity id (the owner of the group's chat-chain
channel: its order is anchored there, :mod:`._group_order`) or empty bytes
(not anchored).
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

if TYPE_CHECKING:
    from dchat_crypto import SigningKey

__all__ = (
    "ADMIN",
    "MAX_MEMBERS",
    "MEMBER",
    "GroupState",
    "GroupUpdate",
    "Member",
    "apply_update",
    "update_wins",
)

ADMIN: Final = 1
MEMBER: Final = 0
MAX_MEMBERS: Final = 100
"""Members of one group: the whole state must fit one invitation (see docs/rationale.md)."""
MAX_TITLE: Final = 128
SETTINGS: Final = ("add", "remove", "post", "edit")
DEFAULT_SETTINGS: Final = {"add": ADMIN, "remove": ADMIN, "post": MEMBER, "edit": ADMIN}
_STATE_INFO: Final = b"dchat-group-state-v1"
_UPDATE_INFO: Final = b"dchat-group-update-v1"
_STATE: Final = frozenset({"v", "g", "ver", "t", "m", "s", "a"})
_UPDATE: Final = frozenset({"v", "g", "ver", "prev", "by", "op", "arg", "sig"})
_OPS: Final = frozenset({"add", "remove", "title", "role", "settings", "anchor"})
_LIMITS: Final = DecodeLimits(max_size=256_000, max_depth=4, max_items=16 * MAX_MEMBERS)
_MAX_VERSION: Final = 2**53


def _malformed(what: str) -> GroupError:
    return GroupError("malformed", f"a group {what} is malformed")


@dataclass(frozen=True, slots=True)
class Member:
    """One member: role and contact card (how to reach it, its identity key)."""

    role: int
    card: ContactCard


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
    _encoded: list[bytes] = field(default_factory=list, init=False, repr=False, compare=False)
    """:meth:`to_bytes`, once computed (a state never changes: updates make new ones)."""

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
        """Whether member ``who`` may ``action`` (``add``, ``remove``, ``post``, ``edit``)."""
        member = self.members.get(who)
        if member is None:
            return False
        return member.role == ADMIN or self.settings.get(action, ADMIN) == MEMBER

    def to_bytes(self) -> bytes:
        if not self._encoded:
            value: dict[str, object] = {
                "v": 1, "g": self.group_id, "ver": self.version, "t": self.title,
                "m": [[i, m.role, m.card.to_bytes()] for i, m in sorted(self.members.items())],
                "s": dict(self.settings),
            }  # fmt: skip
            if self.anchor is not None:
                value["a"] = self.anchor
            self._encoded.append(canonical_encode(value))
        return self._encoded[0]

    def hash(self) -> bytes:
        """What update ``version + 1`` signs over."""
        return hashlib.sha256(_STATE_INFO + self.to_bytes()).digest()

    @classmethod
    def from_bytes(cls, data: bytes) -> GroupState:
        """Parse a state (from an invitation, or our store).

        Raises:
            GroupError: ``malformed`` (a card that is not its member's counts as malformed).
        """
        try:
            f = Fields(canonical_decode(data, _LIMITS), "group state", _STATE)
            if f.get_int("v") != 1:
                raise DecodeError("version")
            members: dict[bytes, Member] = {}
            for item in f.get_list("m", max_len=MAX_MEMBERS):
                if not isinstance(item, list) or len(item) != 3 or item[1] not in (0, 1):
                    raise DecodeError("member")
                card = ContactCard.from_bytes(item[2])
                if bytes(card.identity_id) != item[0] or item[0] in members:
                    raise DecodeError("member card")
                members[item[0]] = Member(item[1], card)
            return cls(
                f.get_bytes("g", size=32), f.get_int("ver", lo=1, hi=_MAX_VERSION),
                _check_title(f.get_str("t", max_len=MAX_TITLE)), members,
                _check_settings(f.raw("s")), f.get_bytes("a", size=32) if f.has("a") else None,
            )  # fmt: skip
        except (DecodeError, InvalidCardError, ValueError, TypeError):
            raise _malformed("state") from None


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
    members[bytes(card.identity_id)] = Member(u.arg[1], card)


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


_OPERATIONS: Final = {
    "anchor": _anchor,
    "add": _add,
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
