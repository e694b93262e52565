"""The blspy adapter: what blspy gets wrong alone, and that the adapter fixes it.

The ``TestBlspyAlone`` cases pin blspy 2.0.3's behaviour described in the
``_bls_backend`` docstring. If one starts failing, blspy changed: re-check the
adapter's workaround (it stays correct either way, as ``TestAdapter`` shows).
"""

from __future__ import annotations

import hmac

import blspy
import pytest

from dchat_crypto._bls_backend import BlspyBackend, keygen
from dchat_crypto._bls_errors import BlsEncodingError, BlsSecretKeyError, BlsUsageError

BACKEND = BlspyBackend()
POP = blspy.PopSchemeMPL
ZERO = bytes(32)
G1_INFINITY = b"\xc0" + bytes(47)
G2_INFINITY = b"\xc0" + bytes(95)
# r, the order of the BLS12-381 subgroups.
R = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001


@pytest.fixture
def key() -> blspy.PrivateKey:
    return BACKEND.key_gen(bytes(range(32)))


@pytest.fixture
def zero_key() -> blspy.PrivateKey:
    # Only blspy itself can make this handle; the adapter refuses to decode it.
    return blspy.PrivateKey.from_bytes(ZERO)


class TestBlspyAlone:
    def test_signs_with_the_zero_key(self, zero_key: blspy.PrivateKey) -> None:
        assert bytes(POP.sign(zero_key, b"m")) == G2_INFINITY
        assert bytes(POP.pop_prove(zero_key)) == G2_INFINITY

    def test_fast_aggregate_verify_ignores_an_infinity_key(self, key: blspy.PrivateKey) -> None:
        infinity = blspy.G1Element.from_bytes(G1_INFINITY)
        assert POP.fast_aggregate_verify([key.get_g1(), infinity], b"m", POP.sign(key, b"m"))

    def test_aggregate_verify_accepts_empty_lists(self) -> None:
        assert POP.aggregate_verify([], [], blspy.G2Element.from_bytes(G2_INFINITY))

    def test_aggregate_of_nothing_is_infinity(self) -> None:
        assert bytes(POP.aggregate([])) == G2_INFINITY

    def test_key_gen_is_an_earlier_drafts(self) -> None:
        seed = bytes(32)
        # Fixed salt, no retry loop: the pre-04 KeyGen.
        prk = hmac.digest(b"BLS-SIG-KEYGEN-SALT-", seed + b"\x00", "sha256")
        okm, block = b"", b""
        for counter in (1, 2):
            block = hmac.digest(prk, block + b"\x00\x30" + bytes([counter]), "sha256")
            okm += block
        old = (int.from_bytes(okm[:48], "big") % R).to_bytes(32, "big")
        assert bytes(POP.key_gen(seed)) == old
        assert keygen(seed) != old


class TestAdapter:
    def test_refuses_to_sign_with_the_zero_key(self, zero_key: blspy.PrivateKey) -> None:
        with pytest.raises(BlsSecretKeyError):
            BACKEND.sign(zero_key, b"m")
        with pytest.raises(BlsSecretKeyError):
            BACKEND.pop_prove(zero_key)

    def test_fast_aggregate_verify_rejects_an_infinity_key(self, key: blspy.PrivateKey) -> None:
        infinity = BACKEND.g1_from_bytes(G1_INFINITY)
        signature = BACKEND.sign(key, b"m")
        assert BACKEND.fast_aggregate_verify([BACKEND.sk_to_pk(key)], b"m", signature)
        assert not BACKEND.fast_aggregate_verify([BACKEND.sk_to_pk(key), infinity], b"m", signature)
        assert not BACKEND.fast_aggregate_verify(
            [infinity], b"m", BACKEND.g2_from_bytes(G2_INFINITY)
        )

    def test_aggregate_verify_rejects_empty_lists(self) -> None:
        assert not BACKEND.aggregate_verify([], [], BACKEND.g2_from_bytes(G2_INFINITY))

    def test_fast_aggregate_verify_rejects_no_keys(self) -> None:
        assert not BACKEND.fast_aggregate_verify([], b"m", BACKEND.g2_from_bytes(G2_INFINITY))

    def test_aggregate_of_nothing_is_an_error(self) -> None:
        with pytest.raises(BlsUsageError):
            BACKEND.aggregate([])

    def test_aggregate_verify_rejects_mismatched_lengths(self, key: blspy.PrivateKey) -> None:
        pk, signature = BACKEND.sk_to_pk(key), BACKEND.sign(key, b"m")
        assert BACKEND.aggregate_verify([pk], [b"m"], signature)
        assert not BACKEND.aggregate_verify([pk], [b"m", b"n"], signature)
        assert not BACKEND.aggregate_verify([pk, pk], [b"m"], signature)

    def test_infinity_key_never_verifies(self) -> None:
        infinity_pk = BACKEND.g1_from_bytes(G1_INFINITY)
        infinity_sig = BACKEND.g2_from_bytes(G2_INFINITY)
        assert not BACKEND.verify(infinity_pk, b"m", infinity_sig)
        assert not BACKEND.aggregate_verify([infinity_pk], [b"m"], infinity_sig)
        assert not BACKEND.pop_verify(infinity_pk, infinity_sig)

    def test_infinity_is_a_valid_point_but_flagged(self, key: blspy.PrivateKey) -> None:
        assert BACKEND.g1_is_infinity(BACKEND.g1_from_bytes(G1_INFINITY))
        assert not BACKEND.g1_is_infinity(BACKEND.sk_to_pk(key))
        assert BACKEND.g2_to_bytes(BACKEND.g2_from_bytes(G2_INFINITY)) == G2_INFINITY

    @pytest.mark.parametrize(
        "raw",
        [ZERO, R.to_bytes(32, "big"), (R + 1).to_bytes(32, "big"), b"\xff" * 32, bytes(31)],
        ids=["zero", "r", "r+1", "max", "short"],
    )
    def test_secret_keys_outside_1_to_r_are_refused(self, raw: bytes) -> None:
        with pytest.raises(BlsSecretKeyError):
            BACKEND.secret_from_bytes(raw)

    def test_largest_and_smallest_secret_keys_are_accepted(self) -> None:
        for value in (1, R - 1):
            raw = value.to_bytes(32, "big")
            assert BACKEND.secret_to_bytes(BACKEND.secret_from_bytes(raw)) == raw

    def test_short_seed_is_refused(self) -> None:
        with pytest.raises(BlsSecretKeyError):
            BACKEND.key_gen(bytes(31))

    def test_key_gen_is_the_current_drafts(self) -> None:
        seed = bytes(range(40))
        assert BACKEND.secret_to_bytes(BACKEND.key_gen(seed)) == keygen(seed)
        assert keygen(seed, b"info") != keygen(seed)

    def test_foreign_errors_are_translated(self) -> None:
        with pytest.raises(BlsUsageError):
            BACKEND.g1_from_bytes("ab" * 48)  # type: ignore[arg-type]
        with pytest.raises(BlsEncodingError):
            BACKEND.g1_from_bytes(bytes(48))
        with pytest.raises(BlsEncodingError):
            BACKEND.g2_from_bytes(bytes(95))
