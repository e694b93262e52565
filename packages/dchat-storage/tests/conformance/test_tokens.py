"""TokenRepo: a relay's paid-token state, on every backend."""

from __future__ import annotations

from collections.abc import Callable

from dchat_storage import Database


def test_a_payment_buys_once_and_a_token_is_spent_once_across_a_reopen(
    db: Database, reopen: Callable[[], Database]
) -> None:
    assert db.tokens.use_payment(b"p" * 32, 1.0)
    assert not db.tokens.use_payment(b"p" * 32, 2.0)
    assert db.tokens.spend_token(7, b"a" * 32)
    assert not db.tokens.spend_token(7, b"a" * 32)
    db.tokens.spend_token(5, b"b" * 32)
    db.tokens.keep_token_key(5, b"old key")
    db.tokens.keep_token_key(7, b"sealed key")
    db.tokens.keep_token_key(7, b"another")  # one per epoch: the first stays
    again = reopen()
    assert not again.tokens.use_payment(b"p" * 32, 3.0)
    assert not again.tokens.spend_token(7, b"a" * 32)
    assert again.tokens.token_keys() == [(5, b"old key"), (7, b"sealed key")]
    assert sorted(again.tokens.spent_tokens(6)) == [(7, b"a" * 32)]
    again.tokens.forget_tokens(6)
    assert again.tokens.token_keys() == [(7, b"sealed key")]
    assert sorted(again.tokens.spent_tokens(0)) == [(7, b"a" * 32)]
    assert not again.tokens.use_payment(b"p" * 32, 4.0)  # used payments are never forgotten
