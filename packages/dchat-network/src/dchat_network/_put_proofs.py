"""Put authorization by contact proof (protocol section 41), sans-IO: the relay's ring book.

Theory of operation
-------------------
A put token (:mod:`._put_auth`) tells the relay *which* contact deposits: each
token is a per-contact pseudonym. A contact proof tells it only "one of this
mailbox's contacts". The mailbox's owner registers a *ring* at its relay over
its authenticated mailbox link (``ring_set``): the contact keys it handed out
(:class:`~dchat_privacy.ContactSecret`, one per contact, inside the end-to-end
session) padded with decoys to a size class, signed with the mailbox's key
(:func:`~dchat_privacy.lowlevel.ring_statement`). A sender asks the relay for
one or more one-use *contexts* (``zk_get``: the relay's epoch, fresh nonces,
the ring and the owner's signature), checks the signature (so the relay
cannot hand it a ring tailored to single it out), proves membership with a
CDS OR-proof bound to the mailbox, the epoch and one nonce
(:func:`~dchat_privacy.prove_contact`), and attaches
``0x04 || epoch(8) || nonce(32) || proof`` to the deposit.

:class:`ContactRings` is the relay's book. :meth:`ContactRings.check` refuses,
with a typed :class:`PutProofError` whose ``code`` is the refusal sent back:

* ``proof_stale``: the epoch is neither the current nor the previous one;
* ``proof_replayed``: the nonce was not issued here, has expired, or was
  used already (a nonce is consumed before the proof is checked, so a failed
  attempt burns it too);
* ``proof_mailbox``: the nonce was issued for another mailbox (a proof made
  for mailbox A presented at mailbox B);
* ``proof_no_ring``: the mailbox has no ring (any more);
* ``proof_invalid``: malformed, or does not verify (one opaque code).

Bounds: at most ``max_keys`` ring keys over all mailboxes (a registration
past it is refused), at most ``max_outstanding`` issued nonces (the oldest are
forgotten first), each valid ``ttl`` seconds, and at most
:data:`MAX_CONTEXTS` per ``zk_get``. Verification costs milliseconds per
proof (docs/benchmarks.md), so a relay checks a proof only against a nonce
it issued, and ``zk_get`` is charged to the link's rate like a deposit.

Nothing here reads a clock or does I/O: every call takes ``now``.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dchat_core import MailboxId, PeerError
from dchat_crypto import BadSignatureError, InvalidKeyError, VerifyKey
from dchat_privacy import (
    ContactContext,
    ContactRing,
    InvalidProofError,
    prove_contact,
    verify_contact,
)
from dchat_privacy.lowlevel import (
    MAX_RING_SIZE,
    ContactProof,
    ZkDecodeError,
    ZkInputError,
    ring_statement,
)

from ._errors import DchatNetworkError

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_privacy import ContactSecret

__all__ = (
    "EPOCH_PERIOD",
    "MAX_CONTEXTS",
    "MIN_RING",
    "PROOF_TAG",
    "ContactRings",
    "ProofContexts",
    "PutProofError",
    "auth_proof",
    "check_proof_auth",
    "prove_deposits",
    "ring_signed",
    "split_proof_auth",
)

PROOF_TAG: Final = 0x04
EPOCH_PERIOD: Final = 600.0
"""Seconds one proof epoch lasts (the relay accepts the current and the previous one)."""
NONCE_SIZE: Final = 32
NONCE_TTL: Final = 60.0
"""Seconds an issued nonce waits for its proof."""
MAX_CONTEXTS: Final = 64
"""The most nonces one ``zk_get`` may ask for (one ``put_many`` batch)."""
KEY_SIZE: Final = 32
MAX_RING_BYTES: Final = KEY_SIZE * MAX_RING_SIZE
MAX_PROOF: Final = 2 * 32 * MAX_RING_SIZE + 64
"""The largest encoded contact proof (a ring of 1024 keys)."""
_HEAD: Final = 1 + 8 + NONCE_SIZE


class PutProofError(DchatNetworkError, PeerError, ValueError):
    """A deposit's contact proof is refused; ``code`` is the refusal sent back."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True, slots=True)
class ProofContexts:
    """What a sender proves against: the relay's epoch, one-use nonces and the ring."""

    epoch: int
    nonces: tuple[bytes, ...]
    ring: bytes
    """The ring's keys, concatenated in increasing order (empty: no ring registered)."""
    key: bytes = b""
    """The mailbox's public key (its :class:`~dchat_core.MailboxId` is the mailbox)."""
    signature: bytes = b""
    """``key``'s Ed25519 signature over :func:`~dchat_privacy.lowlevel.ring_statement`."""


def ring_signed(mailbox: bytes, ring: bytes, key: bytes, signature: bytes) -> bool:
    """Whether the owner of ``mailbox`` (``key``) signed ``ring`` with ``signature``."""
    try:
        if bytes(MailboxId.derive(key)) != mailbox:
            return False
        VerifyKey.from_bytes(key).verify(signature, ring_statement(mailbox, ring))
    except (BadSignatureError, InvalidKeyError, ValueError):
        return False
    return True


def auth_proof(epoch: int, nonce: bytes, proof: bytes) -> bytes:
    """A contact proof as a deposit's authorization."""
    return bytes([PROOF_TAG]) + epoch.to_bytes(8, "big") + nonce + proof


def check_proof_auth(auth: bytes) -> bool:
    """Whether ``auth`` has the shape of a proof authorization (the codec's check)."""
    return auth[:1] == bytes([PROOF_TAG]) and _HEAD < len(auth) <= _HEAD + MAX_PROOF


def split_proof_auth(auth: bytes) -> tuple[int, bytes, bytes]:
    """``(epoch, nonce, encoded proof)`` of a proof authorization of the right shape."""
    return int.from_bytes(auth[1:9], "big"), auth[9:_HEAD], auth[_HEAD:]


class ContactRings:
    """A relay's contact rings and proof nonces (see the module docstring).

    Args:
        max_keys: Ring keys all mailboxes together may register (the memory bound).
        max_outstanding: Issued nonces kept waiting for their proof.
        ttl: Seconds a nonce stays valid.
        rng: The nonces' randomness.
    """

    def __init__(
        self,
        *,
        max_keys: int = 262144,
        max_outstanding: int = 65536,
        ttl: float = NONCE_TTL,
        rng: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._max_keys = max_keys
        self._max_outstanding = max_outstanding
        self._ttl = ttl
        self._rng = rng
        self._rings: dict[bytes, tuple[ContactRing, ProofContexts]] = {}
        self._nonces: OrderedDict[bytes, tuple[bytes, int, float]] = OrderedDict()
        self.keys_held = 0
        """Ring keys registered by all mailboxes together."""

    def set_ring(
        self, mailbox: bytes, ring: bytes, key: bytes = b"", signature: bytes = b""
    ) -> int | None:
        """Replace ``mailbox``'s ring (empty bytes: remove it); its size, or None past the bound.

        ``key`` and ``signature``: the owner's over the ring (:func:`ring_signed`),
        kept to hand senders with the ring.

        Raises:
            PutProofError: ``bad_ring``, not 1 to 1024 valid keys in increasing
                order, or not signed by the mailbox's key.
        """
        old = len(self._rings[mailbox][0]) if mailbox in self._rings else 0
        if not ring:
            self._rings.pop(mailbox, None)
            self.keys_held -= old
            return 0
        try:
            parsed = ContactRing.from_bytes(ring)
        except (ZkDecodeError, ZkInputError):
            raise PutProofError("bad_ring") from None
        if not ring_signed(mailbox, ring, key, signature):
            raise PutProofError("bad_ring")
        held = self.keys_held - old + len(parsed)
        if held > self._max_keys and len(parsed) > old:
            return None
        self.keys_held = held
        self._rings[mailbox] = (parsed, ProofContexts(0, (), ring, key, signature))
        return len(parsed)

    def has_ring(self, mailbox: bytes) -> bool:
        """Whether ``mailbox``'s owner registered a ring."""
        return mailbox in self._rings

    @property
    def rings(self) -> int:
        """Mailboxes with a ring."""
        return len(self._rings)

    @staticmethod
    def epoch(now: float) -> int:
        """The proof epoch at ``now``."""
        return int(now // EPOCH_PERIOD)

    def contexts(self, mailbox: bytes, count: int, now: float) -> ProofContexts:
        """``count`` fresh nonces for ``mailbox`` (none if it has no ring), valid ``ttl`` s."""
        held = self._rings.get(mailbox)
        epoch = self.epoch(now)
        if held is None:
            return ProofContexts(epoch, (), b"")
        self._expire(now)
        nonces = tuple(self._rng(NONCE_SIZE) for _ in range(min(count, MAX_CONTEXTS)))
        for nonce in nonces:
            while len(self._nonces) >= self._max_outstanding:
                self._nonces.popitem(last=False)
            self._nonces[nonce] = (mailbox, epoch, now + self._ttl)
        return ProofContexts(epoch, nonces, held[1].ring, held[1].key, held[1].signature)

    def check(self, mailbox: bytes, auth: bytes, now: float) -> None:
        """Accept the proof authorization ``auth`` for a deposit into ``mailbox``, once.

        Raises:
            PutProofError: ``code`` says why (see the module docstring).
        """
        epoch, nonce, encoded = split_proof_auth(auth)
        if epoch not in (self.epoch(now), self.epoch(now) - 1):
            raise PutProofError("proof_stale")
        self._expire(now)
        issued = self._nonces.pop(nonce, None)
        if issued is None or issued[1] != epoch:
            raise PutProofError("proof_replayed")
        if issued[0] != mailbox:
            raise PutProofError("proof_mailbox")
        held = self._rings.get(mailbox)
        if held is None:
            raise PutProofError("proof_no_ring")
        ring = held[0]
        try:
            proof = ContactProof.from_bytes(encoded, max_ring=len(ring))
            verify_contact(proof, ring, ContactContext(mailbox, epoch, nonce))
        except (ZkDecodeError, ZkInputError, InvalidProofError):
            raise PutProofError("proof_invalid") from None

    def outstanding(self) -> int:
        """Issued nonces still waiting for a proof."""
        return len(self._nonces)

    def _expire(self, now: float) -> None:
        while self._nonces:
            nonce, (_, _, expiry) = next(iter(self._nonces.items()))
            if expiry > now:
                return
            del self._nonces[nonce]


MIN_RING: Final = 8
"""The smallest ring a sender proves against (the owner pads to at least this size class)."""


def prove_deposits(secret: ContactSecret, mailbox: bytes, contexts: ProofContexts) -> list[bytes]:
    """A sender's proof authorizations for ``mailbox``, one per nonce of ``contexts``.

    None (an empty list) when the ring is missing, not signed by the
    mailbox's owner, smaller than :data:`MIN_RING` (an owner pads to 8 at
    least) or lacks our key: the caller falls back to a token or work.
    CPU-bound (milliseconds per proof): a trio shell runs it in a worker thread.
    """
    if len(contexts.ring) < MIN_RING * KEY_SIZE or not contexts.nonces:
        return []
    if not ring_signed(mailbox, contexts.ring, contexts.key, contexts.signature):
        return []
    try:
        ring = ContactRing.from_bytes(contexts.ring)
        epoch = contexts.epoch
        return [
            auth_proof(epoch, nonce, prove_contact(secret, ring, context).to_bytes())
            for nonce in contexts.nonces
            for context in (ContactContext(mailbox, epoch, nonce),)
        ]
    except (ZkDecodeError, ZkInputError):
        return []
