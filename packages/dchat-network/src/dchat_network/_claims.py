"""A relay's automatic receipt claims, sans-IO: when to seal and claim, the fee budget, retries.

Theory of operation
-------------------
A relay earns for proven deliveries only once it claims its sealed receipt
batches on the chat chain (``receipt_batch {root, count}``) and validators'
audits of the claimed batch pass (see :mod:`._prober`). :class:`ClaimPolicy`
decides when; the trio loop :func:`~dchat_network.run_claims` asks it, submits
and reports the outcome. Nothing here reads a clock: every call takes ``now``.

* **When.** At most one claim per ``interval`` seconds (counted from the last
  successful claim, or from start-up when there was none): validators audit
  only a relay's *last* claimed batch and count a batch once it passed several
  of their audits, so a claim that replaced its predecessor too soon would
  forfeit it. When a claim is due, the oldest sealed but unclaimed batch is
  claimed first (a claim that failed, or a seal taken before a restart);
  otherwise the pending receipts are sealed into a new batch, if they cover
  at least ``min_entries`` envelopes.
* **Fees.** Each claim pays ``fee``; the claims of any 24 hours pay at most
  ``fee_budget`` in all (0: no claims). A claim the budget does not allow
  waits.
* **Retries.** A failed submission (no validator, a refusal) is retried
  after ``retry`` seconds, doubling up to ``interval``; a success resets it.
  A claim counts as made once it is committed (the node's ``submit`` waits
  for that, within the loop's timeout): only then may the book drop the
  batch it supersedes, which probers keep auditing until the new claim is on
  chain. A claim committed after the wait timed out is claimed again: the
  chain then holds the root twice, which costs a fee and earns nothing more
  (probers count a root once).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path  # noqa: TC003 (resolved at runtime by the node's pydantic config)
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ._receipts import ReceiptBatch, ReceiptBook

__all__ = ("DAY", "ClaimPolicy", "ClaimSettings")

DAY: Final = 86_400.0


@dataclass(frozen=True, slots=True)
class ClaimSettings:
    """A relay's automatic claims (``[node.relay_claims]``).

    Attributes:
        enabled: Claim automatically (needs ``chat_node``: the chat validator to submit to).
        interval: Seconds between claims at least.
        min_entries: Receipted envelopes a new batch must cover to be claimed.
        fee: The chat-chain fee of one claim.
        fee_budget: Fees paid for claims within any 24 hours, at most.
        retry: Seconds before the first retry of a failed claim (doubling).
        wallet: The operator's key file that listed the relay (``relay register
            --wallet``; unlocked with the node passphrase); None: the relay's node key.
    """

    enabled: bool = True
    interval: float = 600.0
    min_entries: int = 1
    fee: int = 1
    fee_budget: int = 200
    retry: float = 15.0
    wallet: Path | None = None

    def __post_init__(self) -> None:
        if self.interval <= 0 or self.retry <= 0:
            raise ValueError("relay_claims: interval and retry must be positive")
        if min(self.min_entries, self.fee, self.fee_budget) < 0:
            raise ValueError("relay_claims: min_entries, fee and fee_budget must not be negative")


class ClaimPolicy:
    """When a relay claims its receipt batches (see the module doc).

    Args:
        settings: The claim settings.
        now: Start-up time (the first claim is due an ``interval`` after it,
            or after the book's last claim if that was later).
    """

    def __init__(self, settings: ClaimSettings, now: float) -> None:
        self.settings = settings
        self._last = now
        self._retry_at = float("-inf")
        self._backoff = 0.0
        self._paid: deque[tuple[float, int]] = deque()  # (when, fee) of the last day's claims
        self.claims = 0
        """Claims made since start."""
        self.failures = 0
        """Submissions that failed since start."""

    def _spent(self, now: float) -> int:
        while self._paid and self._paid[0][0] <= now - DAY:
            self._paid.popleft()
        return sum(fee for _, fee in self._paid)

    def due(self, book: ReceiptBook, now: float) -> ReceiptBatch | None:
        """The batch to claim now (sealing the pending receipts if need be), or None.

        Call it where the book's store may be used (the database worker).
        """
        s = self.settings
        last = max(self._last, book.last_claim() or self._last)
        if not s.enabled or now < last + s.interval or now < self._retry_at:
            return None
        if self._spent(now) + s.fee > s.fee_budget:
            return None
        unclaimed = book.unclaimed()
        if unclaimed:
            return unclaimed[0]
        if book.pending_entries < max(1, s.min_entries):
            return None
        return book.seal(now)

    def claimed(self, book: ReceiptBook, root: bytes, now: float) -> None:
        """The claim of batch ``root`` was admitted: note it (in the book and its store)."""
        book.claimed(root, now)
        self._last, self._backoff, self._retry_at = now, 0.0, float("-inf")
        self._paid.append((now, self.settings.fee))
        self.claims += 1

    def failed(self, now: float) -> None:
        """The claim's submission failed: retry later (backing off up to ``interval``)."""
        s = self.settings
        self._backoff = min(s.interval, max(s.retry, 2 * self._backoff))
        self._retry_at = now + self._backoff
        self.failures += 1

    def wait(self, now: float) -> float:
        """Seconds until :meth:`due` should be asked again (1 to ``interval``)."""
        s = self.settings
        at = max(self._last + s.interval, self._retry_at)
        return min(s.interval, max(1.0, at - now))
