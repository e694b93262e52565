"""The typed BLS API: keys, signatures, aggregation, possession proofs, errors."""

from __future__ import annotations

import hashlib
import hmac

import blspy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import CallerError, PeerError
from dchat_crypto import (
    BadSignatureError,
    BlsError,
    BlsPublicKey,
    BlsSecretKey,
    BlsSignature,
    DchatCryptoError,
    InvalidKeyError,
    bls_aggregate,
    bls_verify,
)
from dchat_crypto.hazmat import (
    BlsSecretKeyError,
    BlsUsageError,
    bls_aggregate_verify,
    bls_fast_aggregate_verify,
    bls_verify_possession,
)

R = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
G1_INFINITY = b"\xc0" + bytes(47)
G2_INFINITY = b"\xc0" + bytes(95)

CRYPTO = settings(deadline=None, max_examples=30)
seeds = st.binary(min_size=32, max_size=64)
messages = st.binary(max_size=64)


def _key(i: int) -> BlsSecretKey:
    return BlsSecretKey.from_seed(i.to_bytes(32, "big"))


KEYS = [_key(i) for i in range(4)]


def _reference_keygen(ikm: bytes) -> bytes:
    """KeyGen of draft-irtf-cfrg-bls-signature-05 section 2.3, written from the text."""
    salt, sk = b"BLS-SIG-KEYGEN-SALT-", 0
    while sk == 0:
        salt = hashlib.sha256(salt).digest()
        prk = hmac.digest(salt, ikm + b"\x00", "sha256")
        okm, block, counter = b"", b"", 1
        while len(okm) < 48:
            block = hmac.digest(prk, block + (48).to_bytes(2, "big") + bytes([counter]), "sha256")
            okm, counter = okm + block, counter + 1
        sk = int.from_bytes(okm[:48], "big") % R
    return sk.to_bytes(32, "big")


# EIP-2333 test cases 0-3: derive_master_SK(seed) is KeyGen(seed) with empty key_info.
# https://eips.ethereum.org/EIPS/eip-2333#test-cases
EIP2333_MASTER_KEYS = [
    (
        "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1"
        "c92f2cf141630c7a3c4ab7c81b2f001698e7463b04",
        6083874454709270928345386274498605044986640685124978867557563392430687146096,
    ),
    (
        "3141592653589793238462643383279502884197169399375105820974944592",
        29757020647961307431480504535336562678282505419141012933316116377660817309383,
    ),
    (
        "0099ff991111002299dd7744ee3355bbdd8844115566cc55663355668888cc00",
        27580842291869792442942448775674722299803720648445448686099262467207037398656,
    ),
    (
        "d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3",
        19022158461524446591288038168518313374041767046816487870552872741050760015818,
    ),
]


class TestSecretKey:
    @pytest.mark.parametrize(
        ("seed", "master"), EIP2333_MASTER_KEYS, ids=[f"case{i}" for i in range(4)]
    )
    def test_from_seed_matches_eip2333(self, seed: str, master: int) -> None:
        key = BlsSecretKey.from_seed(bytes.fromhex(seed))
        assert key.to_bytes() == master.to_bytes(32, "big")
        assert _reference_keygen(bytes.fromhex(seed)) == key.to_bytes()

    @CRYPTO
    @given(ikm=seeds)
    def test_from_seed_is_the_draft_keygen(self, ikm: bytes) -> None:
        assert BlsSecretKey.from_seed(ikm).to_bytes() == _reference_keygen(ikm)

    def test_short_seed_is_refused(self) -> None:
        with pytest.raises(BlsSecretKeyError):
            BlsSecretKey.from_seed(bytes(31))

    def test_signing_with_the_zero_key_is_impossible(self) -> None:
        with pytest.raises(BlsSecretKeyError) as info:
            BlsSecretKey.from_bytes(bytes(32))
        # Every way a caller may catch the mistake works.
        for kind in (InvalidKeyError, CallerError, ValueError, BlsError):
            assert isinstance(info.value, kind)

    @pytest.mark.parametrize("value", [R, R + 1, 2**256 - 1])
    def test_keys_not_below_r_are_refused(self, value: int) -> None:
        with pytest.raises(BlsSecretKeyError):
            BlsSecretKey.from_bytes(value.to_bytes(32, "big"))

    @pytest.mark.parametrize("size", [0, 31, 33])
    def test_wrong_length_is_refused(self, size: int) -> None:
        with pytest.raises(BlsSecretKeyError):
            BlsSecretKey.from_bytes(b"\x01" * size)

    def test_bytes_round_trip_keeps_the_public_key(self) -> None:
        key = BlsSecretKey.generate()
        again = BlsSecretKey.from_bytes(key.to_bytes())
        assert again == key
        assert hash(again) == hash(key)
        assert again.public_key == key.public_key
        assert len(key.to_bytes()) == BlsSecretKey.SIZE

    def test_generate_gives_fresh_keys(self) -> None:
        assert BlsSecretKey.generate() != BlsSecretKey.generate()

    def test_repr_hides_the_secret(self) -> None:
        key = BlsSecretKey.generate()
        secret = key.to_bytes().hex()
        assert secret not in repr(key)
        assert secret not in str(key)
        assert key.public_key.to_bytes().hex() in repr(key)


class TestSignVerify:
    @CRYPTO
    @given(ikm=seeds, message=messages, other=messages)
    def test_signature_verifies_only_for_its_message(
        self, ikm: bytes, message: bytes, other: bytes
    ) -> None:
        key = BlsSecretKey.from_seed(ikm)
        signature = key.sign(message)
        bls_verify(key.public_key, message, signature)
        if other != message:
            with pytest.raises(BadSignatureError):
                bls_verify(key.public_key, other, signature)

    def test_signature_does_not_verify_under_another_key(self) -> None:
        signature = KEYS[0].sign(b"m")
        with pytest.raises(BadSignatureError):
            bls_verify(KEYS[1].public_key, b"m", signature)

    def test_infinity_signature_never_verifies(self) -> None:
        with pytest.raises(BadSignatureError):
            bls_verify(KEYS[0].public_key, b"m", BlsSignature.from_bytes(G2_INFINITY))

    def test_failures_are_opaque(self) -> None:
        failures = []
        for call in (
            lambda: bls_verify(KEYS[1].public_key, b"m", KEYS[0].sign(b"m")),
            lambda: bls_aggregate_verify([], [], BlsSignature.from_bytes(G2_INFINITY)),
            lambda: bls_fast_aggregate_verify([KEYS[0].public_key], b"x", KEYS[0].sign(b"m")),
            lambda: bls_verify_possession(KEYS[0].public_key, KEYS[1].prove_possession()),
        ):
            with pytest.raises(BadSignatureError) as info:
                call()
            failures.append((str(info.value), info.value.args))
        assert len(set(failures)) == 1
        assert isinstance(info.value, PeerError)
        assert isinstance(info.value, DchatCryptoError)

    def test_messages_must_be_bytes(self) -> None:
        with pytest.raises(BlsUsageError):
            KEYS[0].sign("text")  # type: ignore[arg-type]
        with pytest.raises(BlsUsageError):
            bls_verify(KEYS[0].public_key, "text", KEYS[0].sign(b"m"))  # type: ignore[arg-type]

    def test_bytes_like_messages_are_accepted(self) -> None:
        signature = KEYS[0].sign(bytearray(b"m"))
        bls_verify(KEYS[0].public_key, memoryview(b"m"), signature)


class TestAggregation:
    @settings(deadline=None, max_examples=15)
    @given(data=st.data(), count=st.integers(min_value=1, max_value=4))
    def test_aggregate_of_distinct_messages_verifies(self, data: st.DataObject, count: int) -> None:
        msgs = data.draw(st.lists(messages, min_size=count, max_size=count, unique=True))
        keys = KEYS[:count]
        aggregate = bls_aggregate(k.sign(m) for k, m in zip(keys, msgs, strict=True))
        bls_aggregate_verify([k.public_key for k in keys], msgs, aggregate)
        assert bls_aggregate(reversed([k.sign(m) for k, m in zip(keys, msgs, strict=True)])) == (
            aggregate
        )
        if count > 1:
            with pytest.raises(BadSignatureError):
                bls_aggregate_verify([k.public_key for k in keys], msgs[::-1], aggregate)

    def test_aggregate_of_nothing_is_an_error(self) -> None:
        with pytest.raises(BlsUsageError):
            bls_aggregate([])

    def test_aggregate_of_one_is_itself(self) -> None:
        signature = KEYS[0].sign(b"m")
        assert bls_aggregate([signature]) == signature

    def test_aggregate_verify_of_empty_lists_is_invalid(self) -> None:
        with pytest.raises(BadSignatureError):
            bls_aggregate_verify([], [], BlsSignature.from_bytes(G2_INFINITY))

    def test_aggregate_verify_rejects_mismatched_lists(self) -> None:
        signature = KEYS[0].sign(b"m")
        with pytest.raises(BadSignatureError):
            bls_aggregate_verify([KEYS[0].public_key], [b"m", b"n"], signature)

    def test_aggregate_verify_requires_distinct_messages(self) -> None:
        # Honest signers on one message: mathematically valid, refused by policy.
        aggregate = bls_aggregate([KEYS[0].sign(b"m"), KEYS[1].sign(b"m")])
        keys = [KEYS[0].public_key, KEYS[1].public_key]
        bls_fast_aggregate_verify(keys, b"m", aggregate)
        with pytest.raises(BadSignatureError):
            bls_aggregate_verify(keys, [b"m", b"m"], aggregate)

    def test_fast_aggregate_verify_needs_every_signer(self) -> None:
        keys = [k.public_key for k in KEYS[:3]]
        aggregate = bls_aggregate([k.sign(b"m") for k in KEYS[:3]])
        bls_fast_aggregate_verify(keys, b"m", aggregate)
        for wrong in (keys[:2], [*keys, KEYS[3].public_key], [], keys[:2] + keys[:1]):
            with pytest.raises(BadSignatureError):
                bls_fast_aggregate_verify(wrong, b"m", aggregate)
        with pytest.raises(BadSignatureError):
            bls_fast_aggregate_verify(keys, b"other", aggregate)


def _rogue_key(victim: BlsPublicKey, attacker: BlsSecretKey) -> BlsPublicKey:
    """``attacker*g1 - victim``: its sum with the victim's key is the attacker's key."""
    attacker_point = blspy.G1Element.from_bytes(attacker.public_key.to_bytes())
    victim_point = blspy.G1Element.from_bytes(victim.to_bytes())
    return BlsPublicKey.from_bytes(bytes(attacker_point + victim_point.negate()))


class TestRogueKeys:
    def test_fast_aggregate_verify_is_forgeable_without_possession_proofs(self) -> None:
        # Why bls_fast_aggregate_verify demands proven keys: this forgery passes it.
        victim, attacker = KEYS[0].public_key, KEYS[1]
        rogue = _rogue_key(victim, attacker)
        bls_fast_aggregate_verify([victim, rogue], b"m", attacker.sign(b"m"))
        # ... and is stopped where dchat checks keys: the rogue key has no proof.
        with pytest.raises(BadSignatureError):
            bls_verify_possession(rogue, attacker.prove_possession())

    def test_aggregate_verify_is_not_forgeable_with_rogue_keys(self) -> None:
        # The same trick needs one message for both keys; distinct messages stop it.
        victim, attacker = KEYS[0].public_key, KEYS[1]
        rogue = _rogue_key(victim, attacker)
        with pytest.raises(BadSignatureError):
            bls_aggregate_verify([victim, rogue], [b"m", b"m"], attacker.sign(b"m"))


class TestPossession:
    def test_proof_verifies_for_its_key_only(self) -> None:
        proof = KEYS[0].prove_possession()
        bls_verify_possession(KEYS[0].public_key, proof)
        with pytest.raises(BadSignatureError):
            bls_verify_possession(KEYS[1].public_key, proof)

    def test_proofs_and_signatures_are_domain_separated(self) -> None:
        key = KEYS[0]
        pk_bytes = key.public_key.to_bytes()
        with pytest.raises(BadSignatureError):
            bls_verify_possession(key.public_key, key.sign(pk_bytes))
        with pytest.raises(BadSignatureError):
            bls_verify(key.public_key, pk_bytes, key.prove_possession())


def test_a_signature_decoded_again_reuses_the_checked_point(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dchat_crypto._bls as bls_module
    from dchat_crypto.hazmat import BlsEncodingError

    raw = BlsSecretKey.from_seed(b"\x05" * 32).sign(b"rebroadcast vote").to_bytes()
    first = BlsSignature.from_bytes(raw)
    decodes: list[bytes] = []
    backend = type(bls_module._BACKEND)
    real = backend.g2_from_bytes
    monkeypatch.setattr(
        backend, "g2_from_bytes", lambda self, data: decodes.append(data) or real(self, data)
    )
    again = BlsSignature.from_bytes(raw)
    assert again == first
    assert again.to_bytes() == raw
    assert decodes == []  # the re-sent copy cost a dictionary lookup
    # Only checked canonical encodings are remembered: a flipped byte is decoded
    # (and refused) every time.
    bad = raw[:-1] + bytes([raw[-1] ^ 1])
    for _ in range(2):
        with pytest.raises(BlsEncodingError):
            BlsSignature.from_bytes(bad)
    assert decodes == [bad, bad]
