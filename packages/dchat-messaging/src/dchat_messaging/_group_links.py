"""Invite links: join a group from a link, the inviter's node adding with a signed update.

Theory of operation
-------------------
A member whom the group's settings let add (``add``) makes a link on its
identity's own node: ``dchat-group:`` and the unpadded base64url of
``canonical({"v": 1, "g": group id(32), "k": secret(32), "x": expiry (unix s),
"t": title, "c": the inviter's contact card})`` (:class:`GroupLink`). The
secret is fresh and random; the card lets a stranger reach the inviter.

The holder's node (:meth:`GroupLinks.join`) sends the inviter a
``group.join`` control over a pairwise session, ``{"v": 1, "g", "k", "c": the
joiner's card}``, and remembers that it asked. The inviter's node
(:meth:`GroupLinks.receive_request`) finds the link among the group's
(every secret compared in constant time), checks it is not revoked,
expired or used up, and that the requester did not join by it before (a
replayed request, or a member removed since, adds nobody), then adds the
requester with an ordinary signed ``add`` update and invitation: every
member's node checks the inviter's permission as for any ``add``. The
joiner's node, which asked, takes the invitation as accepted.

A request with a secret the inviter does not know is refused silently (a
:class:`~dchat_messaging.GroupError` ``bad_link``, counted): a stranger
without the secret learns nothing and cannot make the inviter send. One with
a known secret that is revoked, expired or used up is answered with a
``group.jno`` control ``{"v": 1, "g", "why"}``, which the joiner's node shows
as a ``group_join_refused`` event.

Stored (sealed state): ``group.links.<id hex>`` the group's links, ``[{"id":
link id, "k": secret, "x": expiry, "u": uses allowed (0: any), "n": uses,
"r": revoked (0/1), "at": made (ms), "j": [identities that joined by
it]}]``; ``group.joining`` our requests, ``[[group id, inviter id, expiry]]``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode, canonical_encode
from dchat_identity import ContactCard, InvalidCardError

from ._errors import GroupError, RequestError
from ._groups import MAX_TITLE

if TYPE_CHECKING:
    from ._conversations import ConversationUpdate
    from ._devices import DeviceAddress
    from ._group_book import Groups

__all__ = (
    "JOIN_KIND",
    "LINK_PREFIX",
    "MAX_LINKS",
    "MAX_LINK_TTL",
    "REFUSED_KIND",
    "GroupLink",
    "GroupLinks",
)

LINK_PREFIX: Final = "dchat-group:"
JOIN_KIND: Final = "group.join"
REFUSED_KIND: Final = "group.jno"
MAX_LINKS: Final = 32
"""Links kept per group (revoked and expired ones are dropped first)."""
MAX_LINK_TTL: Final = 30 * 86400
"""The longest a link lives (seconds)."""
MAX_JOINING: Final = 32
_MAX_TEXT: Final = 4096
_MAX_CARD: Final = 2048
_LIMITS: Final = DecodeLimits(max_size=_MAX_TEXT, max_depth=2, max_items=16)
_STORED: Final = DecodeLimits(max_size=4 << 20, max_depth=4, max_items=1 << 16)
_LINK: Final = frozenset({"v", "g", "k", "x", "t", "c"})
_REQUEST: Final = frozenset({"v", "g", "k", "c"})
_REFUSAL: Final = frozenset({"v", "g", "why"})
_WHY: Final = frozenset({"link_expired", "link_used", "link_revoked", "not_allowed"})
_JOINING: Final = "group.joining"


def _bad(why: str = "an invite link is malformed") -> RequestError:
    return RequestError("bad_link", why)


def link_id(secret: bytes) -> str:
    """A link's public name (list, revoke): 8 bytes of a hash of its secret, hex."""
    return hashlib.sha256(b"dchat-group-link-id" + secret).digest()[:8].hex()


@dataclass(frozen=True, slots=True)
class GroupLink:
    """An invite link (see the module docstring)."""

    group_id: bytes
    secret: bytes
    expires_at: int
    title: str
    inviter: ContactCard

    def to_text(self) -> str:
        body = canonical_encode({
            "v": 1, "g": self.group_id, "k": self.secret, "x": self.expires_at, "t": self.title,
            "c": self.inviter.to_bytes(),
        })  # fmt: skip
        return LINK_PREFIX + base64.urlsafe_b64encode(body).decode("ascii").rstrip("=")

    @classmethod
    def from_text(cls, text: object) -> GroupLink:
        """Parse an untrusted link.

        Raises:
            RequestError: ``bad_link`` (not a link, or malformed in any way).
        """
        if not isinstance(text, str) or len(text) > _MAX_TEXT:
            raise _bad()
        text = text.strip()
        if not text.startswith(LINK_PREFIX):
            raise _bad("not a dchat group link (dchat-group:...)")
        body = text[len(LINK_PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            if base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=") != body:
                raise DecodeError("not canonical base64")
            f = Fields(canonical_decode(raw, _LIMITS), "group link", _LINK)
            if f.get_int("v") != 1:
                raise DecodeError("version")
            title = f.get_str("t", max_len=MAX_TITLE)
            return cls(
                f.get_bytes("g", size=32), f.get_bytes("k", size=32),
                f.get_int("x", lo=0, hi=2**53), title,
                ContactCard.from_bytes(f.get_bytes("c", max_size=_MAX_CARD)),
            )  # fmt: skip
        except (DecodeError, InvalidCardError, ValueError, TypeError, binascii.Error):
            raise _bad() from None


@dataclass(slots=True)
class _Entry:
    """One of our links as stored (see the module docstring)."""

    id: str
    secret: bytes
    expires_at: int
    uses: int
    used: int = 0
    revoked: bool = False
    created_ms: int = 0
    joined: list[bytes] = field(default_factory=list)

    def to_map(self) -> dict[str, object]:
        return {
            "id": self.id, "k": self.secret, "x": self.expires_at, "u": self.uses,
            "n": self.used, "r": int(self.revoked), "at": self.created_ms, "j": self.joined,
        }  # fmt: skip

    @classmethod
    def from_map(cls, raw: object) -> _Entry:
        f = Fields(raw, "group link", frozenset({"id", "k", "x", "u", "n", "r", "at", "j"}))
        return cls(
            f.get_str("id", max_len=16), f.get_bytes("k", size=32), f.get_int("x"),
            f.get_int("u"), f.get_int("n"), bool(f.get_int("r")), f.get_int("at"),
            [bytes(i) for i in f.get_list("j")],
        )  # fmt: skip

    def state(self, now: float) -> str:
        if self.revoked:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "used" if self.uses and self.used >= self.uses else "live"

    def view(self, now: float) -> dict[str, object]:
        return {
            "id": self.id, "expires_at": self.expires_at, "uses": self.uses, "used": self.used,
            "state": self.state(now), "created_ms": self.created_ms,
        }  # fmt: skip

    def refusal(self, sender: bytes, now: float) -> str | None:
        """Why ``sender`` may not join by it (None: it may)."""
        state = self.state(now)
        if state != "live":
            return f"link_{state}"
        if sender in self.joined:
            return "link_used"  # a second join by one identity: a replay, or removed since
        return None


def _request(data: bytes) -> tuple[bytes, bytes, ContactCard]:
    try:
        f = Fields(canonical_decode(data, _LIMITS), "join request", _REQUEST)
        if f.get_int("v") != 1:
            raise DecodeError("version")
        card = ContactCard.from_bytes(f.get_bytes("c", max_size=_MAX_CARD))
        return f.get_bytes("g", size=32), f.get_bytes("k", size=32), card
    except (DecodeError, InvalidCardError, ValueError, TypeError):
        raise GroupError("malformed", "a join request is malformed") from None


class GroupLinks:
    """The links of our groups, and our requests to join by link (``Groups.links``)."""

    def __init__(self, groups: Groups) -> None:
        self._groups = groups
        self._store = groups.store

    # -- stored state -------------------------------------------------------------------

    def _links(self, gid: bytes) -> list[_Entry]:
        data = self._store.get_state(f"group.links.{gid.hex()}")
        try:
            value = canonical_decode(data, _STORED) if data else []
            return [_Entry.from_map(v) for v in value] if isinstance(value, list) else []
        except (DecodeError, ValueError, TypeError):
            raise RequestError("corrupt_state", "stored group links are malformed") from None

    def _save(self, gid: bytes, links: list[_Entry]) -> None:
        value = canonical_encode([e.to_map() for e in links])
        self._store.put_state(f"group.links.{gid.hex()}", value)

    def _joining(self) -> list[tuple[bytes, bytes, int]]:
        data = self._store.get_state(_JOINING)
        value = canonical_decode(data, _STORED) if data else []
        return [(bytes(g), bytes(i), int(x)) for g, i, x in value]

    def _save_joining(self, rows: list[tuple[bytes, bytes, int]]) -> None:
        self._store.put_state(_JOINING, canonical_encode([list(r) for r in rows]))

    # -- the inviter ----------------------------------------------------------------------

    def create(self, ref: str, *, uses: int = 0, ttl: int = 86400, now: float) -> dict[str, object]:
        """A new link to group ``ref`` (``uses``: how many may join by it, 0 any; ``ttl``:
        seconds it lives, at most :data:`MAX_LINK_TTL`).

        Raises:
            RequestError: ``unknown_group``, ``not_allowed`` (we may not add),
                ``no_identity`` (a linked device: the identity's own node adds),
                ``invalid_request`` (uses or ttl out of bounds).
        """
        if not 0 <= uses <= 10_000 or not 60 <= ttl <= MAX_LINK_TTL:
            raise RequestError("invalid_request", f"uses 0-10000, expiry 60 s-{MAX_LINK_TTL} s")
        me, _, card = self._groups.signer()
        with self._store.transaction():
            record = self._groups.find(ref)
            if record.status != "active" or not record.state.may(me, "add"):
                raise RequestError("not_allowed", "the group's settings do not let us add")
            link = GroupLink(record.state.group_id, os.urandom(32), int(now) + ttl,
                             record.state.title, card)  # fmt: skip
            entry = _Entry(link_id(link.secret), link.secret, link.expires_at, uses,
                           created_ms=int(now * 1000))  # fmt: skip
            gid = link.group_id
            self._save(gid, _trim([*self._links(gid), entry], now))
        return {**entry.view(now), "link": link.to_text(), "group": gid.hex()}

    def listing(self, ref: str, *, now: float) -> list[dict[str, object]]:
        """The group's links (never their secrets): id, expiry, uses, state."""
        gid = self._groups.find(ref).state.group_id
        return [e.view(now) for e in self._links(gid)]

    def revoke(self, ref: str, which: str, *, now: float) -> dict[str, object]:
        """Revoke link ``which`` (its id, or the link itself).

        Raises:
            RequestError: ``unknown_group``, ``not_found``, ``bad_link``.
        """
        wanted = link_id(GroupLink.from_text(which).secret) if ":" in which else which.lower()
        with self._store.transaction():
            gid = self._groups.find(ref).state.group_id
            links = self._links(gid)
            for entry in links:
                if entry.id == wanted:
                    entry.revoked = True
                    self._save(gid, links)
                    self._groups.event("group_link", gid, self._groups.identity(), now,
                                       op="revoke", link=wanted)  # fmt: skip
                    return entry.view(now)
        raise RequestError("not_found", "no such link in that group")

    def receive_request(self, sender: bytes, data: bytes, now: float) -> list[ConversationUpdate]:
        """A join request: add its sender if its secret names a live link of ours.

        Raises:
            GroupError: ``malformed``, ``bad_link`` (no link of ours has that secret).
        """
        gid, secret, card = _request(data)
        if bytes(card.identity_id) != sender:
            raise GroupError("malformed", "a join request for someone else")
        if self._groups.signer_id() is None:
            return []  # a linked device: the identity's own node answers
        record = self._groups.db.record(gid)
        links = self._links(gid) if record is not None else []
        found = None
        for entry in links:  # every one compared, in constant time
            if hmac.compare_digest(entry.secret, secret):
                found = entry
        if record is None or found is None:
            raise GroupError("bad_link", "a join request with a secret we did not issue")
        if sender in record.state.members:
            return []  # a member already (a retry, or a replay): nobody is added twice
        why = found.refusal(sender, now)
        if why is None:
            try:
                waiting = self._groups.add_by_link(record.state.group_id, card, now=now)
            except RequestError:
                why = "not_allowed"  # our role or the group's settings changed
        if why is not None:
            refusal = canonical_encode({"v": 1, "g": gid, "why": why})
            self._groups.waiting += self._groups.send(REFUSED_KIND, refusal, [card], now=now)
            return [self._groups.event("group_link", gid, sender, now, op="refused", why=why)]
        found.used += 1
        found.joined.append(sender)
        self._save(gid, links)
        self._groups.waiting += waiting
        return [self._groups.event("group_link", gid, sender, now, op="joined", link=found.id)]

    # -- the joiner ----------------------------------------------------------------------

    def join(self, text: str, *, now: float) -> tuple[str, list[DeviceAddress]]:
        """Ask the inviter of link ``text`` to add us; returns the group id (hex).

        Invited to that group already, we join it (as ``dchat group join``).

        Raises:
            RequestError: ``bad_link``, ``link_expired``, ``not_allowed`` (in it already).
        """
        link = GroupLink.from_text(text)
        if link.expires_at <= now:
            raise RequestError("link_expired", "that invite link has expired")
        me, _, card = self._groups.signer()
        if bytes(link.inviter.identity_id) == me:
            raise RequestError("not_allowed", "that is our own link")
        with self._store.transaction():
            known = self._groups.db.record(link.group_id)
            if known is not None and known.status != "left" and me in known.state.members:
                if known.status == "invited":  # added already: the link accepts it
                    return self._groups.join(link.group_id.hex(), now=now)
                raise RequestError("not_allowed", "already a member of that group")
            data = canonical_encode({"v": 1, "g": link.group_id, "k": link.secret,
                                     "c": card.to_bytes()})  # fmt: skip
            waiting = self._groups.send(JOIN_KIND, data, [link.inviter], now=now)
            rows = [r for r in self._joining() if r[0] != link.group_id and r[2] > now]
            rows.append((link.group_id, bytes(link.inviter.identity_id), link.expires_at))
            self._save_joining(rows[-MAX_JOINING:])
            self._groups.event("group_link", link.group_id, me, now, op="requested",
                               title=link.title)  # fmt: skip
        return link.group_id.hex(), waiting

    def asked(self, gid: bytes, inviter: bytes, now: float) -> bool:
        """Whether we asked ``inviter`` to join ``gid`` (the request is then settled)."""
        rows = self._joining()
        mine = [r for r in rows if r[0] == gid and r[1] == inviter]
        if not mine:
            return False
        self._save_joining([r for r in rows if r not in mine and r[2] > now])
        return True

    def receive_refusal(self, sender: bytes, data: bytes, now: float) -> list[ConversationUpdate]:
        """The inviter refused our request: a ``group_join_refused`` event.

        Raises:
            GroupError: ``malformed``; ``not_allowed`` (we did not ask that sender).
        """
        try:
            f = Fields(canonical_decode(data, _LIMITS), "join refusal", _REFUSAL)
            gid, why = f.get_bytes("g", size=32), f.get_str("why", max_len=32)
            if f.get_int("v") != 1 or why not in _WHY:
                raise DecodeError("refusal")
        except (DecodeError, ValueError, TypeError):
            raise GroupError("malformed", "a join refusal is malformed") from None
        if not self.asked(gid, sender, now):
            raise GroupError("not_allowed", "a refusal of a request we did not make")
        return [self._groups.event("group_join_refused", gid, sender, now, why=why)]


def _trim(links: list[_Entry], now: float) -> list[_Entry]:
    """At most :data:`MAX_LINKS`: dead ones (revoked, expired, used) go first, then the oldest."""
    while len(links) > MAX_LINKS:
        dead = [e for e in links if e.state(now) != "live"]
        links.remove(dead[0] if dead else links[0])
    return links
