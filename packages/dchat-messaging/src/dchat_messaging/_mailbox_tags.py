"""Rotating mailbox tags: the secrets we hand our contacts, theirs, and what to watch.

Theory of operation
-------------------
With one mailbox id per device, a relay can link all the mail a person
receives. So the first time our identity writes to a contact it also hands
them a random 32-byte *tag secret* for our mailbox (the ``mb.tag`` control,
inside the end-to-end session, as with put tokens). From then on the contact
addresses our primary device's mail to the epoch's tag
(:func:`dchat_privacy.lowlevel.tag_seed`, made an Ed25519 key; the tag is
its :class:`~dchat_core.MailboxId`), a different mailbox every
:data:`~dchat_privacy.lowlevel.TAG_EPOCH` seconds and for every contact.
One secret per contact and device of ours: the secret travels once, to
every device of the contact; our primary device's covers its mailbox, and a
linked device hands out its own for its own mailbox (:meth:`learn_device`
on the contact's side), so no secret is synced between our devices.

:class:`MailboxTags` keeps both sides durably under the ``mailbox_tags``
state key (canonical CBOR ``{"v": 1, "issued": {identity id: secret},
"held": {mailbox in hex: [secret, epoch seconds]}, "done": epoch | null}``):

* *issued* (:meth:`issue`): each contact's secret; :meth:`watch` lists the
  tag keys to drain: every contact's tags of the live window (epochs
  ``e-1 .. e+1``, standing links) and of the catch-up epochs (``done`` up to
  ``e-2``, each drained once at each relay, :data:`CATCH_UP_LINKS` at a
  time per relay, oldest first). When every tag of the oldest catch-up epoch
  is drained at every relay (:meth:`drained`), ``done`` moves past it and is
  saved, so a node that was offline drains what it missed, and an epoch
  that leaves the live window is drained once more (late deposits).
  Every ``skew_sweep`` (4 h, at an epoch boundary; the first one after start) the
  mark goes back to the start of the *skew band* (16 h behind the live
  window, :meth:`~dchat_privacy.lowlevel.TagSchedule.sweep`), so those
  epochs are drained once more the same way: mail from a contact whose
  clock is hours behind arrives within one sweep period.
* *held* (:meth:`learn`, :meth:`address`): the secret a contact gave us for
  its mailbox (as its card names it) and the length of its epochs (the
  recipient chooses it: ``tag_epoch``); the engine seals mail to that
  mailbox for the tag of the current epoch instead.

*Untagged* (:meth:`untag`, :meth:`plain`): the outbox keys of what another
local identity (a burner) queued, under the ``mailbox_tags.plain`` state key
(canonical CBOR: the key in hex to the burner's identity id), until settled (:meth:`settled`): the
secrets we hold were given to our identity, and a burner's mail on such a
tag would tell the relay (and the recipient) whose burner it is, so it
always goes to the published mailbox.

First contact is unchanged: a sender holding no secret (a stranger, a
message request, the first prekey message) writes to the published mailbox,
which the recipient keeps draining. Reads are from memory (the trio thread
asks); writes happen in store transactions and are undone with them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from dchat_core import (
    DecodeError,
    DecodeLimits,
    Fields,
    MailboxId,
    canonical_decode,
    canonical_encode,
)
from dchat_crypto import SigningKey
from dchat_privacy.lowlevel import (
    MAX_TAG_EPOCH,
    TAG_SECRET_SIZE,
    TagSchedule,
    tag_seed,
    tag_token,
)

from ._controls import load_state
from ._errors import EngineStateError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from dchat_core import IdentityId

    from ._store import StateStore

__all__ = ("CATCH_UP_LINKS", "MAILBOX_TAG_KIND", "MailboxTags", "TagKey")

MAILBOX_TAG_KIND: Final = "mb.tag"
"""The control message that hands a contact its tag secret for our mailbox."""
CATCH_UP_LINKS: Final = 8
"""Catch-up tags drained at once per relay (each is a link, opened and closed)."""
MAX_ISSUED: Final = 1024
"""The most contacts holding a tag secret of ours."""
_KEY: Final = "mailbox_tags"
_PLAIN_KEY: Final = "mailbox_tags.plain"
_PLAIN_LIMITS: Final = DecodeLimits(max_size=2**22, max_depth=1, max_items=2**17)
_LIMITS: Final = DecodeLimits(max_size=256, max_depth=1, max_items=8)
_KEYS_KEPT: Final = 8192


def encode_tag_secret(mailbox: bytes, secret: bytes, epoch: int) -> bytes:
    """An ``mb.tag`` payload: ``{"v": 1, "mb": mailbox, "ep": epoch seconds, "sec": secret}``."""
    return canonical_encode({"v": 1, "mb": mailbox, "ep": epoch, "sec": secret})


def decode_tag_secret(data: bytes) -> tuple[bytes, bytes, int] | None:
    """``(mailbox, secret, epoch seconds)`` from an ``mb.tag`` payload, or None if malformed."""
    try:
        value = canonical_decode(data, _LIMITS)
        fields = Fields(value, "tag secret", frozenset({"v", "mb", "ep", "sec"}))
        fields.get_int("v", lo=1, hi=1)
        epoch = fields.get_int("ep", lo=1, hi=MAX_TAG_EPOCH)
        mailbox = fields.get_bytes("mb", size=32)
        return mailbox, fields.get_bytes("sec", size=TAG_SECRET_SIZE), epoch
    except (DecodeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class TagKey:
    """One contact's tag of one epoch: the key that drains it, its mailbox id, its put token."""

    key: SigningKey
    mailbox: bytes
    epoch: int
    token: bytes


class MailboxTags:
    """Tag secrets issued and held, and the tags to watch (see the module docstring).

    Args:
        store: Durable state (the node's message store).
        schedule: Epoch length and catch-up bound.
    """

    def __init__(
        self, store: StateStore, schedule: TagSchedule | None = None, *, key: str = _KEY
    ) -> None:
        self._store = store
        self._key = key  # a burner's tags: "mailbox_tags.<identity id>"
        self.schedule = schedule or TagSchedule()
        self._issued: dict[str, bytes] = {}
        self._held: dict[bytes, tuple[bytes, int]] = {}  # mailbox: (secret, epoch seconds)
        self._done: int | None = None
        self._keys: dict[tuple[bytes, int], TagKey] = {}
        self._tokens: dict[bytes, bytes] = {}  # tag mailbox: its put token
        self._swept: set[tuple[bytes, str]] = set()
        self._relays: tuple[str, ...] = ()
        self._watching: frozenset[tuple[bytes, bool]] = frozenset()  # (secret, muted) last watched
        self._muted: set[str] = set()  # removed contacts: tags drained, their tokens not registered
        self._sweep_at: float | None = None  # when the next skew sweep is due
        self.burners: dict[str, MailboxTags] = {}
        """Each local burner's own tags, by identity id (the main identity's object holds them)."""
        self._plain: dict[bytes, str] = {}  # outbox keys of a burner's mail: the burner
        self.known: dict[bytes, int] = {}
        """Tag mailboxes handed out to watch, with their epoch (the engine accepts them)."""
        self.changed: Callable[[], None] = lambda: None
        """Called when the tags to watch change (the shell re-reads them)."""
        self.worker: Callable[[Callable[[], None]], Awaitable[None]] | None = None
        """Runs a store write in the database worker (set by the shell)."""

    def set_epoch(self, seconds: int) -> None:
        """Use epochs of ``seconds`` for our tags (new secrets carry it; issued ones keep theirs).

        Raises:
            TagInputError: out of 1 s .. a week.
        """
        self.schedule = TagSchedule(seconds, self.schedule.max_catch_up)

    def load(self) -> None:
        """Read the stored secrets.

        Raises:
            EngineStateError: the stored value is damaged.
        """
        plain = self._store.get_state(_PLAIN_KEY) if self._key == _KEY else None
        if plain is not None:
            try:
                keys = canonical_decode(plain, _PLAIN_LIMITS)
            except DecodeError:
                raise EngineStateError("stored mailbox tags are damaged") from None
            try:
                self._plain = {bytes.fromhex(k): str(v) for k, v in dict(keys).items()}
            except (ValueError, TypeError, AttributeError):
                raise EngineStateError("stored mailbox tags are damaged") from None
        muted = self._store.get_state(self._key + ".muted")
        if muted is not None:
            try:
                peers = canonical_decode(muted, _PLAIN_LIMITS)
                self._muted = {str(p, "ascii") for p in peers}
            except (DecodeError, ValueError, TypeError):
                raise EngineStateError("stored mailbox tags are damaged") from None
        raw = load_state(self._store, self._key)
        if raw is None:
            return
        try:
            fields = Fields(raw, "mailbox tags", frozenset({"v", "issued", "held", "done"}))
            fields.get_int("v", lo=1, hi=1)
            issued, held, done = fields.raw("issued"), fields.raw("held"), fields.raw("done")
            if not (isinstance(issued, dict) and isinstance(held, dict)):
                raise DecodeError("mailbox tags: secrets must be maps")
            held_map = {bytes.fromhex(mb): (sec, ep) for mb, (sec, ep) in held.items()}
        except (DecodeError, ValueError, TypeError):
            raise EngineStateError("stored mailbox tags are damaged") from None
        secrets = [*issued.values(), *(sec for sec, _ in held_map.values())]
        sizes = all(isinstance(s, bytes) and len(s) == TAG_SECRET_SIZE for s in secrets)
        epochs = all(type(ep) is int and 1 <= ep <= MAX_TAG_EPOCH for _, ep in held_map.values())
        if not (sizes and epochs) or not (done is None or (type(done) is int and done >= 0)):
            raise EngineStateError("stored mailbox tags are damaged")
        self._issued, self._held, self._done = dict(issued), held_map, done

    # -- secrets -------------------------------------------------------------------------

    def issued_to(self, peer: IdentityId) -> bytes | None:
        """The secret we gave ``peer``, if any."""
        return self._issued.get(str(peer))

    def issue(self, peer: IdentityId, *, now: float) -> bytes | None:
        """A new secret for ``peer`` (stored), or None if it has one or the cap is reached."""
        if str(peer) in self._issued or len(self._issued) >= MAX_ISSUED:
            return None
        secret = os.urandom(TAG_SECRET_SIZE)
        done = self.schedule.live(now).start if self._done is None else self._done
        self._change(lambda: self._issued.__setitem__(str(peer), secret), done)
        return secret

    def revoke(self, peer: IdentityId) -> bool:
        """Forget ``peer``'s secret: its tags are no longer watched (a blocked contact's).

        :meth:`notify` then tells the shell, which stops the tags' links, so
        their tokens are registered no more; a tag in the live window may keep
        its token at a relay until that relay restarts, and the contact's
        later tags are never registered. True if ``peer`` held one.
        """
        if str(peer) not in self._issued:
            return False
        self.mute(peer, False)
        self._change(lambda: self._issued.pop(str(peer)), self._done)
        return True

    def mute(self, peer: IdentityId, muted: bool = True) -> bool:
        """Keep draining ``peer``'s tags but register no token for them (a removed contact).

        Its mail still arrives (as a message request), but the relay takes its
        deposits as a stranger's: the tags' links register an empty token set
        (new links: :meth:`watch` gives muted tags no token). ``muted`` False
        undoes it (written to again). True if the state changed.
        """
        name = str(peer)
        if (name in self._muted) == muted or (muted and name not in self._issued):
            return False
        before = set(self._muted)
        self._muted = before | {name} if muted else before - {name}
        self._store.on_rollback(lambda: setattr(self, "_muted", before))
        peers = sorted(p.encode("ascii") for p in self._muted)
        self._store.put_state(self._key + ".muted", canonical_encode(peers))
        return True

    def learn(self, data: bytes, sender_mailbox: MailboxId | None) -> bool:
        """Keep the secret of an ``mb.tag`` payload if it is for ``sender_mailbox``."""
        decoded = decode_tag_secret(data)
        if decoded is None or sender_mailbox is None or decoded[0] != bytes(sender_mailbox):
            return False
        mailbox, secret, epoch = decoded
        if self._held.get(mailbox) != (secret, epoch):
            self._change(lambda: self._held.__setitem__(mailbox, (secret, epoch)), self._done)
        return True

    def learn_device(self, data: bytes, sender_device: bytes) -> bool:
        """Keep the secret of an ``mb.tag`` payload for the sending linked device's own mailbox.

        A linked device hands out secrets for its own mailbox: ``mb`` must be
        the mailbox of the (authenticated) device key that sent it.
        """
        return self.learn(data, MailboxId.derive(sender_device))

    def _change(self, apply: Callable[[], object], done: int | None) -> None:
        before = (dict(self._issued), dict(self._held), self._done)

        def undo() -> None:
            self._issued, self._held, self._done = before

        apply()
        self._done = done
        self._store.on_rollback(undo)
        self._save()

    def _save(self) -> None:
        held = {mailbox.hex(): list(pair) for mailbox, pair in self._held.items()}
        value = {"v": 1, "issued": self._issued, "held": held, "done": self._done}
        self._store.put_state(self._key, canonical_encode(value))

    def _save_done(self) -> None:
        with self._store.transaction():
            self._save()

    def untag(self, identity: IdentityId, keys: Sequence[bytes]) -> None:
        """Outbox ``keys`` queued by another local ``identity``: never route them to our tags.

        Called in the store transaction that queues them (undone with it).
        """
        before = dict(self._plain)
        self._plain.update(dict.fromkeys(keys, str(identity)))
        self._store.on_rollback(lambda: setattr(self, "_plain", before))
        self._store.put_state(
            _PLAIN_KEY, canonical_encode({k.hex(): v for k, v in self._plain.items()})
        )

    def plain(self, outbox_key: bytes) -> str | None:
        """The burner (identity id) that queued the outbox entry ``outbox_key``, if one did."""
        return self._plain.get(outbox_key)

    def settled(self, keys: Sequence[bytes]) -> None:
        """These outbox entries are gone (stored at a relay): forget them."""
        gone = self._plain.keys() & set(keys)
        if gone:
            with self._store.transaction():
                before = dict(self._plain)
                for key in gone:
                    del self._plain[key]
                self._store.on_rollback(lambda: setattr(self, "_plain", before))
                self._store.put_state(
                    _PLAIN_KEY, canonical_encode({k.hex(): v for k, v in self._plain.items()})
                )

    # -- tags ----------------------------------------------------------------------------

    def tag(self, secret: bytes, epoch: int) -> TagKey:
        """The tag of ``secret`` in ``epoch`` (derived once, then kept in memory)."""
        found = self._keys.get((secret, epoch))
        if found is None:
            if len(self._keys) >= _KEYS_KEPT:
                self._keys.clear()
                self._tokens.clear()
            key = SigningKey(tag_seed(secret, epoch))
            mailbox = bytes(MailboxId.derive(key.public_key.to_bytes()))
            token = tag_token(secret, epoch)
            found = self._keys[(secret, epoch)] = TagKey(key, mailbox, epoch, token)
            self._tokens[mailbox] = token
        return found

    def address(self, mailbox: bytes, now: float) -> bytes | None:
        """Where to send mail for ``mailbox`` now: its tag, if its owner gave us a secret."""
        held = self._held.get(mailbox)
        if held is None:
            return None
        secret, seconds = held
        return self.tag(secret, TagSchedule(seconds).epoch(now)).mailbox

    def token_for(self, mailbox: bytes) -> bytes | None:
        """The put token of a tag derived lately (routed to, or watched), else None.

        A contact attaches it when the relay asks for work (as a put token,
        protocol section 5); the owner registers it on the tag's link. One
        per tag, so it links nothing across epochs.
        """
        return self._tokens.get(mailbox)

    def watch(self, now: float, relays: Sequence[str]) -> list[tuple[TagKey, str, bool]]:
        """The tags to drain now at each relay: ``(tag, relay, catch-up?)``.

        Live tags stay watched (standing links); a catch-up tag is drained
        once at its relay (then :meth:`drained`), at most
        :data:`CATCH_UP_LINKS` per relay at a time.
        """
        self._relays = tuple(relays)
        secrets = sorted(self._issued.values())
        self._watching = self._watch_state()
        muted = {secret for secret, off in self._watching if off}
        live = self.schedule.live(now)
        band, due = self.schedule.sweep(now)
        if self._sweep_at is None:  # the first sweep one period after start
            self._sweep_at = due
        elif self._done is not None and now >= self._sweep_at:
            self._sweep_at = due
            self._done = min(self._done, band.start)  # drain the band once more (slow clocks)

        def key(secret: bytes, epoch: int) -> TagKey:  # muted: drained, no token registered
            tag = self.tag(secret, epoch)
            return replace(tag, token=b"") if secret in muted else tag

        out = [(key(s, e), r, False) for e in live for s in secrets for r in relays]
        if self._done is not None:
            wanted = dict.fromkeys(relays, CATCH_UP_LINKS)
            for e in self.schedule.catch_up(now, self._done):
                if not any(wanted.values()):
                    break
                for s in secrets:
                    tag = key(s, e)
                    for r, left in wanted.items():
                        if left and (tag.mailbox, r) not in self._swept:
                            out.append((tag, r, True))
                            wanted[r] = left - 1
        oldest = self.schedule.catch_up(now, 0).start
        for tag, _, _ in out:
            self.known[tag.mailbox] = tag.epoch
        for mailbox in [mb for mb, e in self.known.items() if e < oldest]:
            del self.known[mailbox]  # in place: the engine holds this dict
        return out

    async def drained(self, mailbox: bytes, relay: str, now: float, _session: object) -> None:
        """A catch-up tag's link found it empty at ``relay``: done there.

        Once every tag of the oldest catch-up epoch is drained at every relay,
        the durable mark moves past it (saved through :attr:`worker`).
        """
        self._swept.add((mailbox, relay))
        done, before = self._done, self._done
        secrets = sorted(self._issued.values())
        while done is not None and done in self.schedule.catch_up(now, done):
            tags = [self.tag(s, done).mailbox for s in secrets]
            if not all((t, r) in self._swept for t in tags for r in self._relays):
                break
            self._swept -= {(t, r) for t in tags for r in self._relays}
            done += 1
        if done != before:
            self._done = done
            if self.worker is not None:
                await self.worker(self._save_done)
        self.changed()

    def notify(self) -> None:
        """Call :attr:`changed` if secrets were issued, revoked or muted since :meth:`watch`.

        Issuing happens in a store transaction (a worker thread); the shell
        calls this from its own thread after sends, so the new contact's tags
        are watched before its first reply can arrive.
        """
        if self._watch_state() != self._watching:
            self.changed()
        for other in self.burners.values():
            other.notify()

    def _watch_state(self) -> frozenset[tuple[bytes, bool]]:
        return frozenset((secret, peer in self._muted) for peer, secret in self._issued.items())

    def next_change(self, now: float) -> float:
        """Seconds until the live window moves (the links to keep change)."""
        return max(0.0, self.schedule.next_change(now) - now)
