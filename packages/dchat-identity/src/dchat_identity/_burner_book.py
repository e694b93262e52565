"""A device's burners with their cards and the ids of those that expired.

Theory of operation
-------------------
:class:`~dchat_identity.BurnerStore` holds the burners' keys and the creation
rate limit. A user node also needs, for each live burner, the card it hands
out (name, relay, expiry), and, for a while after a burner expired, that it
*did* expire: using it then says ``burner_expired`` rather than
``not_found``. :class:`BurnerBook` keeps the three together and applies the
rules; the node's shell only loads and stores its three blobs
(:data:`BURNER_KEYS`, sealed at rest in the node's settings) and schedules
the expiry.

* Every operation first discards expired burners (their keys are gone from
  the next stored copy); the ids of the expired ones are remembered, the
  most recent :data:`MAX_EXPIRED` of them, with the time they were dropped.
* A deliberately discarded burner is forgotten outright (``not_found`` next).
* An expiring burner whose card published a stealth meta-address may hold
  funds nobody swept: its keys derive from its identity seed, so dropping the
  seed would lose them. With ``hold`` (the node's choice), :meth:`BurnerBook.expire`
  keeps that seed alone (no encryption or mailbox key, no card: the burner is
  gone for mail) in the *held* map until the caller, having found its
  accounts empty or swept, calls :meth:`BurnerBook.release`. Held burners
  answer ``burner_expired`` like the others; :attr:`BurnerBook.newly_held`
  lists the ones an operation put there, to tell the user.
* A burner's card publishes the burner's own stealth meta-address (the
  caller derives it from the burner's identity: ``stealth_of``); a card
  issued before that is re-issued with it by :meth:`BurnerBook.add_stealth`.
* :attr:`BurnerBook.changed` says whether the blobs must be written back;
  :meth:`BurnerBook.blobs` lists the held seeds, then the keys' store: a
  crash between writes never loses an expiring burner's seed, and never
  leaves a discarded burner's keys behind (discarding changes the store alone).

Nothing here reads a clock: ``now`` is passed in. Malformed stored maps raise
:class:`BurnerStateError` (``corrupt_state``); a malformed key store raises
:class:`MalformedRecordError` as :meth:`BurnerStore.from_bytes` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from dchat_core import IdentityId
from dchat_crypto import SigningKey

from ._burners import BurnerStore
from ._card import ContactCard
from ._errors import (
    BurnerStateError,
    DchatIdentityError,
    IdentityArgumentError,
    RateLimitedError,
    RecoveryStateError,
)
from ._stored_maps import decode_map, encode_map

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from dchat_core import NodeId

    from ._burners import Burner
    from ._identity import Identity
    from ._stored_maps import Entry, EntryMap

__all__ = ("BURNER_KEYS", "MAX_EXPIRED", "BurnerBook", "burner_row", "parse_burner_id")

HELD_KEY: Final = "burners.held"  # burner id -> [identity seed, expiry ms]; private

STORE_KEY: Final = "burners.store"
CARDS_KEY: Final = "burners.cards"  # burner id -> [card]
EXPIRED_KEY: Final = "burners.expired"  # burner id -> [expiry ms]; public ids only
BURNER_KEYS: Final = (HELD_KEY, STORE_KEY, CARDS_KEY, EXPIRED_KEY)
"""The settings keys a node keeps its burners under, in the order they are written."""
MAX_EXPIRED: Final = 256
"""How many expired burner ids are remembered (oldest forgotten first)."""


def _decode(blob: bytes | None, what: str) -> EntryMap:
    try:
        return decode_map(blob, what)
    except RecoveryStateError as exc:
        raise BurnerStateError("corrupt_state", str(exc)) from None


def _not_found() -> BurnerStateError:
    return BurnerStateError("not_found", "no such burner")


class BurnerBook:
    """A device's burners, their cards and the recently expired ids.

    Args:
        store: The burners' keys and the rate limit.
        cards: Burner id -> ``[card bytes]``.
        expired: Burner id -> ``[when it was dropped, ms]``.
        held: Burner id -> ``[identity seed, expiry ms]`` of expired burners
            whose stealth funds may not be swept yet.
    """

    def __init__(
        self,
        store: BurnerStore,
        cards: EntryMap,
        expired: EntryMap,
        held: EntryMap | None = None,
    ) -> None:
        self.store = store
        self._cards = cards
        self._expired = expired
        self._held = {} if held is None else held
        self.changed = False
        """Whether :meth:`blobs` differ from what was loaded."""
        self.newly_held: list[IdentityId] = []
        """The burners :meth:`expire` moved to the held map (tell the user)."""

    @classmethod
    def from_blobs(cls, blobs: Mapping[str, bytes | None], *, now: float) -> BurnerBook:
        """The book stored under :data:`BURNER_KEYS` (a fresh one where nothing is)."""
        raw_store = blobs.get(STORE_KEY)
        store = BurnerStore(now=now) if raw_store is None else BurnerStore.from_bytes(raw_store)
        return cls(
            store,
            _decode(blobs.get(CARDS_KEY), CARDS_KEY),
            _decode(blobs.get(EXPIRED_KEY), EXPIRED_KEY),
            _decode(blobs.get(HELD_KEY), HELD_KEY),
        )

    def blobs(self) -> dict[str, bytes]:
        """What to store under each key, the held seeds and the key store first."""
        return {
            HELD_KEY: encode_map(self._held),
            STORE_KEY: self.store.to_bytes(),
            CARDS_KEY: encode_map(self._cards),
            EXPIRED_KEY: encode_map(self._expired),
        }

    def ids(self) -> list[IdentityId]:
        """The burners that have a card (the live ones, after :meth:`expire`)."""
        return [IdentityId(raw) for raw in self._cards]

    def expire(self, *, now: float, hold: bool = False) -> list[IdentityId]:
        """Discard the burners expired at ``now``; returns their ids.

        ``hold``: keep the identity seed of each whose card published a stealth
        meta-address (see the module docstring) until :meth:`release`.
        """
        for burner in self.store.expired(now=now) if hold else ():
            if self._has_stealth(burner.identity_id):
                seed = burner.identity.signing_key.to_bytes()
                self._held[bytes(burner.identity_id)] = [seed, burner.expires_ms]
                self.newly_held.append(burner.identity_id)
        gone = self.store.discard_expired(now=now)
        if gone:
            self._forget(gone, now=now, expired=True)
        return gone

    def _forget(self, gone: list[IdentityId], *, now: float, expired: bool) -> None:
        for burner_id in gone:
            if self._cards.pop(bytes(burner_id), None) is not None and expired:
                self._expired[bytes(burner_id)] = [int(now * 1000)]
        while len(self._expired) > MAX_EXPIRED:
            self._expired.pop(next(iter(self._expired)))
        self.changed = True

    def create(
        self,
        *,
        now: float,
        ttl: float,
        name: str,
        relay: str | None = None,
        relay_node: NodeId | None = None,
        relays: Sequence[str] = (),
        stealth_of: Callable[[Identity], bytes] | None = None,
    ) -> tuple[Burner, ContactCard]:
        """A new burner valid for ``ttl`` seconds and its card (which carries the expiry,
        and ``stealth_of(burner identity)``, its meta-address, when given).

        Raises:
            BurnerStateError: ``rate_limited``; the rate limit's state changed
                all the same (:attr:`changed`), so store it.
        """
        self.changed = True  # the rate limit spent (or refilled) tokens
        try:
            burner = self.store.create(now=now, ttl=ttl)
        except RateLimitedError as exc:
            message = f"too many burners; retry in {exc.retry_after:.0f} s"
            raise BurnerStateError("rate_limited", message) from None
        try:
            stealth = None if stealth_of is None else stealth_of(burner.identity)
            card = burner.card(
                name=name, relay=relay, relay_node=relay_node, relays=relays, stealth=stealth
            )
        except DchatIdentityError:  # e.g. a name too long: no burner without a card
            self.store.discard(burner.identity_id)
            raise
        self._cards[bytes(burner.identity_id)] = [card.to_bytes()]
        return burner, card

    def add_stealth(self, stealth_of: Callable[[Identity], bytes]) -> int:
        """Re-issue every live burner's card that publishes no meta-address with
        ``stealth_of(its identity)``; returns how many were re-issued."""
        reissued = 0
        for burner_id in self.ids():
            card = self.card(burner_id)
            if card.stealth is None:
                identity = self.store.get(burner_id).identity
                new = card.with_stealth(identity, stealth_of(identity))
                self._cards[bytes(burner_id)] = [new.to_bytes()]
                reissued += 1
        self.changed = self.changed or reissued > 0
        return reissued

    def _has_stealth(self, burner_id: IdentityId) -> bool:
        return bytes(burner_id) in self._cards and self.card(burner_id).stealth is not None

    def held(self) -> dict[IdentityId, SigningKey]:
        """The expired burners whose seed is kept: id -> its identity key (stealth keys'
        seed).

        Raises:
            BurnerStateError: ``corrupt_state``, a held entry is malformed.
        """
        return {IdentityId(raw): self._seed(entry) for raw, entry in self._held.items()}

    @staticmethod
    def _seed(entry: Entry) -> SigningKey:
        try:
            seed = entry[0]
            if not isinstance(seed, bytes):
                raise TypeError("a seed is bytes")
            return SigningKey.from_bytes(seed)
        except (IndexError, TypeError, ValueError):
            raise BurnerStateError("corrupt_state", "a held burner seed is malformed") from None

    def held_rows(self) -> list[dict[str, Any]]:
        """The held burners as the node's status shows them (ids and expiry, no key)."""
        return [
            {"burner_id": str(IdentityId(raw)), "expired": entry[1] / 1000}
            for raw, entry in self._held.items()
            if len(entry) == 2 and isinstance(entry[1], int)
        ]

    def release(self, burner_id: IdentityId) -> bool:
        """Delete a held burner's seed for good (its funds were swept, or it had none);
        whether it was held."""
        if self._held.pop(bytes(burner_id), None) is None:
            return False
        self.changed = True
        return True

    def card(self, burner_id: IdentityId) -> ContactCard:
        """The card of a burner in the book."""
        entry = self._cards.get(bytes(burner_id))
        value = entry[0] if entry else None
        if not isinstance(value, bytes):
            raise BurnerStateError("corrupt_state", "a stored burner card is malformed")
        return ContactCard.from_bytes(value)

    def live(self, burner_id: str, *, now: float) -> tuple[Burner, ContactCard]:
        """The burner ``burner_id`` (text form) and its card, after expiring the old ones.

        Raises:
            BurnerStateError: ``not_found`` (unknown or discarded),
                ``burner_expired`` (it expired; its keys are gone).
        """
        target = parse_burner_id(burner_id)
        self.expire(now=now)
        if bytes(target) in self._expired:
            raise BurnerStateError("burner_expired", "this burner has expired and was discarded")
        try:
            burner = self.store.get(target)
        except IdentityArgumentError:
            raise _not_found() from None
        return burner, self.card(target)

    def discard(self, burner_id: str, *, now: float) -> IdentityId:
        """Delete a live burner's keys, or a held burner's seed, for good; returns its id."""
        target = parse_burner_id(burner_id)
        if self.release(target):
            return target
        burner, _ = self.live(burner_id, now=now)
        self.store.discard(burner.identity_id)
        self._forget([burner.identity_id], now=now, expired=False)
        return burner.identity_id

    def rows(self) -> list[dict[str, Any]]:
        """The burners with a card, as the node's API lists them."""
        return [burner_row(self.store.get(i), self.card(i)) for i in self.ids()]


def parse_burner_id(text: str) -> IdentityId:
    """A burner id from its text form; ``not_found`` if it is not one."""
    try:
        return IdentityId.parse(text)
    except ValueError:
        raise _not_found() from None


def burner_row(burner: Burner, card: ContactCard) -> dict[str, Any]:
    """A burner as the node's API shows it."""
    return {
        "burner_id": str(burner.identity_id),
        "name": card.name,
        "expires": burner.expires_ms / 1000,
        "card": card.to_text(),
    }
