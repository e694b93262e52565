"""SLIP-0039 shares through shamir-mnemonic: the official vectors and our wrapper."""

from __future__ import annotations

import hashlib
import hmac
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_identity import IdentityArgumentError
from dchat_identity.lowlevel import InvalidShareError, combine_shares, split_secret

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _base58check(payload: bytes) -> str:
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    number, text = int.from_bytes(data, "big"), ""
    while number:
        number, digit = divmod(number, 58)
        text = _B58[digit] + text
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + text


def _bip32_master_xprv(secret: bytes) -> str:
    # BIP-32 master node: only HMAC-SHA512 and serialisation, no curve arithmetic.
    digest = hmac.new(b"Bitcoin seed", secret, hashlib.sha512).digest()
    payload = bytes.fromhex("0488ade4") + bytes(9) + digest[32:] + b"\0" + digest[:32]
    return _base58check(payload)


def test_slip0039_vectors(vectors) -> None:
    cases = json.loads((vectors / "slip0039" / "vectors.json").read_text())
    valid = invalid = 0
    for description, mnemonics, secret_hex, xprv in cases:
        if secret_hex:
            secret = combine_shares(mnemonics, b"TREZOR")
            assert secret.hex() == secret_hex, description
            assert _bip32_master_xprv(secret) == xprv, description
            valid += 1
        else:
            with pytest.raises(InvalidShareError):
                combine_shares(mnemonics, b"TREZOR")
            invalid += 1
    print(f"SLIP-0039: {valid} valid and {invalid} invalid cases passed ({len(cases)} in all)")
    assert (valid, invalid) == (15, 30)


def test_any_three_of_five_recover_and_two_do_not() -> None:
    secret = os.urandom(32)
    shares = split_secret(secret, 3, 5)
    assert len(shares) == 5
    for trio in [(0, 1, 2), (0, 2, 4), (4, 3, 1), (1, 2, 3)]:
        assert combine_shares([shares[i] for i in trio]) == secret
    with pytest.raises(InvalidShareError):  # SLIP-0039 wants exactly the threshold
        combine_shares(shares)
    for pair in [(0, 1), (3, 4)]:
        with pytest.raises(InvalidShareError):
            combine_shares([shares[i] for i in pair])


def test_shares_of_two_splits_do_not_mix() -> None:
    a, b = split_secret(os.urandom(32), 2, 3), split_secret(os.urandom(32), 2, 3)
    with pytest.raises(InvalidShareError):
        combine_shares([a[0], b[1]])


def test_a_mistyped_word_is_caught() -> None:
    shares = split_secret(os.urandom(32), 2, 3)
    words = shares[0].split()
    words[5] = "academic" if words[5] != "academic" else "acid"
    with pytest.raises(InvalidShareError) as info:
        combine_shares([" ".join(words), shares[1]])
    # The library's message quotes share words; ours must not.
    assert not any(word in str(info.value).split() for word in shares[1].split())


@pytest.mark.parametrize(("m", "n"), [(1, 3), (4, 3), (2, 17), (0, 0), (True, 3)])
def test_bad_thresholds_are_refused(m: int, n: int) -> None:
    with pytest.raises(IdentityArgumentError):
        split_secret(os.urandom(32), m, n)


@settings(max_examples=100)
@given(st.lists(st.text(max_size=200), max_size=4))
def test_garbage_shares_are_a_typed_error(mnemonics: list[str]) -> None:
    with pytest.raises(InvalidShareError):
        combine_shares(mnemonics)
