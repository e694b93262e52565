"""A buyer's paid purchases survive a lost answer and a restart; a payment still buys once."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import canonical_decode, canonical_encode
from dchat_network.lowlevel import (
    PendingPurchase,
    PurchaseBookError,
    TokenOffer,
    TokenPurchases,
    buy_request,
    purchase_ref,
)
from dchat_privacy import PendingTokens

from .test_token_shop import NOW, PAYEE, RELAY, MemoryTokenStore, new_shop

RELAY_TEXT = "relay.example:4000"


def purchase(ref: bytes = b"r" * 32, since: int = 1000, **changes: object) -> PendingPurchase:
    fields: dict[str, object] = {
        "relay": RELAY_TEXT, "ref": ref, "request": b"req", "pending": b"secret",
        "amount": 6, "tx": "ab" * 32, "since": since,
    }  # fmt: skip
    fields.update(changes)
    return PendingPurchase(**fields)  # type: ignore[arg-type]


def test_an_answer_lost_after_payment_is_fetched_again_after_a_restart_once() -> None:
    store = MemoryTokenStore()
    shop = new_shop(store)
    offer = TokenOffer.from_bytes(shop.offer(NOW).to_bytes(), PAYEE)
    request, pending = buy_request(offer.key, RELAY, 2)
    ref = purchase_ref(request)
    book = TokenPurchases()
    book.add(purchase(ref, int(NOW), request=request.to_bytes(), pending=pending.to_bytes()))
    kept = book.to_bytes()  # written before paying
    shop.sell(request.to_bytes(), (PAYEE, 6), NOW)  # paid and signed; the answer is lost
    # The buyer's node restarts (its memory gone); the relay restarts too.
    book = TokenPurchases.from_bytes(kept)
    restarted = new_shop(store)
    (due,) = book.due(NOW)
    answer = restarted.sell(due.request, (PAYEE, 6), NOW)
    tokens = PendingTokens.from_bytes(due.pending).finalize(answer)
    book.finish(due.ref)
    assert len(book) == 0
    assert [restarted.redeem(t.redemption(), NOW) for t in tokens] == [None, None]
    assert restarted.counts["sold"] == 0  # the restarted relay sold nothing new
    assert restarted.counts["resent"] == 2


def test_retried_refusals_keep_a_purchase_and_final_ones_give_it_up() -> None:
    book = TokenPurchases()
    for i in range(4):
        book.add(purchase(bytes([i]) * 32, since=1000 + i))
    assert book.refused(b"\x00" * 32, "unpaid")  # the relay's light client lags
    assert book.refused(b"\x00" * 32, None)  # no answer at all
    assert book.refused(b"\x01" * 32, "chain_unreachable")
    assert not book.refused(b"\x02" * 32, "expired")
    assert not book.refused(b"\x03" * 32, "bad_token")
    assert not book.refused(b"\x09" * 32, "unpaid")  # not in the book
    assert [p.ref[0] for p in book.due(1010)] == [0, 1]
    assert [(p.ref[0], why) for p, why in book.given_up] == [(2, "expired"), (3, "bad_token")]


def test_a_purchase_kept_past_its_time_is_given_up() -> None:
    book = TokenPurchases(keep_for=100.0)
    book.add(purchase(b"a" * 32, since=1000))
    book.add(purchase(b"b" * 32, since=1050))
    assert [p.ref for p in book.due(1101)] == [b"b" * 32]
    assert [(p.ref, why) for p, why in book.given_up] == [(b"a" * 32, "expired")]
    assert book.listing() == [{"relay": RELAY_TEXT, "paid": 6, "tx": "ab" * 32, "since": 1050}]


def test_the_book_is_bounded() -> None:
    book = TokenPurchases()
    for i in range(64):
        book.add(purchase(i.to_bytes(32, "big")))
    book.add(purchase((0).to_bytes(32, "big")))  # the same one again: no growth
    with pytest.raises(OverflowError):
        book.add(purchase((64).to_bytes(32, "big")))


def test_the_stored_form_round_trips_and_refuses_bad_entries() -> None:
    book = TokenPurchases()
    book.add(purchase(b"a" * 32, since=1000))
    again = TokenPurchases.from_bytes(book.to_bytes())
    assert again.due(1000) == book.due(1000)
    (row,) = canonical_decode(book.to_bytes())["p"]
    for bad in ([*row[:1], b"short", *row[2:]], row[:6], [*row[:4], -1, *row[5:]]):
        with pytest.raises(PurchaseBookError):
            TokenPurchases.from_bytes(canonical_encode({"v": 1, "p": [bad]}))


def _sample() -> bytes:
    book = TokenPurchases()
    book.add(purchase())
    return book.to_bytes()


@st.composite
def hostile(draw: st.DrawFn) -> bytes:
    """Random bytes, or a stored book with a few bytes changed or cut."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=400))
    blob = bytearray(_sample())
    for _ in range(draw(st.integers(1, 3))):
        blob[draw(st.integers(0, len(blob) - 1))] = draw(st.integers(0, 255))
    return bytes(blob[: draw(st.integers(0, len(blob)))])


@settings(max_examples=100, deadline=None)
@given(hostile())
def test_hostile_stored_bytes_give_only_the_typed_error(data: bytes) -> None:
    with contextlib.suppress(PurchaseBookError):
        TokenPurchases.from_bytes(data)
