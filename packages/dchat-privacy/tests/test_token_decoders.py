"""Every blind-token decoder is total: hostile bytes give a value or the documented typed error."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dchat_privacy import (
    BadTokenError,
    PendingTokens,
    SpentTokenError,
    TokenIssuer,
    TokenIssuerKey,
    TokenRedeemer,
    TokenWallet,
    UnknownKeyError,
    request_tokens,
)
from dchat_privacy.lowlevel import (
    TokenKey,
    TokenMessageError,
    decode_token_issuance,
    decode_token_request,
)

if TYPE_CHECKING:
    from collections.abc import Callable

RELAY = bytes(range(32))
KEY = TokenIssuerKey.generate(epoch=3)
REQUEST, PENDING = request_tokens(KEY.public, RELAY, 2, b"ref")
ISSUANCE = TokenIssuer([KEY]).issue(REQUEST, epoch=3)
TOKENS = PENDING.finalize(ISSUANCE.to_bytes())

SAMPLES: dict[str, bytes] = {
    "request": REQUEST.to_bytes(),
    "issuance": ISSUANCE.to_bytes(),
    "key": KEY.public.to_bytes(),
    "issuer_key": KEY.to_bytes(),
    "wallet": TokenWallet(TOKENS).to_bytes(),
    "redemption": TOKENS[0].redemption(),
    "pending": PENDING.to_bytes(),
}


def _redeem(data: bytes) -> object:
    redeemer = TokenRedeemer(RELAY, epoch=3)
    redeemer.add_key(KEY.public)
    return redeemer.redeem(data)


DECODERS: dict[str, tuple[Callable[[bytes], object], tuple[type[Exception], ...]]] = {
    "request": (decode_token_request, (TokenMessageError,)),
    "issuance": (decode_token_issuance, (TokenMessageError,)),
    "key": (TokenKey.from_bytes, (TokenMessageError,)),
    "issuer_key": (TokenIssuerKey.from_bytes, (TokenMessageError,)),
    "wallet": (TokenWallet.from_bytes, (TokenMessageError,)),
    "redemption": (_redeem, (BadTokenError, UnknownKeyError, SpentTokenError)),
    "finalize": (PENDING.finalize, (TokenMessageError, BadTokenError)),
    "pending": (PendingTokens.from_bytes, (TokenMessageError,)),
}
SAMPLES["finalize"] = SAMPLES["issuance"]


@st.composite
def hostile(draw: st.DrawFn, name: str) -> bytes:
    """Random bytes, or a valid sample with a few bytes changed, cut or appended."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=600))
    blob = bytearray(SAMPLES[name])
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(blob) - 1))
        blob[index] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(blob)))
    return bytes(blob[:cut] if draw(st.booleans()) else blob) + draw(st.binary(max_size=4))


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_valid_samples_decode(name: str) -> None:
    decode, _ = DECODERS[name]
    decode(SAMPLES[name])


@pytest.mark.parametrize("name", sorted(DECODERS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_bytes_give_only_the_typed_error(name: str, data: st.DataObject) -> None:
    decode, errors = DECODERS[name]
    blob = data.draw(hostile(name))
    with contextlib.suppress(*errors):
        decode(blob)
