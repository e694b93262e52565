"""A buyer's paid token purchases whose signatures have not come yet (sans-IO).

Theory of operation: buying tokens from a relay (protocol §40) is two steps,
a payment on the currency chain and then the relay's blind signatures. If
the relay goes down, or the buyer's node stops, between the two, the
payment is made and the blinding secrets that turn the signatures into
tokens would be lost with the process. So a buyer records the purchase
(:class:`PendingPurchase`: the relay, the request, the sealed-at-rest
secret state, the amount and the transfer) *before* it pays, keeps the
record while the answer is missing and asks again later. A relay answers a
request it already sold with the same signatures (deterministic RSA), so
asking again never buys twice.

:class:`TokenPurchases` is the book of those records: which to ask again
(:meth:`due`), which answers end a purchase (:meth:`finish` when signed,
:meth:`refused` when the relay's code is final) and how long one is kept
(``keep_for``: a payment that was never committed is ``unpaid`` for ever).
It reads no clock and does no I/O; the caller stores :meth:`to_bytes`
(sealed: it holds blinding secrets).

Errors::

    PurchaseBookError(DchatNetworkError, DecodeError)   stored bytes that do not decode
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode, canonical_encode

from ._errors import DchatNetworkError

__all__ = ("RETRIED_CODES", "PendingPurchase", "PurchaseBookError", "TokenPurchases")

RETRIED_CODES: Final = frozenset({"unpaid", "chain_unreachable", "busy"})
"""Refusals that may pass later: the relay's light client lags, or it is loaded."""
KEEP_FOR: Final = 7 * 86_400.0
MAX_PENDING: Final = 64
_FIELDS: Final[frozenset[str | int]] = frozenset({"v", "p"})
_LIMITS: Final = DecodeLimits(max_size=6 * 1024 * 1024, max_depth=3, max_items=2 * MAX_PENDING * 8)


class PurchaseBookError(DchatNetworkError, DecodeError):
    """The stored purchase book does not decode."""


@dataclass(frozen=True, slots=True)
class PendingPurchase:
    """One paid (or being paid) request whose blind signatures have not come.

    Attributes:
        relay: The relay as ``NODEID@HOST:PORT`` (the node id it was bought from).
        ref: The request's purchase reference (the transfer's ``ref``).
        request: The token request's bytes (sent again as is).
        pending: ``PendingTokens.to_bytes()``: the blinding secrets.
        amount: What was paid.
        tx: The transfer's hash (hex).
        since: When it was recorded (whole seconds).
    """

    relay: str
    ref: bytes
    request: bytes
    pending: bytes
    amount: int
    tx: str
    since: int


class TokenPurchases:
    """Purchases waiting for their signatures (see the module docstring)."""

    def __init__(self, keep_for: float = KEEP_FOR) -> None:
        self.keep_for = keep_for
        self._items: dict[bytes, PendingPurchase] = {}
        self.given_up: list[tuple[PendingPurchase, str]] = []
        """Purchases dropped since the caller last looked, with why (for its log)."""

    def __len__(self) -> int:
        return len(self._items)

    def add(self, purchase: PendingPurchase) -> None:
        """Record ``purchase`` (before paying). Raises ``OverflowError`` past 64 waiting."""
        if purchase.ref not in self._items and len(self._items) >= MAX_PENDING:
            raise OverflowError("too many purchases wait for their tokens")
        self._items[purchase.ref] = purchase

    def finish(self, ref: bytes) -> None:
        """The purchase ``ref`` got its tokens (or was never paid): forget it."""
        self._items.pop(ref, None)

    def refused(self, ref: bytes, code: str | None) -> bool:
        """The relay refused ``ref`` with ``code`` (None: no answer); True if it is kept."""
        purchase = self._items.get(ref)
        if purchase is None:
            return False
        if code is None or code in RETRIED_CODES:
            return True
        del self._items[ref]
        self.given_up.append((purchase, code))
        return False

    def due(self, now: float) -> list[PendingPurchase]:
        """The purchases to ask for again, oldest first; those kept too long are given up."""
        for ref, purchase in list(self._items.items()):
            if now - purchase.since > self.keep_for:
                del self._items[ref]
                self.given_up.append((purchase, "expired"))
        return sorted(self._items.values(), key=lambda p: p.since)

    def listing(self) -> list[dict[str, object]]:
        """What ``GET /v1/tokens`` shows of each: relay, amount paid, transfer, since when."""
        return [
            {"relay": p.relay, "paid": p.amount, "tx": p.tx, "since": p.since}
            for p in sorted(self._items.values(), key=lambda p: p.since)
        ]

    def to_bytes(self) -> bytes:
        """Canonical CBOR ``{"v": 1, "p": [[relay, ref, request, pending, amount, tx, since]]}``."""
        rows = [
            [p.relay, p.ref, p.request, p.pending, p.amount, p.tx, p.since]
            for p in self._items.values()
        ]
        return canonical_encode({"v": 1, "p": rows})

    @classmethod
    def from_bytes(cls, data: bytes, keep_for: float = KEEP_FOR) -> TokenPurchases:
        """Decode :meth:`to_bytes`.

        Raises:
            PurchaseBookError: malformed.
        """
        try:
            fields = Fields(canonical_decode(data, _LIMITS), "token purchases", _FIELDS)
            fields.get_int("v", lo=1, hi=1)
            rows = fields.get_list("p", max_len=MAX_PENDING)
        except DecodeError as exc:
            raise PurchaseBookError(str(exc)) from None
        book = cls(keep_for)
        for row in rows:
            if not (isinstance(row, list) and len(row) == 7):
                raise PurchaseBookError("token purchases: bad entry")
            relay, ref, request, pending, amount, tx, since = row
            if not (
                isinstance(relay, str)
                and isinstance(ref, bytes)
                and len(ref) == 32
                and isinstance(request, bytes)
                and isinstance(pending, bytes)
                and isinstance(amount, int)
                and amount >= 0
                and isinstance(tx, str)
                and isinstance(since, int)
                and since >= 0
            ):
                raise PurchaseBookError("token purchases: bad entry")
            book._items[ref] = PendingPurchase(relay, ref, request, pending, amount, tx, since)
        return book
