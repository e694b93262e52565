"""The verifier's side of contact proofs: one-use nonces, then the proof check.

Theory of operation. A proof is bound to the nonce of its
:class:`~dchat_privacy.ContactContext`, so replay protection is the verifier's
nonce book: :meth:`ContactVerifier.challenge` issues a fresh random nonce for a
mailbox and epoch and remembers it until ``now + ttl``; :meth:`ContactVerifier.verify`
consumes the nonce *before* checking the proof (a failed attempt burns it too)
and refuses a nonce it did not issue, issued for another mailbox or epoch,
expired or already used. Sans-IO: ``now`` is a parameter, randomness injectable.
The book holds at most ``max_outstanding`` nonces; issuing past that forgets
the oldest (the caller rate limits who may ask for challenges).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final

from ._contact_proof import ContactContext, ContactProof, ContactRing, verify_contact
from ._zk_errors import ReplayedProofError, ZkInputError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("ContactVerifier",)

NONCE_SIZE: Final = 32


class ContactVerifier:
    """Issues contact-proof challenges and verifies each proof at most once."""

    __slots__ = ("_book", "_max", "_rng", "_ttl")

    def __init__(
        self,
        *,
        ttl: float = 60.0,
        max_outstanding: int = 10_000,
        rng: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if ttl <= 0 or max_outstanding < 1:
            raise ZkInputError("ttl and max_outstanding must be positive")
        self._ttl = ttl
        self._max = max_outstanding
        self._rng = rng
        # nonce -> (mailbox, epoch, expiry); insertion order is expiry order for a monotonic now
        self._book: dict[bytes, tuple[bytes, int, float]] = {}

    def challenge(self, mailbox: bytes, epoch: int, now: float) -> ContactContext:
        """A fresh context for a sender to prove against, valid until ``now + ttl``."""
        self._expire(now)
        context = ContactContext(mailbox, epoch, self._rng(NONCE_SIZE))
        while len(self._book) >= self._max:
            del self._book[next(iter(self._book))]
        self._book[context.nonce] = (mailbox, epoch, now + self._ttl)
        return context

    def verify(
        self,
        proof: ContactProof,
        ring: ContactRing,
        context: ContactContext,
        now: float,
        *,
        linkable: bool = False,
    ) -> bytes | None:
        """Consume ``context``'s nonce and verify; returns the tag in linkable mode.

        Raises:
            ReplayedProofError: the nonce is unknown, expired, used, or for another mailbox/epoch.
            InvalidProofError: the proof does not verify.
        """
        self._expire(now)
        entry = self._book.pop(context.nonce, None)
        if entry is None or entry[:2] != (context.mailbox, context.epoch):
            raise ReplayedProofError("nonce not issued, expired or already used")
        return verify_contact(proof, ring, context, linkable=linkable)

    def outstanding(self) -> int:
        """How many issued nonces are still waiting for a proof."""
        return len(self._book)

    def _expire(self, now: float) -> None:
        while self._book:
            nonce, (_, _, expiry) = next(iter(self._book.items()))
            if expiry > now:
                return
            del self._book[nonce]
