"""Blind tokens: issue, unblind, store, redeem once; every refusal has its typed error."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from dchat_core import canonical_decode, canonical_encode
from dchat_privacy import (
    BadTokenError,
    ExpiredTokenError,
    PendingTokens,
    SpentTokenError,
    Token,
    TokenIssuer,
    TokenIssuerKey,
    TokenRedeemer,
    TokenWallet,
    UnknownKeyError,
    request_tokens,
)
from dchat_privacy.lowlevel import (
    BlindInputError,
    SpentSetFullError,
    TokenKey,
    TokenMessageError,
    decode_token_issuance,
    decode_token_request,
    token_hash,
)

RELAY = bytes(range(32))
OTHER_RELAY = bytes(32)


@pytest.fixture(scope="module")
def issuer_key() -> TokenIssuerKey:
    return TokenIssuerKey.generate(epoch=10)


@pytest.fixture(scope="module")
def tokens(issuer_key: TokenIssuerKey) -> list[Token]:
    return _issue(issuer_key, RELAY, 4)


def _issue(key: TokenIssuerKey, redeemer: bytes, count: int) -> list[Token]:
    public = TokenKey.from_bytes(key.public.to_bytes())
    request, pending = request_tokens(public, redeemer, count, b"transfer:42")
    seen = decode_token_request(request.to_bytes())
    assert seen == request
    assert seen.payment_ref == b"transfer:42"
    answer = TokenIssuer([key]).issue(seen, epoch=key.epoch)
    return pending.finalize(answer.to_bytes())


def _redeemer(key: TokenIssuerKey, **kwargs: int) -> TokenRedeemer:
    redeemer = TokenRedeemer(RELAY, epoch=kwargs.pop("epoch", key.epoch), **kwargs)
    redeemer.add_key(key.public)
    return redeemer


def test_a_token_redeems_once(issuer_key: TokenIssuerKey, tokens: list[Token]) -> None:
    redeemer = _redeemer(issuer_key)
    first = redeemer.redeem(tokens[0].redemption())
    assert first.key_id == issuer_key.public.key_id
    assert first.epoch == 10
    assert first.token_hash == token_hash(first.key_id, tokens[0].prefix, tokens[0].nonce)
    with pytest.raises(SpentTokenError) as info:
        redeemer.redeem(tokens[0].redemption())
    assert info.value.code == "spent"
    redeemer.redeem(tokens[1].redemption())
    assert redeemer.spent_count(10) == 2


def test_key_id_is_the_hash_of_the_public_key(issuer_key: TokenIssuerKey) -> None:
    import hashlib

    public = issuer_key.public
    assert public.key_id == hashlib.sha256(public.spki).digest()
    assert TokenKey.from_bytes(public.to_bytes()).key_id == public.key_id
    loaded = TokenIssuerKey.from_bytes(issuer_key.to_bytes())
    assert loaded.public.key_id == public.key_id
    assert loaded.epoch == issuer_key.epoch
    assert "private_key" not in repr(issuer_key)


def test_a_restarted_redeemer_still_refuses_spent_tokens(
    issuer_key: TokenIssuerKey, tokens: list[Token]
) -> None:
    saved = _redeemer(issuer_key).redeem(tokens[2].redemption())
    restarted = _redeemer(issuer_key)
    restarted.load_spent(saved.epoch, [saved.token_hash])
    with pytest.raises(SpentTokenError):
        restarted.redeem(tokens[2].redemption())


def test_forged_and_tampered_tokens_are_bad(
    issuer_key: TokenIssuerKey, tokens: list[Token]
) -> None:
    redeemer = _redeemer(issuer_key)
    token = tokens[3]
    for changed in (
        replace(token, nonce=os.urandom(32)),
        replace(token, prefix=os.urandom(32)),
        replace(token, signature=bytes([token.signature[0] ^ 1]) + token.signature[1:]),
        replace(token, signature=token.signature[:-1]),
        replace(token, signature=tokens[0].signature),
    ):
        with pytest.raises(BadTokenError) as info:
            redeemer.redeem(changed.redemption())
        assert str(info.value) == "bad token"
        assert info.value.code == "bad_token"
    blob = bytearray(token.redemption())
    for index in (0, 5, len(blob) // 2, len(blob) - 1):
        tampered = bytearray(blob)
        tampered[index] ^= 0x01
        with pytest.raises((BadTokenError, UnknownKeyError)):
            redeemer.redeem(bytes(tampered))
    assert redeemer.spent_count(10) == 0
    redeemer.redeem(token.redemption())  # the untouched token still works


def test_a_token_bound_to_another_relay_is_bad_here(issuer_key: TokenIssuerKey) -> None:
    [elsewhere] = _issue(issuer_key, OTHER_RELAY, 1)
    with pytest.raises(BadTokenError):
        _redeemer(issuer_key).redeem(elsewhere.redemption())
    other = TokenRedeemer(OTHER_RELAY, epoch=10)
    other.add_key(issuer_key.public)
    other.redeem(elsewhere.redemption())


def test_unknown_key_and_expiry(issuer_key: TokenIssuerKey, tokens: list[Token]) -> None:
    stranger = TokenRedeemer(RELAY, epoch=10)
    with pytest.raises(UnknownKeyError) as unknown:
        stranger.redeem(tokens[0].redemption())
    assert unknown.value.code == "unknown_key"
    too_early = _redeemer(issuer_key, epoch=9)
    with pytest.raises(ExpiredTokenError):
        too_early.redeem(tokens[0].redemption())
    redeemer = _redeemer(issuer_key, window=1)
    redeemer.redeem(tokens[0].redemption())
    redeemer.advance(11)  # still in the window: spent stays spent
    with pytest.raises(SpentTokenError):
        redeemer.redeem(tokens[0].redemption())
    redeemer.redeem(tokens[1].redemption())
    redeemer.advance(12)  # out of the window: the key and its spent set are gone
    assert redeemer.spent_count(10) == 0
    with pytest.raises(ExpiredTokenError) as expired:
        redeemer.redeem(tokens[0].redemption())
    assert expired.value.code == "expired"
    redeemer.advance(5)  # epochs never go back
    assert redeemer.epoch == 12


def test_spent_sets_are_bounded(issuer_key: TokenIssuerKey, tokens: list[Token]) -> None:
    redeemer = _redeemer(issuer_key, max_spent_per_epoch=2)
    redeemer.redeem(tokens[0].redemption())
    redeemer.redeem(tokens[1].redemption())
    with pytest.raises(SpentSetFullError):
        redeemer.redeem(tokens[2].redemption())
    with pytest.raises(SpentTokenError):
        redeemer.redeem(tokens[0].redemption())


def test_issuer_signs_only_with_the_current_known_key(issuer_key: TokenIssuerKey) -> None:
    request, _ = request_tokens(issuer_key.public, RELAY, 2, b"ref")
    with pytest.raises(UnknownKeyError):
        TokenIssuer([]).issue(request, epoch=10)
    with pytest.raises(ExpiredTokenError):
        TokenIssuer([issuer_key]).issue(request, epoch=11)
    wrong_size = replace(request, blinded=(bytes(300),))
    with pytest.raises(TokenMessageError):
        TokenIssuer([issuer_key]).issue(wrong_size, epoch=10)


def test_client_refuses_a_bad_issuance(issuer_key: TokenIssuerKey) -> None:
    request, pending = request_tokens(issuer_key.public, RELAY, 2, b"ref")
    answer = TokenIssuer([issuer_key]).issue(request, epoch=10)
    sigs = answer.blind_signatures
    swapped = replace(answer, blind_signatures=(sigs[1], sigs[0]))
    with pytest.raises(BadTokenError):
        pending.finalize(swapped.to_bytes())
    with pytest.raises(TokenMessageError):
        pending.finalize(replace(answer, blind_signatures=sigs[:1]).to_bytes())
    with pytest.raises(TokenMessageError):
        pending.finalize(replace(answer, key_id=bytes(32)).to_bytes())
    assert len(pending.finalize(answer.to_bytes())) == 2
    assert isinstance(pending, PendingTokens)


def test_pending_state_kept_as_bytes_finishes_the_purchase_and_only_for_its_key(
    issuer_key: TokenIssuerKey,
) -> None:
    """A client that stored its pending state before paying can finish after a restart."""
    request, pending = request_tokens(issuer_key.public, RELAY, 3, b"ref")
    kept = PendingTokens.from_bytes(pending.to_bytes())
    assert kept == pending
    answer = TokenIssuer([issuer_key]).issue(request, epoch=10)
    tokens = kept.finalize(answer.to_bytes())
    assert [t.redemption() for t in tokens] == [
        t.redemption() for t in pending.finalize(answer.to_bytes())
    ]
    # An item moved under another redeemer or key is refused when read back.
    fields = canonical_decode(pending.to_bytes())
    with pytest.raises(TokenMessageError):
        PendingTokens.from_bytes(canonical_encode({**fields, "r": OTHER_RELAY}))
    other = TokenIssuerKey.generate(epoch=11).public.to_bytes()
    with pytest.raises(TokenMessageError):
        PendingTokens.from_bytes(canonical_encode({**fields, "k": other}))
    with pytest.raises(TokenMessageError):
        PendingTokens.from_bytes(canonical_encode({**fields, "i": []}))


def test_request_arguments_are_checked(issuer_key: TokenIssuerKey) -> None:
    for count, redeemer, ref in (
        (0, RELAY, b""),
        (65, RELAY, b""),
        (1, b"x", b""),
        (1, RELAY, bytes(257)),
    ):
        with pytest.raises(BlindInputError):
            request_tokens(issuer_key.public, redeemer, count, ref)


def test_wallet_keeps_takes_and_expires(issuer_key: TokenIssuerKey, tokens: list[Token]) -> None:
    later = [replace(token, epoch=12) for token in tokens[:2]]
    wallet = TokenWallet(later + tokens)
    loaded = TokenWallet.from_bytes(wallet.to_bytes())
    assert len(loaded) == 6
    assert loaded.count(RELAY) == 6
    assert loaded.count(OTHER_RELAY) == 0
    assert loaded.take(OTHER_RELAY, oldest_epoch=0) is None
    first = loaded.take(RELAY, oldest_epoch=0)
    assert first is not None
    assert first.epoch == 10  # the oldest goes first
    assert loaded.drop_expired(11) == 3
    reloaded = TokenWallet.from_bytes(loaded.to_bytes())
    assert len(reloaded) == 2
    kept = [reloaded.take(RELAY, oldest_epoch=0) for _ in range(2)]
    assert [token.epoch for token in kept if token is not None] == [12, 12]
    assert reloaded.take(RELAY, oldest_epoch=0) is None
    assert "signature" not in repr(tokens[0])


def test_decoders_refuse_malformed_messages(issuer_key: TokenIssuerKey) -> None:
    request, _ = request_tokens(issuer_key.public, RELAY, 1, b"ref")
    good = canonical_decode(request.to_bytes())
    for bad in (
        {**good, "x": 1},
        {**good, "v": 2},
        {**good, "b": []},
        {**good, "b": [bytes(300), bytes(301)]},
        {**good, "b": [bytes(100)]},
        {**good, "b": [bytes(256)] * 65},
        {**good, "k": bytes(31)},
        {**good, "p": bytes(257)},
    ):
        with pytest.raises(TokenMessageError):
            decode_token_request(canonical_encode(bad))
    with pytest.raises(TokenMessageError):
        decode_token_issuance(canonical_encode({"v": 1, "k": bytes(32), "s": [1]}))
    with pytest.raises(TokenMessageError):
        TokenKey.from_bytes(canonical_encode({"v": 1, "e": 1, "k": b"not a key"}))
