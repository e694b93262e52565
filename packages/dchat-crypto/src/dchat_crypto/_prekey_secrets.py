"""The owner's side of prekeys: private halves, rotation, one-time use, replay guard.

Theory of operation: prekeys come in *generations*. A generation is a signed
X25519 prekey plus an X-Wing prekey, both expiring at ``expires_at``; the last
generation is the one published. Older generations stay for
``MAX_DELIVERY_DELAY`` after they expire, so a SessionInit written just before
a rotation still opens when its offline recipient comes back; :meth:`prune`
then deletes them (forward secrecy for those prekeys). One-time prekeys are
deleted when consumed. Ids come from one counter that never goes back, so an id
below the counter that is no longer held was consumed: reuse is detected
without remembering every consumed id. Each generation also remembers the
ephemeral keys of the SessionInits it accepted, so a replayed init is refused
even when it used no one-time prekey.

The object is mutated only by the owner's explicit calls and by a *successful*
:func:`accept_session`; the caller persists :meth:`to_bytes` durably after each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode, canonical_encode

from ._errors import InvalidKeyError
from ._keys import PrivateKey, PublicKey, VerifyKey
from ._prekeys import MAX_PREKEY_ID, PrekeyBundle
from ._session_errors import InvalidPrekeyStateError, PrekeyArgumentError
from ._xwing import XWingPrivateKey

if TYPE_CHECKING:
    from ._keys import SigningKey

__all__ = ("DEFAULT_PREKEY_LIFETIME", "MAX_DELIVERY_DELAY", "Generation", "PrekeySecrets")

DEFAULT_PREKEY_LIFETIME: Final = 7 * 86400.0
"""Default lifetime of a generation (signed + X-Wing prekey), in seconds."""
MAX_DELIVERY_DELAY: Final = 30 * 86400.0
"""How long after expiry a generation still accepts SessionInits, in seconds."""
MAX_ONE_TIME_PREKEYS: Final = 10_000
MAX_GENERATIONS: Final = 16
MAX_REMEMBERED_INITS: Final = 100_000  # over all generations; 32 bytes each
_VERSION: Final = 1
_LIMITS: Final = DecodeLimits(max_size=8 << 20, max_depth=4, max_items=1 << 18)


@dataclass(slots=True, repr=False)
class Generation:
    """One signed prekey and one X-Wing prekey that rotate together."""

    signed_prekey_id: int
    signed_prekey: PrivateKey
    xwing_prekey_id: int
    xwing_prekey: XWingPrivateKey
    expires_at: int
    seen: set[bytes] = field(default_factory=set)


def _check_time(now: float) -> float:
    if isinstance(now, bool) or not isinstance(now, int | float) or not math.isfinite(now):
        raise PrekeyArgumentError("now must be a finite number of seconds")
    return float(now)


class PrekeySecrets:
    """Private halves of an identity's prekeys.

    Create with :meth:`generate`, publish :meth:`bundle` results, and pass the
    object to :func:`accept_session`. Not thread-safe; ``repr`` shows no secret.
    """

    __slots__ = ("_generations", "_identity_key", "_next_id", "_one_time", "_static_key")

    def __init__(
        self,
        identity_key: VerifyKey,
        static_key: PublicKey,
        generations: list[Generation],
        one_time: dict[int, PrivateKey],
        next_id: int,
    ) -> None:
        self._identity_key = identity_key
        self._static_key = static_key
        self._generations = generations
        self._one_time = one_time
        self._next_id = next_id

    @classmethod
    def generate(
        cls,
        identity_key: VerifyKey,
        static_key: PublicKey,
        *,
        now: float,
        lifetime: float = DEFAULT_PREKEY_LIFETIME,
        one_time_count: int = 0,
    ) -> PrekeySecrets:
        """Create fresh prekeys for the identity ``identity_key`` / ``static_key``.

        Args:
            identity_key: The identity's Ed25519 key (signs the bundles).
            static_key: The identity's X25519 encryption key.
            now: Current time, seconds since the Unix epoch.
            lifetime: Seconds until the first generation expires.
            one_time_count: Number of one-time prekeys to create.

        Raises:
            PrekeyArgumentError: If a time, lifetime or count is out of range.
        """
        secrets = cls(identity_key, static_key, [], {}, 0)
        secrets.rotate(now=now, lifetime=lifetime)
        secrets.generate_one_time_prekeys(one_time_count)
        return secrets

    # -- owner operations -------------------------------------------------------------

    @property
    def identity_key(self) -> VerifyKey:
        """The identity key the bundles are signed with."""
        return self._identity_key

    @property
    def static_key(self) -> PublicKey:
        """The identity's X25519 encryption key that bundles advertise."""
        return self._static_key

    @property
    def signed_prekey_id(self) -> int:
        """Id of the current (published) signed prekey."""
        return self._generations[-1].signed_prekey_id

    @property
    def expires_at(self) -> int:
        """When the current generation expires, in Unix seconds; rotate before."""
        return self._generations[-1].expires_at

    @property
    def one_time_prekey_ids(self) -> tuple[int, ...]:
        """Ids of the one-time prekeys not yet consumed, ascending."""
        return tuple(sorted(self._one_time))

    def _new_id(self) -> int:
        if self._next_id > MAX_PREKEY_ID:
            raise PrekeyArgumentError("prekey ids are exhausted; create new prekeys")
        self._next_id += 1
        return self._next_id - 1

    def rotate(self, *, now: float, lifetime: float = DEFAULT_PREKEY_LIFETIME) -> None:
        """Start a new generation, expiring ``lifetime`` seconds after ``now``.

        Raises:
            PrekeyArgumentError: If ``now``/``lifetime`` are out of range or
                :data:`MAX_GENERATIONS` are held (call :meth:`prune` first).
        """
        now, lifetime = _check_time(now), _check_time(lifetime)
        if lifetime <= 0 or not 0 <= now + lifetime < 2**53:
            raise PrekeyArgumentError("prekey lifetime must be positive and end before 2**53")
        if len(self._generations) >= MAX_GENERATIONS:
            raise PrekeyArgumentError("too many prekey generations held; prune first")
        spk_id, pq_id = self._new_id(), self._new_id()
        self._generations.append(
            Generation(
                spk_id,
                PrivateKey.generate(),
                pq_id,
                XWingPrivateKey.generate(),
                math.floor(now + lifetime),
            )
        )

    def generate_one_time_prekeys(self, count: int) -> tuple[int, ...]:
        """Create ``count`` one-time prekeys and return their ids.

        Raises:
            PrekeyArgumentError: If ``count`` is negative or the total would
                exceed :data:`MAX_ONE_TIME_PREKEYS`.
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise PrekeyArgumentError("count must be a non-negative integer")
        if len(self._one_time) + count > MAX_ONE_TIME_PREKEYS:
            raise PrekeyArgumentError(f"at most {MAX_ONE_TIME_PREKEYS} one-time prekeys")
        ids = tuple(self._new_id() for _ in range(count))
        self._one_time.update((i, PrivateKey.generate()) for i in ids)
        return ids

    def prune(self, *, now: float) -> None:
        """Delete generations more than :data:`MAX_DELIVERY_DELAY` past expiry.

        The current generation is always kept.
        """
        now = _check_time(now)
        current = self._generations[-1]
        self._generations = [
            g for g in self._generations if g is current or now <= g.expires_at + MAX_DELIVERY_DELAY
        ]

    def bundle(
        self, identity: SigningKey, *, one_time_prekey_id: int | None = None
    ) -> PrekeyBundle:
        """Sign a bundle of the current generation, optionally with one one-time prekey.

        Raises:
            PrekeyArgumentError: If ``identity`` is not this identity's key or the
                one-time prekey id is not held.
        """
        if identity.public_key != self._identity_key:
            raise PrekeyArgumentError("signing key does not belong to these prekeys")
        one_time = None
        if one_time_prekey_id is not None:
            key = self._one_time.get(one_time_prekey_id)
            if key is None:
                raise PrekeyArgumentError("no such unused one-time prekey")
            one_time = (one_time_prekey_id, key.public_key)
        gen = self._generations[-1]
        return PrekeyBundle.sign(
            identity,
            static_key=self._static_key,
            signed_prekey=(gen.signed_prekey_id, gen.signed_prekey.public_key),
            expires_at=gen.expires_at,
            xwing_prekey=(gen.xwing_prekey_id, gen.xwing_prekey.public_key),
            one_time_prekey=one_time,
        )

    # -- used by accept_session ------------------------------------------------------------

    def _generation(self, signed_prekey_id: int) -> Generation | None:
        """The held generation whose signed prekey has this id, if any."""
        return next((g for g in self._generations if g.signed_prekey_id == signed_prekey_id), None)

    def _one_time_prekey(self, prekey_id: int) -> PrivateKey | None:
        """The unused one-time prekey with this id, if held."""
        return self._one_time.get(prekey_id)

    def _was_issued(self, prekey_id: int) -> bool:
        """Whether this id was ever handed out (ids are never reused)."""
        return 0 <= prekey_id < self._next_id

    def remembered_inits(self) -> int:
        """How many accepted SessionInits the replay guard remembers (bounded)."""
        return sum(len(g.seen) for g in self._generations)

    def _commit_accept(self, gen: Generation, ephemeral: bytes, one_time_id: int | None) -> None:
        """Record a successful accept: consume the one-time prekey, remember the init."""
        if one_time_id is not None:
            del self._one_time[one_time_id]
        gen.seen.add(ephemeral)

    # -- persistence --------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Serialize every secret and counter; store the result encrypted and durably."""
        return canonical_encode(
            {
                "v": _VERSION,
                "ik": self._identity_key.to_bytes(),
                "ek": self._static_key.to_bytes(),
                "next": self._next_id,
                "gens": [_encode_generation(g) for g in self._generations],
                "opks": [[i, self._one_time[i].to_bytes()] for i in sorted(self._one_time)],
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> PrekeySecrets:
        """Parse what :meth:`to_bytes` produced, checking every bound and invariant.

        Raises:
            InvalidPrekeyStateError: If ``data`` is malformed or inconsistent.
        """
        try:
            fields = Fields(canonical_decode(data, _LIMITS), "prekey secrets", _TOP_FIELDS)
            if fields.get_int("v") != _VERSION:
                raise DecodeError("unsupported prekey secrets version")
            secrets = cls(
                VerifyKey(fields.get_bytes("ik", size=32)),
                PublicKey(fields.get_bytes("ek", size=32)),
                [_decode_generation(g) for g in fields.get_list("gens", max_len=MAX_GENERATIONS)],
                _decode_one_time(fields.get_list("opks", max_len=MAX_ONE_TIME_PREKEYS)),
                fields.get_int("next", hi=MAX_PREKEY_ID + 1),
            )
            secrets._check_consistent()
        except (DecodeError, InvalidKeyError):
            raise InvalidPrekeyStateError("malformed prekey secrets") from None
        return secrets

    def _check_consistent(self) -> None:
        gens = self._generations
        ids = [i for g in gens for i in (g.signed_prekey_id, g.xwing_prekey_id)]
        ids += list(self._one_time)
        if not gens or len(set(ids)) != len(ids) or any(i >= self._next_id for i in ids):
            raise DecodeError("prekey ids are inconsistent")
        if self.remembered_inits() > MAX_REMEMBERED_INITS:
            raise DecodeError("too many remembered SessionInits")

    def __repr__(self) -> str:
        return (
            f"PrekeySecrets(identity={self._identity_key.to_bytes().hex()}, "
            f"generations={len(self._generations)}, one_time={len(self._one_time)})"
        )


_TOP_FIELDS: Final = frozenset({"v", "ik", "ek", "next", "gens", "opks"})
_GEN_FIELDS: Final = frozenset({"spk_id", "spk", "pq_id", "pq", "exp", "seen"})


def _encode_generation(gen: Generation) -> dict[str, Any]:
    return {
        "spk_id": gen.signed_prekey_id,
        "spk": gen.signed_prekey.to_bytes(),
        "pq_id": gen.xwing_prekey_id,
        "pq": gen.xwing_prekey.to_seed(),
        "exp": gen.expires_at,
        "seen": sorted(gen.seen),
    }


def _decode_generation(value: Any) -> Generation:
    fields = Fields(value, "prekey generation", _GEN_FIELDS)
    seen = fields.get_list("seen", max_len=MAX_REMEMBERED_INITS)
    if any(not isinstance(e, bytes) or len(e) != PublicKey.SIZE for e in seen):
        raise DecodeError("remembered SessionInits must be 32-byte keys")
    if seen != sorted(set(seen)):
        raise DecodeError("remembered SessionInits must be sorted and unique")
    return Generation(
        fields.get_int("spk_id", hi=MAX_PREKEY_ID),
        PrivateKey(fields.get_bytes("spk", size=PrivateKey.SIZE)),
        fields.get_int("pq_id", hi=MAX_PREKEY_ID),
        XWingPrivateKey(fields.get_bytes("pq", size=XWingPrivateKey.SEED_SIZE)),
        fields.get_int("exp", hi=2**53),
        set(seen),
    )


def _decode_one_time(items: list[Any]) -> dict[int, PrivateKey]:
    result: dict[int, PrivateKey] = {}
    previous = -1
    for item in items:
        if not isinstance(item, list) or len(item) != 2:
            raise DecodeError("one-time prekeys must be [id, key] pairs")
        prekey_id, raw = item
        if isinstance(prekey_id, bool) or not isinstance(prekey_id, int) or prekey_id <= previous:
            raise DecodeError("one-time prekey ids must ascend")
        if prekey_id > MAX_PREKEY_ID or not isinstance(raw, bytes):
            raise DecodeError("one-time prekey entry out of range")
        result[prekey_id] = PrivateKey(raw)
        previous = prekey_id
    return result
