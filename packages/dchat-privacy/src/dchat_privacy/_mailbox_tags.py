"""Rotating mailbox tags: which mailbox a contact writes to in each epoch (sans-IO).

Theory of operation
-------------------
A mailbox id that never changes lets a relay link all the mail one person
receives. Instead, the recipient gives each contact a 32-byte *tag secret*
(end to end, once); time is cut into epochs of :data:`TAG_EPOCH` seconds, and
mail from that contact in epoch ``e`` goes to a mailbox derived from
``tag_seed(secret, e)``. Without the secret, two epochs' tags (or two
contacts' tags in one epoch) are unrelated pseudorandom values: a relay that
stores them cannot tell they belong to one recipient.

The seed is ``HKDF-SHA256(ikm=secret, salt="", info="dchat-mailbox-tag-v1" ||
u64be(e), length=32)``; the messaging layer makes it an Ed25519 key whose
:class:`~dchat_core.MailboxId` is the tag, so the recipient proves the right
to drain it exactly as for any mailbox (the link handshake proves the key).

:class:`TagSchedule` says which epochs the recipient watches: the *live*
window ``e-1, e, e+1`` (a sender's clock may be an epoch off either way, and
mail sealed just before a boundary arrives just after it), and the *catch-up*
epochs it was not watching (offline) since the last epoch it had drained,
at most ``max_catch_up`` seconds back (the relays' retention: older mail is gone).

A sender whose clock is more than an epoch *behind* writes to an epoch that
has already left the live window (and been drained once): the *skew sweep*
(:meth:`TagSchedule.sweep`) drains again, every ``skew_sweep`` (4 h), the
epochs up to ``skew_band`` (16 h) behind the live window. A sender
*ahead* needs nothing: its epoch becomes live later and is drained then.
Time is a parameter; nothing here reads a clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from dchat_core import CallerError

from ._padding import DchatPrivacyError

__all__ = (
    "MAX_CATCH_UP",
    "MAX_TAG_EPOCH",
    "TAG_EPOCH",
    "TAG_SECRET_SIZE",
    "TagInputError",
    "TagSchedule",
    "tag_seed",
    "tag_token",
)

TAG_EPOCH: Final = 3600
"""Seconds per tag epoch: how long one contact's mail shares one tag."""
TAG_SECRET_SIZE: Final = 32
MAX_TAG_EPOCH: Final = 7 * 86400
"""The longest epoch a recipient may choose (a week)."""
MAX_CATCH_UP: Final = 30 * 86400
"""Seconds back a returning recipient drains at most: 30 days, the relays' default mailbox TTL."""
SKEW_BAND: Final = 16 * 3600
"""How far (seconds) behind the live window the skew sweep reaches: a clock set to
the wrong time zone (up to 14 h off) still gets through."""
SKEW_SWEEP: Final = 4 * 3600
"""Seconds between two skew sweeps: the most that mail from a slow clock waits."""
_INFO: Final = b"dchat-mailbox-tag-v1"
_U64: Final = 2**64


class TagInputError(DchatPrivacyError, CallerError, ValueError):
    """A tag secret of the wrong size, or an epoch outside ``0..2**64-1``."""


def tag_seed(secret: bytes, epoch: int) -> bytes:
    """The 32-byte seed of the tag key for ``epoch`` (see the module docstring).

    Raises:
        TagInputError: ``secret`` is not :data:`TAG_SECRET_SIZE` bytes, or
            ``epoch`` is not a u64.
    """
    if not isinstance(secret, bytes) or len(secret) != TAG_SECRET_SIZE:
        raise TagInputError(f"a tag secret is {TAG_SECRET_SIZE} bytes")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < _U64:
        raise TagInputError("a tag epoch is a u64")
    info = _INFO + epoch.to_bytes(8, "big")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def tag_token(secret: bytes, epoch: int) -> bytes:
    """The 16-byte put token of the tag for ``epoch``: a contact attaches it to deposits there.

    ``HKDF-SHA256(ikm=secret, salt="", info="dchat-mailbox-tag-token-v1" || u64be(epoch))``:
    another value of every epoch, so a relay that sees it links nothing.

    Raises:
        TagInputError: as :func:`tag_seed`.
    """
    tag_seed(secret, epoch)  # the same checks
    info = b"dchat-mailbox-tag-token-v1" + epoch.to_bytes(8, "big")
    return HKDF(algorithm=hashes.SHA256(), length=16, salt=None, info=info).derive(secret)


@dataclass(frozen=True, slots=True)
class TagSchedule:
    """The epochs of tags to write to and to watch, as a function of time.

    Args:
        epoch_seconds: Length of an epoch, 1 to :data:`MAX_TAG_EPOCH`.
        max_catch_up: How far back (seconds) a returning recipient drains at most.
        skew_band: How far (seconds) behind the live window the skew sweep reaches.
        skew_sweep: Seconds between two skew sweeps (rounded up to whole epochs).

    Raises:
        TagInputError: a length out of range.
    """

    epoch_seconds: int = TAG_EPOCH
    max_catch_up: int = MAX_CATCH_UP
    skew_band: int = SKEW_BAND
    skew_sweep: int = SKEW_SWEEP

    def __post_init__(self) -> None:
        if isinstance(self.epoch_seconds, bool) or not isinstance(self.epoch_seconds, int):
            raise TagInputError("an epoch is a whole number of seconds")
        if not 1 <= self.epoch_seconds <= MAX_TAG_EPOCH or self.max_catch_up < 0:
            raise TagInputError("an epoch lasts 1 s to a week; catch-up is not negative")
        if self.skew_band < 0 or self.skew_sweep < 1:
            raise TagInputError("the skew band is not negative; sweeps are at least 1 s apart")

    def epoch(self, now: float) -> int:
        """The epoch ``now`` (seconds since the Unix epoch) falls in: senders use it."""
        if not math.isfinite(now) or now < 0:
            raise TagInputError("a time is a finite, non-negative number of seconds")
        return int(now // self.epoch_seconds)

    def live(self, now: float) -> range:
        """The epochs the recipient keeps watching: the current one and one either side."""
        e = self.epoch(now)
        return range(max(0, e - 1), e + 2)

    def catch_up(self, now: float, drained_before: int) -> range:
        """The past epochs still to drain once, oldest first.

        Args:
            now: The time.
            drained_before: Every epoch before it has been drained (the
                recipient's durable mark).
        """
        first_live = self.live(now).start
        back = -(-self.max_catch_up // self.epoch_seconds)  # epochs, rounded up
        start = max(drained_before, first_live - back, 0)
        return range(start, max(start, first_live))

    def sweep(self, now: float) -> tuple[range, float]:
        """A skew sweep started at ``now``: the epochs to drain again, and when the next is due.

        The epochs are those up to :attr:`skew_band` seconds behind the live
        window (never further back than catch-up reaches); the next sweep is
        due at an epoch boundary (the shell re-reads the tags there).
        """
        first_live = self.live(now).start
        band = -(-min(self.skew_band, self.max_catch_up) // self.epoch_seconds)
        every = -(-self.skew_sweep // self.epoch_seconds)
        start = max(0, first_live - band)
        return range(start, first_live), float((self.epoch(now) + every) * self.epoch_seconds)

    def next_change(self, now: float) -> float:
        """When :meth:`live` next changes (the start of the next epoch)."""
        return float((self.epoch(now) + 1) * self.epoch_seconds)
