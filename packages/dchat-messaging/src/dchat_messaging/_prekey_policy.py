"""When a device publishes prekeys: how many one-time prekeys, how often to rotate.

:class:`PrekeyKeeper` keeps a device's private prekeys (one generation of
signed prekey plus one-time prekeys, :class:`dchat_crypto.PrekeySecrets`) in
the engine's store and decides, from what the home relay reports holding,
what to publish: a first set, a top-up below the low-water mark, a fresh
generation before the current one expires. The private halves are stored
before the public bundles leave, so a published bundle can always be
answered. The next rotation time is kept beside them, so the common poll
("the relay is well stocked") needs no decoding of the secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dchat_crypto import DchatCryptoError, PrekeySecrets

from ._bundle_wrap import wrap_bundle
from ._errors import EngineStateError

if TYPE_CHECKING:
    from ._devices import DeviceKeys
    from ._store import StateStore

__all__ = ("PrekeyKeeper", "PrekeyPolicy", "PrekeyUpload")


@dataclass(frozen=True, slots=True)
class PrekeyPolicy:
    """Prekey publishing schedule.

    Attributes:
        target: One-time prekeys to hold at the relay after a top-up.
        low_water: Top up when the relay holds fewer than this.
        lifetime: Seconds a signed prekey generation is valid.
        rotate_before: Rotate this many seconds before the generation expires.
    """

    target: int = 50
    low_water: int = 20
    lifetime: float = 7 * 86400.0
    rotate_before: float = 2 * 86400.0


@dataclass(frozen=True, slots=True)
class PrekeyUpload:
    """Wrapped bundles for the home relay's ``pk_put`` (opaque to the relay).

    Attributes:
        last_resort: The bundle without a one-time prekey, served when none is left.
        one_time: ``(one-time prekey id, bundle)`` per new one-time prekey.
        replace: Drop every bundle the relay holds first (a new generation).
    """

    last_resort: bytes
    one_time: tuple[tuple[int, bytes], ...]
    replace: bool


class PrekeyKeeper:
    """The private prekeys of one device, under ``key`` (and ``key.rotate``) in ``store``."""

    def __init__(self, store: StateStore, key: str, policy: PrekeyPolicy) -> None:
        self._store = store
        self._key = key
        self.policy = policy

    def load(self) -> PrekeySecrets | None:
        """The stored secrets, or None before the first publication.

        Raises:
            EngineStateError: they are damaged.
        """
        data = self._store.get_state(self._key)
        if data is None:
            return None
        try:
            return PrekeySecrets.from_bytes(data)
        except (DchatCryptoError, ValueError):
            raise EngineStateError("stored prekeys are damaged") from None

    def save(self, secrets: PrekeySecrets) -> None:
        """Store ``secrets`` (e.g. after a one-time prekey was consumed)."""
        self._store.put_state(self._key, secrets.to_bytes())

    def upload(self, keys: DeviceKeys, *, held: int | None, now: float) -> PrekeyUpload | None:
        """What ``keys``' device should publish, given the relay holds ``held`` bundles."""
        policy = self.policy
        due = self._store.get_state(self._key + ".rotate")
        stocked = held is not None and held >= policy.low_water
        if stocked and due is not None and now < int.from_bytes(due, "big"):
            return None  # the common case, without decoding every private prekey
        with self._store.transaction():
            secrets = self.load()
            replace_all = True
            if secrets is None:
                secrets = PrekeySecrets.generate(
                    keys.device_key.public_key,
                    keys.exchange_key.public_key,
                    now=now,
                    lifetime=policy.lifetime,
                )
                count = policy.target
            elif now >= secrets.expires_at - policy.rotate_before:
                secrets.prune(now=now)
                secrets.rotate(now=now, lifetime=policy.lifetime)
                count = policy.target
            elif held is None:
                count = policy.target
            elif held < policy.low_water:
                replace_all, count = False, policy.target - held
            else:
                self._note_rotation(secrets)
                return None
            ids = _new_one_time(secrets, count)
            self.save(secrets)
            self._note_rotation(secrets)
        sign = keys.device_key
        place = {"device_key": keys.device_id, "mailbox": bytes(keys.mailbox)}
        return PrekeyUpload(
            wrap_bundle(secrets.bundle(sign).to_bytes(), **place),
            tuple(
                (i, wrap_bundle(secrets.bundle(sign, one_time_prekey_id=i).to_bytes(), **place))
                for i in ids
            ),
            replace_all,
        )

    def _note_rotation(self, secrets: PrekeySecrets) -> None:
        """Remember when the next generation is due, so polls need not decode the secrets."""
        rotate_at = max(0, int(secrets.expires_at - self.policy.rotate_before))
        self._store.put_state(self._key + ".rotate", rotate_at.to_bytes(8, "big"))


def _new_one_time(secrets: PrekeySecrets, count: int) -> tuple[int, ...]:
    try:
        return secrets.generate_one_time_prekeys(count)
    except DchatCryptoError:
        return ()  # the private pool is full: publish the last-resort bundle only
