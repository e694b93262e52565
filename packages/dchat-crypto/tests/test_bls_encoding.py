"""Decoding BLS public keys and signatures: only canonical, valid points get through."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import PeerError
from dchat_crypto import (
    BadSignatureError,
    BlsPublicKey,
    BlsSecretKey,
    BlsSignature,
    bls_aggregate,
    bls_verify,
)
from dchat_crypto.hazmat import BlsEncodingError, BlsUsageError, bls_fast_aggregate_verify

# The BLS12-381 base field modulus; G1 is y^2 = x^3 + 4 over it.
P = int(
    "1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f624"
    "1eabfffeb153ffffb9feffffffffaaab",
    16,
)
COMPRESSED, INFINITY, LARGEST_Y = 0x80, 0x40, 0x20
G1_INFINITY = b"\xc0" + bytes(47)
G2_INFINITY = b"\xc0" + bytes(95)
KEY = BlsSecretKey.from_seed(bytes(32))


def _g1_encoding(x: int, *, largest_y: bool) -> bytes:
    raw = bytearray(x.to_bytes(48, "big"))
    raw[0] |= COMPRESSED | (LARGEST_Y if largest_y else 0)
    return bytes(raw)


def _has_curve_point(x: int) -> bool:
    rhs = (x**3 + 4) % P
    y = pow(rhs, (P + 1) // 4, P)  # a square root when one exists (P = 3 mod 4)
    return y * y % P == rhs


def _next_x(x: int, *, on_curve: bool) -> int:
    while _has_curve_point(x) != on_curve:
        x = (x + 1) % P
    return x


class TestPublicKey:
    def test_infinity_is_not_a_public_key(self) -> None:
        with pytest.raises(BlsEncodingError) as info:
            BlsPublicKey.from_bytes(G1_INFINITY)
        assert isinstance(info.value, PeerError)
        assert isinstance(info.value, ValueError)

    @settings(deadline=None)
    @given(x=st.integers(min_value=0, max_value=P - 1), largest_y=st.booleans())
    def test_curve_points_outside_the_subgroup_are_refused(self, x: int, largest_y: bool) -> None:
        # The cofactor is about 2**126: a random curve point is never in G1.
        encoding = _g1_encoding(_next_x(x, on_curve=True), largest_y=largest_y)
        with pytest.raises(BlsEncodingError):
            BlsPublicKey.from_bytes(encoding)

    @settings(deadline=None)
    @given(x=st.integers(min_value=0, max_value=P - 1), largest_y=st.booleans())
    def test_points_off_the_curve_are_refused(self, x: int, largest_y: bool) -> None:
        encoding = _g1_encoding(_next_x(x, on_curve=False), largest_y=largest_y)
        with pytest.raises(BlsEncodingError):
            BlsPublicKey.from_bytes(encoding)

    @pytest.mark.parametrize("x", [P, P + 1, 2**381 - 1], ids=["p", "p+1", "max"])
    def test_x_not_below_the_modulus_is_refused(self, x: int) -> None:
        with pytest.raises(BlsEncodingError):
            BlsPublicKey.from_bytes(_g1_encoding(x, largest_y=False))
        with pytest.raises(BlsEncodingError):
            BlsPublicKey.from_bytes(_g1_encoding(x, largest_y=True))

    def test_a_second_encoding_of_a_valid_key_is_refused(self) -> None:
        # x + p names the same field element as x; only x itself is canonical.
        for i in range(100):
            raw = BlsSecretKey.from_seed(i.to_bytes(32, "big")).public_key.to_bytes()
            x = int.from_bytes(raw, "big") & (2**381 - 1)
            if x + P < 2**381:
                break
        else:
            pytest.fail("no key with room for x + p among 100 seeds")
        alias = ((x + P) | (int.from_bytes(raw, "big") & ~(2**381 - 1))).to_bytes(48, "big")
        assert alias[0] & 0xE0 == raw[0] & 0xE0
        with pytest.raises(BlsEncodingError):
            BlsPublicKey.from_bytes(alias)

    @settings(deadline=None, max_examples=300)
    @given(data=st.binary(min_size=47, max_size=47), flags=st.integers(0, 7))
    def test_whatever_decodes_is_canonical(self, data: bytes, flags: int) -> None:
        raw = bytes([(flags << 5) | (data[0] & 0x1F)]) + data[1:] + b"\x00"
        try:
            key = BlsPublicKey.from_bytes(raw)
        except BlsEncodingError:
            return
        assert key.to_bytes() == raw

    @settings(deadline=None, max_examples=200)
    @given(bit=st.integers(0, 48 * 8 - 1))
    def test_a_flipped_bit_never_gives_the_same_key(self, bit: int) -> None:
        raw = bytearray(KEY.public_key.to_bytes())
        raw[bit // 8] ^= 1 << (bit % 8)
        try:
            key = BlsPublicKey.from_bytes(bytes(raw))
        except BlsEncodingError:
            return
        assert key != KEY.public_key
        assert key.to_bytes() == bytes(raw)

    @given(size=st.integers(0, 200).filter(lambda n: n != 48))
    def test_wrong_length_is_refused(self, size: int) -> None:
        with pytest.raises(BlsEncodingError):
            BlsPublicKey.from_bytes(KEY.public_key.to_bytes()[:1] * size)

    def test_non_bytes_is_a_caller_error(self) -> None:
        with pytest.raises(BlsUsageError):
            BlsPublicKey.from_bytes(KEY.public_key.to_bytes().hex())  # type: ignore[arg-type]

    def test_value_semantics(self) -> None:
        key = BlsPublicKey.from_bytes(bytearray(KEY.public_key.to_bytes()))
        assert key == KEY.public_key
        assert hash(key) == hash(KEY.public_key)
        assert len({key, KEY.public_key}) == 1
        assert key.to_bytes().hex() in repr(key)
        assert len(key.to_bytes()) == BlsPublicKey.SIZE == 48


class TestSignature:
    def test_infinity_is_a_valid_encoding(self) -> None:
        assert BlsSignature.from_bytes(G2_INFINITY).to_bytes() == G2_INFINITY

    @settings(deadline=None, max_examples=300)
    @given(data=st.binary(min_size=95, max_size=95), flags=st.integers(0, 7))
    def test_whatever_decodes_is_canonical(self, data: bytes, flags: int) -> None:
        raw = bytes([(flags << 5) | (data[0] & 0x1F)]) + data[1:] + b"\x00"
        try:
            signature = BlsSignature.from_bytes(raw)
        except BlsEncodingError:
            return
        assert signature.to_bytes() == raw

    @settings(deadline=None, max_examples=200)
    @given(bit=st.integers(0, 96 * 8 - 1))
    def test_a_flipped_bit_never_verifies(self, bit: int) -> None:
        raw = bytearray(KEY.sign(b"m").to_bytes())
        raw[bit // 8] ^= 1 << (bit % 8)
        try:
            signature = BlsSignature.from_bytes(bytes(raw))
        except BlsEncodingError:
            return
        with pytest.raises(BadSignatureError):
            bls_verify(KEY.public_key, b"m", signature)

    @pytest.mark.parametrize("size", [0, 48, 95, 97, 192])
    def test_wrong_length_is_refused(self, size: int) -> None:
        with pytest.raises(BlsEncodingError):
            BlsSignature.from_bytes(b"\xc0" + bytes(size - 1) if size else b"")
        with pytest.raises(BlsEncodingError):
            BlsSignature.from_bytes_deferred(b"\xc0" + bytes(size - 1) if size else b"")

    def test_a_deferred_signature_verifies_like_a_decoded_one(self) -> None:
        signature = KEY.sign(b"m")
        deferred = BlsSignature.from_bytes_deferred(signature.to_bytes())
        assert deferred == signature
        assert hash(deferred) == hash(signature)
        bls_verify(KEY.public_key, b"m", deferred)
        with pytest.raises(BadSignatureError):
            bls_verify(KEY.public_key, b"n", deferred)

    @settings(deadline=None, max_examples=200)
    @given(bit=st.integers(0, 96 * 8 - 1))
    def test_a_deferred_damaged_signature_fails_when_used(self, bit: int) -> None:
        raw = bytearray(KEY.sign(b"m").to_bytes())
        raw[bit // 8] ^= 1 << (bit % 8)
        deferred = BlsSignature.from_bytes_deferred(bytes(raw))
        assert deferred.to_bytes() == bytes(raw)
        with pytest.raises(BadSignatureError):
            bls_verify(KEY.public_key, b"m", deferred)
        with pytest.raises(BadSignatureError):
            bls_fast_aggregate_verify([KEY.public_key], b"m", deferred)
        try:
            BlsSignature.from_bytes(bytes(raw))
        except BlsEncodingError:
            with pytest.raises(BlsEncodingError):
                bls_aggregate([deferred])

    def test_value_semantics(self) -> None:
        signature = KEY.sign(b"m")
        again = BlsSignature.from_bytes(signature.to_bytes())
        assert again == signature
        assert hash(again) == hash(signature)
        assert again != KEY.sign(b"n")
        assert signature.to_bytes().hex() in repr(signature)
        assert len(signature.to_bytes()) == BlsSignature.SIZE == 96
