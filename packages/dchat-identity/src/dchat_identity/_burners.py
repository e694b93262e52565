"""Burner identities: short-lived, unlinkable, rate-limited, and deleted for real.

A burner is a complete identity (identity, encryption and mailbox keys) drawn
from fresh randomness: nothing about it is derived from the main seed or
signed by the main identity, so nothing a burner publishes (its card, its
document) can be linked to the main identity by its contents. Its document
and card carry an expiry that verifiers enforce.

Creating burners is rate-limited per device by a token bucket, so a
compromised or buggy client cannot mint identities in bulk. Discarding a
burner removes its keys from the store: the next :meth:`BurnerStore.to_bytes`
no longer contains them. (Copies the node wrote elsewhere earlier, e.g. an old
backup, are storage's to erase; see the README.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dchat_core import DecodeLimits, IdentityId, NodeId, canonical_encode
from dchat_crypto import PrivateKey, SigningKey

from ._card import ContactCard
from ._document import IdentityDocument
from ._errors import IdentityArgumentError, MalformedRecordError, RateLimitedError
from ._identity import Identity
from ._records import Rng, check_version, decode_fields, default_rng, strict, to_ms

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ("Burner", "BurnerStore", "TokenBucket")

MAX_BURNERS = 64
_LIMITS = DecodeLimits(max_size=256 * 1024, max_depth=4, max_items=2048)


@dataclass(slots=True)
class TokenBucket:
    """A token bucket: up to ``capacity`` actions at once, refilled at ``rate`` per second."""

    capacity: float
    rate: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, capacity: float, rate: float, *, now: float) -> TokenBucket:
        """A bucket that starts full at ``now``."""
        if not (capacity >= 1 and rate > 0):
            raise IdentityArgumentError("a token bucket needs capacity >= 1 and rate > 0")
        return cls(capacity, rate, capacity, now)

    def take(self, *, now: float) -> None:
        """Spend one token.

        Raises:
            RateLimitedError: the bucket is empty; ``retry_after`` says for how long.
        """
        elapsed = max(0.0, now - self.updated)  # a clock that went back refills nothing
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated = max(self.updated, now)
        if self.tokens < 1:
            raise RateLimitedError("too many burners created", (1 - self.tokens) / self.rate)
        self.tokens -= 1


@dataclass(frozen=True, slots=True, repr=False)
class Burner:
    """A burner identity and its signed, expiring document."""

    identity: Identity
    document: IdentityDocument

    @property
    def identity_id(self) -> IdentityId:
        """The burner's id (unrelated to the main identity's)."""
        return self.identity.identity_id

    @property
    def expires_ms(self) -> int:
        """When the burner stops being valid (ms since the epoch)."""
        assert self.document.expires_ms is not None
        return self.document.expires_ms

    def card(
        self,
        *,
        name: str,
        relay: str | None = None,
        relay_node: NodeId | None = None,
        relays: Sequence[str] = (),
        stealth: bytes | None = None,
    ) -> ContactCard:
        """A contact card for the burner (at ``relay`` or ``relays``), expiring with it.

        ``stealth``: the burner's own stealth meta-address (derived from the
        burner's key, never the owner's), so strangers can pay the burner.
        """
        return ContactCard.issue(
            self.identity,
            name=name,
            relay=relay,
            relay_node=relay_node,
            relays=relays,
            expires=self.expires_ms / 1000,
            stealth=stealth,
        )

    def __repr__(self) -> str:
        return f"Burner({self.identity_id})"


class BurnerStore:
    """One device's burners and its creation rate limit.

    Args:
        now: Current time (seconds), when the rate-limit bucket starts full.
        capacity: Burners that may be created in a burst.
        per_hour: Burners the bucket refills per hour.
    """

    __slots__ = ("_bucket", "_burners")

    def __init__(self, *, now: float, capacity: int = 3, per_hour: float = 2.0) -> None:
        self._bucket = TokenBucket.full(capacity, per_hour / 3600, now=now)
        self._burners: dict[IdentityId, Burner] = {}

    def create(self, *, now: float, ttl: float, rng: Rng = default_rng) -> Burner:
        """A new burner valid for ``ttl`` seconds, from fresh randomness.

        Raises:
            RateLimitedError: this device created too many burners recently.
            IdentityArgumentError: ``ttl`` is not positive, or the store is full.
        """
        if not ttl > 0:
            raise IdentityArgumentError("a burner needs a positive lifetime")
        if len(self._burners) >= MAX_BURNERS:
            raise IdentityArgumentError("too many burners; discard some first")
        self._bucket.take(now=now)
        identity = Identity.generate(rng)
        doc = IdentityDocument.genesis(
            identity.signing_key, identity.encryption_key.public_key, now=now, expires=now + ttl
        )
        burner = Burner(identity, doc)
        self._burners[burner.identity_id] = burner
        return burner

    def __len__(self) -> int:
        return len(self._burners)

    def get(self, burner_id: IdentityId) -> Burner:
        """The burner with ``burner_id``.

        Raises:
            IdentityArgumentError: no such burner (never created, or discarded).
        """
        try:
            return self._burners[burner_id]
        except KeyError:
            raise IdentityArgumentError("no such burner") from None

    def discard(self, burner_id: IdentityId) -> None:
        """Forget the burner and its keys."""
        self.get(burner_id)
        del self._burners[burner_id]

    def expired(self, *, now: float) -> list[Burner]:
        """The burners expired at ``now`` (still in the store)."""
        return [b for b in self._burners.values() if b.expires_ms <= to_ms(now)]

    def discard_expired(self, *, now: float) -> list[IdentityId]:
        """Discard every expired burner; returns their ids."""
        gone = [i for i, b in self._burners.items() if b.expires_ms <= to_ms(now)]
        for burner_id in gone:
            del self._burners[burner_id]
        return gone

    def to_bytes(self) -> bytes:
        """The store, *including private keys*: persist it only encrypted at rest."""
        bucket = self._bucket
        fields: dict[str, Any] = {
            "v": 1,
            "bucket": [to_ms(bucket.capacity), to_ms(bucket.rate * 3600), to_ms(bucket.tokens),
                       to_ms(bucket.updated)],
            "burners": [_burner_fields(b) for b in self._burners.values()],
        }  # fmt: skip
        return canonical_encode(fields)

    @classmethod
    def from_bytes(cls, data: bytes) -> BurnerStore:
        """Strictly decode :meth:`to_bytes` output (documents are re-verified)."""
        fields = decode_fields(data, "burner store", frozenset({"v", "bucket", "burners"}), _LIMITS)
        with strict("burner store"):
            check_version(fields, "burner store")
            bucket = fields.get_list("bucket", max_len=4)
            burners = fields.get_list("burners", max_len=MAX_BURNERS)
        if len(bucket) != 4 or not all(type(x) is int and x >= 0 for x in bucket):
            raise MalformedRecordError("malformed burner store: bad bucket")
        capacity, per_hour, tokens, updated = (x / 1000 for x in bucket)
        if capacity < 1 or per_hour <= 0 or tokens > capacity:
            raise MalformedRecordError("malformed burner store: bad bucket")
        store = cls(now=updated, capacity=1, per_hour=per_hour)
        store._bucket = TokenBucket(capacity, per_hour / 3600, tokens, updated)
        for raw in burners:
            burner = _burner_from(raw)
            store._burners[burner.identity_id] = burner
        return store


def _burner_fields(burner: Burner) -> list[bytes]:
    identity = burner.identity
    return [
        identity.signing_key.to_bytes(),
        identity.encryption_key.to_bytes(),
        identity.mailbox_key.to_bytes(),
        burner.document.to_bytes(),
    ]


def _burner_from(raw: object) -> Burner:
    if not (isinstance(raw, list) and len(raw) == 4 and all(isinstance(x, bytes) for x in raw)):
        raise MalformedRecordError("malformed burner store: bad burner")
    with strict("burner store"):
        identity = Identity(
            SigningKey.from_bytes(raw[0]),
            PrivateKey.from_bytes(raw[1]),
            SigningKey.from_bytes(raw[2]),
        )
    doc = IdentityDocument.from_bytes(raw[3])
    if doc.identity_key != identity.signing_key.public_key or doc.expires_ms is None:
        raise MalformedRecordError("malformed burner store: document does not match keys")
    if doc.encryption_key != identity.encryption_key.public_key:
        raise MalformedRecordError("malformed burner store: document does not match keys")
    return Burner(identity, doc)
