"""RFC 9474 RSA blind signatures: the RFC's vectors byte for byte, and refusals.

The vectors are ``<vectors>/rsa_blind_signatures_rfc9474/rfc9474_vectors_from_draft14.json``
(RFC 9474 Appendix A, see its SOURCE.txt): all four variants, one 4096-bit key.
The vectors fix Prepare's prefix, the PSS salt and the blind's inverse; they go
in through ``prepare``'s and ``blind``'s ``_test_*`` parameters (``r`` is the
inverse of the vector's ``inv``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from dchat_privacy import _rsabssa as rsabssa_module
from dchat_privacy.lowlevel import (
    Blinded,
    BlindInputError,
    BlindSignatureError,
    BlindSigningFaultError,
    BlindVariant,
    blind,
    blind_sign,
    finalize,
    prepare,
    verify,
)

if TYPE_CHECKING:
    from pathlib import Path

VARIANTS = {variant.label: variant for variant in BlindVariant}


def _load(vectors: Path) -> list[dict[str, Any]]:
    path = vectors / "rsa_blind_signatures_rfc9474" / "rfc9474_vectors_from_draft14.json"
    # The vectors folder itself may be absent (the fixture skips, saying where it
    # looked); present without this file is a broken checkout and fails.
    assert path.is_file(), f"RFC 9474 vectors missing: {path}"
    cases: list[dict[str, Any]] = json.loads(path.read_text())["vectors"]
    return cases


def _private_key(case: dict[str, Any]) -> rsa.RSAPrivateKey:
    p, q, d, e, n = (int(case[name], 16) for name in ("p", "q", "d", "e", "n"))
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=rsa.rsa_crt_dmp1(d, p),
        dmq1=rsa.rsa_crt_dmq1(d, q),
        iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=rsa.RSAPublicNumbers(e, n),
    )
    return numbers.private_key()


def test_rfc9474_vectors_pass_byte_for_byte(vectors: Path) -> None:
    cases = _load(vectors)
    for case in cases:
        raw = {k: bytes.fromhex(v) for k, v in case.items() if k != "name"}
        variant = VARIANTS[case["name"]]
        key = _private_key(case)
        public = key.public_key()
        n = int(case["n"], 16)
        prefix = raw["msg_prefix"] or None
        prepared = prepare(raw["msg"], variant, _test_prefix=prefix)
        assert prepared == raw["prepared_msg"]
        encoded = rsabssa_module._emsa_pss_encode(prepared, n.bit_length() - 1, raw["salt"])
        assert encoded == raw["encoded_msg"]
        r = pow(int(case["inv"], 16), -1, n)
        blinded = blind(public, prepared, variant, _test_salt=raw["salt"], _test_r=r)
        assert blinded.message == raw["blinded_msg"]
        assert blinded.inverse == raw["inv"]
        blind_sig = blind_sign(key, blinded.message)
        assert blind_sig == raw["blind_sig"]
        assert finalize(public, prepared, blind_sig, blinded, variant) == raw["sig"]
        verify(public, prepared, raw["sig"], variant)
    assert sorted(case["name"] for case in cases) == sorted(VARIANTS)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize("variant", list(BlindVariant))
def test_round_trip_and_tampering(key: rsa.RSAPrivateKey, variant: BlindVariant) -> None:
    public = key.public_key()
    prepared = prepare(b"hello", variant)
    assert prepared.endswith(b"hello")
    assert len(prepared) == 5 + 32 * variant.randomized
    blinded = blind(public, prepared, variant)
    signature = finalize(public, prepared, blind_sign(key, blinded.message), blinded, variant)
    verify(public, prepared, signature, variant)
    tampered = bytes([signature[0] ^ 1]) + signature[1:]
    with pytest.raises(BlindSignatureError):
        verify(public, prepared, tampered, variant)
    with pytest.raises(BlindSignatureError):
        verify(public, prepared + b"!", signature, variant)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    with pytest.raises(BlindSignatureError):
        verify(other, prepared, signature, variant)


def test_blinding_is_fresh_each_time(key: rsa.RSAPrivateKey) -> None:
    public = key.public_key()
    prepared = prepare(b"same", BlindVariant.PSSZERO_DETERMINISTIC)
    first = blind(public, prepared, BlindVariant.PSSZERO_DETERMINISTIC)
    second = blind(public, prepared, BlindVariant.PSSZERO_DETERMINISTIC)
    assert first.message != second.message
    assert "inverse" not in repr(first)


def test_finalize_refuses_a_wrong_or_foreign_blind_signature(key: rsa.RSAPrivateKey) -> None:
    public = key.public_key()
    variant = BlindVariant.PSS_RANDOMIZED
    prepared = prepare(b"m", variant)
    blinded = blind(public, prepared, variant)
    good = blind_sign(key, blinded.message)
    other = blind(public, prepare(b"other", variant), variant)
    for bad in (
        bytes([good[0] ^ 0x40]) + good[1:],
        good[:-1],
        blind_sign(key, other.message),
        b"\xff" * len(good),
    ):
        with pytest.raises(BlindSignatureError):
            finalize(public, prepared, bad, blinded, variant)
    with pytest.raises(BlindSignatureError):
        finalize(public, prepared, good, Blinded(blinded.message, other.inverse), variant)


def test_blind_sign_checks_its_result(
    key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    blinded = blind(key.public_key(), b"m", BlindVariant.PSS_DETERMINISTIC)
    monkeypatch.setattr(rsabssa_module, "_rsasp1", lambda *args: 12345)  # a faulty CRT half
    with pytest.raises(BlindSigningFaultError):
        blind_sign(key, blinded.message)


def test_bad_inputs_are_refused(key: rsa.RSAPrivateKey) -> None:
    size = key.key_size // 8
    n = key.public_key().public_numbers().n
    with pytest.raises(BlindInputError):
        blind_sign(key, bytes(size - 1))
    with pytest.raises(BlindInputError):
        blind_sign(key, n.to_bytes(size, "big"))
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(BlindInputError):
        blind(small.public_key(), b"m", BlindVariant.PSS_RANDOMIZED)
    p = key.private_numbers().p
    with pytest.raises(BlindInputError):  # a blind sharing a factor with n
        blind(key.public_key(), b"m", BlindVariant.PSS_RANDOMIZED, _test_r=p)
