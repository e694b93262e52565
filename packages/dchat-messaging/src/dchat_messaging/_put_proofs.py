"""Contact-proof secrets: the ones we hand our contacts, the ones they handed us (section 41).

Theory of operation
-------------------
A put token (:mod:`._put_tokens`) gives the relay a per-contact pseudonym:
"token *k* of this mailbox was used". With ``put_auth = "proof"`` the node
hands each contact a *contact secret* for our mailbox instead (a
:class:`~dchat_privacy.ContactSecret`, one per contact, never reused for
another mailbox), inside the end-to-end session as a ``put.proof`` control
(``{"v": 1, "mb": mailbox, "x": secret(32)}``). The node registers the
contacts' public keys, padded with decoys to a size class
(:meth:`~dchat_privacy.ContactRing.padded`), at its relay as the mailbox's
*ring* (``ring_set``), and a contact proves "one of the ring" without saying
which (:mod:`dchat_network._put_proofs`).

Decoys are derived from a stored seed (decoy *i* is the hash of ``seed ||
i`` mapped to the group), so every registration of the same contacts is the
same ring: a relay comparing rings over time sees a key appear when a
contact is added (and a decoy leave), never decoys churn that would single
out the real keys.

:class:`PutProofs` keeps both sides, durably under the ``put_proofs`` state
key (canonical CBOR ``{"v": version, "seed": bytes(32), "issued": {identity
id: secret}, "held": {mailbox in hex: secret}}``); each change of *issued*
bumps ``version``, and :attr:`PutProofs.registration` is ``(version, ring
bytes)``. Reads are from memory (the deposit pool asks from the trio thread);
writes happen in the store's transactions and are undone with them.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Final

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode, canonical_encode
from dchat_privacy import ContactRing, ContactSecret
from dchat_privacy.lowlevel import ZkDecodeError, ZkInputError

from ._controls import load_state
from ._errors import EngineStateError

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_core import IdentityId, MailboxId

    from ._store import StateStore

__all__ = ("PUT_PROOF_KIND", "PutProofs", "decode_put_proof", "encode_put_proof")

PUT_PROOF_KIND: Final = "put.proof"
"""The control message that hands a contact its contact secret for our mailbox."""
_KEY: Final = "put_proofs"
_SECRET: Final = 32
_LIMITS: Final = DecodeLimits(max_size=256, max_depth=1, max_items=8)
MAX_ISSUED: Final = 1024
"""The most contacts holding a contact secret of ours (the largest ring)."""


def encode_put_proof(mailbox: bytes, secret: bytes) -> bytes:
    """The payload of a ``put.proof`` control: ``{"v": 1, "mb": mailbox, "x": secret}``."""
    return canonical_encode({"v": 1, "mb": mailbox, "x": secret})


def decode_put_proof(data: bytes) -> tuple[bytes, ContactSecret] | None:
    """``(mailbox, secret)`` from a ``put.proof`` payload, or None if it is malformed."""
    try:
        fields = Fields(canonical_decode(data, _LIMITS), "put proof", frozenset({"v", "mb", "x"}))
        fields.get_int("v", lo=1, hi=1)
        mailbox = fields.get_bytes("mb", size=32)
        return mailbox, ContactSecret.from_bytes(fields.get_bytes("x", size=_SECRET))
    except (DecodeError, ValueError):  # ZkDecodeError and ZkInputError are ValueErrors
        return None


def _decoys(seed: bytes) -> Callable[[int], bytes]:
    """The decoys' byte source: block *i* is BLAKE2b-512(seed || i), the same every time."""
    counter = iter(range(1 << 62))

    def draw(size: int) -> bytes:
        index = next(counter).to_bytes(8, "big")
        return hashlib.blake2b(seed + index, digest_size=64, person=b"dchat-ring-decoy").digest()[
            :size
        ]

    return draw


class PutProofs:
    """The contact secrets we issued and the ones we hold (see the module docstring)."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._issued: dict[str, bytes] = {}
        self._held: dict[bytes, bytes] = {}
        self._secrets: dict[bytes, ContactSecret] = {}
        self._seed = b""
        self._version = 0
        self.registration: tuple[int, bytes] = (0, b"")
        """``(version, ring)`` our mailbox link registers (replaced, never mutated)."""

    def load(self) -> None:
        """Read the stored secrets.

        Raises:
            EngineStateError: the stored value is damaged.
        """
        raw = load_state(self._store, _KEY)
        if raw is None:
            return
        damaged = EngineStateError("stored contact-proof secrets are damaged")
        try:
            fields = Fields(raw, "put proofs", frozenset({"v", "seed", "issued", "held"}))
            issued, held = fields.raw("issued"), fields.raw("held")
            version, seed = fields.get_int("v"), fields.get_bytes("seed", size=32)
            if not (isinstance(issued, dict) and isinstance(held, dict)):
                raise damaged
            held_map = {bytes.fromhex(mailbox): secret for mailbox, secret in held.items()}
            for secret in [*issued.values(), *held_map.values()]:
                ContactSecret.from_bytes(secret)
        except (DecodeError, ValueError, TypeError, ZkDecodeError, ZkInputError):
            raise damaged from None
        self._issued, self._held, self._version, self._seed = dict(issued), held_map, version, seed
        self._publish()

    def secret_for(self, mailbox: bytes) -> ContactSecret | None:
        """The contact secret a contact gave us for its ``mailbox``, if any."""
        return self._secrets.get(mailbox)

    def issued_to(self, peer: IdentityId) -> bytes | None:
        """The secret we gave ``peer``, if any."""
        return self._issued.get(str(peer))

    @property
    def issued(self) -> int:
        """How many contacts hold a contact secret of ours."""
        return len(self._issued)

    def issue(self, peer: IdentityId) -> bytes | None:
        """A new secret for ``peer`` (stored), or None if it has one or the cap is reached."""
        if str(peer) in self._issued or len(self._issued) >= MAX_ISSUED:
            return None
        secret = ContactSecret.generate().to_bytes()
        self._change(lambda: self._issued.__setitem__(str(peer), secret), issued=True)
        return secret

    def revoke(self, peer: IdentityId) -> bool:
        """Withdraw ``peer``'s key from our ring (from the next registration on)."""
        if str(peer) not in self._issued:
            return False
        self._change(lambda: self._issued.pop(str(peer)), issued=True)
        return True

    def learn(self, data: bytes, sender_mailbox: MailboxId | None) -> bool:
        """Keep the secret of a ``put.proof`` payload if it is for ``sender_mailbox``."""
        decoded = decode_put_proof(data)
        if decoded is None or sender_mailbox is None or decoded[0] != bytes(sender_mailbox):
            return False
        mailbox, secret = decoded
        raw = secret.to_bytes()
        if self._held.get(mailbox) != raw:
            self._change(lambda: self._held.__setitem__(mailbox, raw), issued=False)
        return True

    def _change(self, apply: Callable[[], object], *, issued: bool) -> None:
        before = (dict(self._issued), dict(self._held), self._version, self._seed)

        def undo() -> None:
            self._issued, self._held, self._version, self._seed = before
            self._publish()

        apply()
        self._seed = self._seed or os.urandom(32)
        self._version += issued
        self._publish()
        self._store.on_rollback(undo)
        held = {mailbox.hex(): secret for mailbox, secret in self._held.items()}
        value = {"v": self._version, "seed": self._seed, "issued": self._issued, "held": held}
        self._store.put_state(_KEY, canonical_encode(value))

    def _publish(self) -> None:
        self._secrets = {m: ContactSecret.from_bytes(s) for m, s in self._held.items()}
        keys = [ContactSecret.from_bytes(s).public_key for s in self._issued.values()]
        ring = ContactRing.padded(keys, rng=_decoys(self._seed)).to_bytes() if keys else b""
        self.registration = (self._version, ring)
