"""X-Wing hybrid KEM: draft vectors, ML-KEM ACVP key generation, misuse and bad input.

Which vector checks run (``cryptography`` has no deterministic ML-KEM
encapsulation and cannot load FIPS 203 *expanded* decapsulation keys):

* X-Wing ``xwing/test-vectors.json`` (3 vectors): key generation from the seed
  (public key, seed round trip), decapsulation of the vector ciphertext, and the
  encapsulation path with the vector's ``eseed`` X25519 half (``ct_X``, the full
  ciphertext and the combiner), the ML-KEM half coming from the vector ciphertext.
* ML-KEM ACVP keyGen, ML-KEM-768 group (25 cases): ``ek`` from ``d || z``.
  The ACVP encapDecap groups need ``m``-derandomized encapsulation or expanded
  ``dk`` keys, which the backend does not offer; they are not run.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_crypto import InvalidKeyError, PrivateKey, XWingPrivateKey, XWingPublicKey
from dchat_crypto.hazmat import InvalidCiphertextError

_KEY = XWingPrivateKey.from_seed(bytes(range(32)))
_CT_M = 1088


def _xwing_vectors(vectors: Path) -> list[dict[str, bytes]]:
    path = vectors / "mlkem_xwing" / "xwing" / "test-vectors.json"
    if not path.is_file():
        pytest.skip(f"X-Wing vectors not found at {path}")
    return [{k: bytes.fromhex(v) for k, v in case.items()} for case in json.loads(path.read_text())]


def test_xwing_vectors_keygen_from_seed(vectors: Path) -> None:
    cases = _xwing_vectors(vectors)
    assert len(cases) == 3
    for case in cases:
        key = XWingPrivateKey.from_seed(case["seed"])
        assert key.public_key.to_bytes() == case["pk"]
        assert key.to_seed() == case["sk"]


def test_xwing_vectors_decapsulate(vectors: Path) -> None:
    for case in _xwing_vectors(vectors):
        assert XWingPrivateKey.from_seed(case["seed"]).decapsulate(case["ct"]) == case["ss"]


def test_xwing_vectors_encapsulation_with_vector_randomness(vectors: Path) -> None:
    for case in _xwing_vectors(vectors):
        public = XWingPublicKey.from_bytes(case["pk"])
        ct_m = case["ct"][:_CT_M]
        # ML-KEM's half of eseed cannot be injected; take ss_M from the vector ciphertext.
        ss_m = MLKEM768PrivateKey.from_seed_bytes(_expand(case["seed"])).decapsulate(ct_m)
        ephemeral = PrivateKey(case["eseed"][32:])
        shared, ciphertext = public._encapsulate_x25519(ephemeral, ss_m, ct_m)
        assert ciphertext == case["ct"]
        assert shared == case["ss"]


def _expand(seed: bytes) -> bytes:
    return hashlib.shake_256(seed).digest(96)[:64]


def test_mlkem768_acvp_keygen_from_seed(vectors: Path) -> None:
    base = vectors / "mlkem_xwing" / "acvp_fips203" / "ML-KEM-keyGen-FIPS203"
    if not base.is_dir():
        pytest.skip(f"ML-KEM ACVP vectors not found at {base}")
    prompt = json.loads(gzip.decompress((base / "prompt.json.gz").read_bytes()))
    expected = json.loads(gzip.decompress((base / "expectedResults.json.gz").read_bytes()))
    answers = {t["tcId"]: t for g in expected["testGroups"] for t in g["tests"]}
    groups = [g for g in prompt["testGroups"] if g["parameterSet"] == "ML-KEM-768"]
    cases = [t for g in groups for t in g["tests"]]
    assert len(cases) == 25
    for case in cases:
        # X-Wing's expansion feeds exactly this d || z seed to ML-KEM-768 key generation.
        key = MLKEM768PrivateKey.from_seed_bytes(bytes.fromhex(case["d"] + case["z"]))
        ek = bytes.fromhex(answers[case["tcId"]]["ek"])
        assert key.public_key().public_bytes_raw() == ek


def test_round_trip_and_sizes() -> None:
    key = XWingPrivateKey.generate()
    shared, ciphertext = key.public_key.encapsulate()
    assert len(shared) == XWingPublicKey.SHARED_SECRET_SIZE == 32
    assert len(ciphertext) == XWingPublicKey.CIPHERTEXT_SIZE == 1120
    assert len(key.public_key.to_bytes()) == XWingPublicKey.SIZE == 1216
    assert key.decapsulate(ciphertext) == shared
    assert XWingPrivateKey.from_seed(key.to_seed()) == key


def test_encapsulation_is_randomized() -> None:
    first, second = _KEY.public_key.encapsulate(), _KEY.public_key.encapsulate()
    assert first[0] != second[0]
    assert first[1] != second[1]


@pytest.mark.parametrize("position", [0, 500, _CT_M - 1, _CT_M, 1119])
def test_altered_ciphertext_gives_another_secret_not_an_error(position: int) -> None:
    shared, ciphertext = _KEY.public_key.encapsulate()
    altered = bytearray(ciphertext)
    altered[position] ^= 0x01
    # ML-KEM implicit rejection (or a different X25519 point): a different secret.
    assert _KEY.decapsulate(bytes(altered)) != shared


def test_other_key_decapsulates_to_another_secret() -> None:
    shared, ciphertext = _KEY.public_key.encapsulate()
    assert XWingPrivateKey.generate().decapsulate(ciphertext) != shared


def test_secret_depends_on_the_mlkem_half() -> None:
    # Same X25519 half, ML-KEM half from another key: the combined secret differs.
    shared, ciphertext = _KEY.public_key.encapsulate()
    other = XWingPrivateKey.generate()
    other._x25519 = _KEY._x25519
    other._public = _KEY.public_key
    assert other.decapsulate(ciphertext) != shared


@pytest.mark.parametrize("size", [0, 1, 1119, 1121, 2240])
def test_wrong_ciphertext_length_is_a_typed_error(size: int) -> None:
    with pytest.raises(InvalidCiphertextError):
        _KEY.decapsulate(bytes(size))


def test_low_order_x25519_ciphertext_half_is_rejected() -> None:
    _, ciphertext = _KEY.public_key.encapsulate()
    with pytest.raises(InvalidCiphertextError):
        _KEY.decapsulate(ciphertext[:_CT_M] + bytes(32))


def test_low_order_x25519_public_half_cannot_be_encapsulated_to() -> None:
    public = XWingPublicKey.from_bytes(_KEY.public_key.to_bytes()[:1184] + bytes(32))
    with pytest.raises(InvalidKeyError):
        public.encapsulate()


@pytest.mark.parametrize("size", [0, 32, 1184, 1215, 1217])
def test_wrong_public_key_length_is_rejected(size: int) -> None:
    with pytest.raises(InvalidKeyError):
        XWingPublicKey.from_bytes(bytes(size))


def test_public_key_with_out_of_range_coefficients_is_rejected() -> None:
    # 0xfff.. encodes 12-bit coefficients 4095 >= q = 3329 (FIPS 203 modulus check).
    raw = b"\xff" * 3 + _KEY.public_key.to_bytes()[3:]
    with pytest.raises(InvalidKeyError):
        XWingPublicKey.from_bytes(raw)


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_wrong_seed_length_is_rejected(size: int) -> None:
    with pytest.raises(InvalidKeyError):
        XWingPrivateKey.from_seed(bytes(size))


def test_repr_hides_the_seed() -> None:
    seed = bytes(range(32))
    assert seed.hex() not in repr(_KEY)
    assert seed.hex()[:16] not in repr(_KEY)
    assert "XWingPublicKey" in repr(_KEY.public_key)


def test_equality() -> None:
    assert XWingPrivateKey.from_seed(bytes(range(32))) == _KEY
    assert XWingPrivateKey.generate() != _KEY
    assert XWingPublicKey.from_bytes(_KEY.public_key.to_bytes()) == _KEY.public_key
    assert len({_KEY.public_key, XWingPublicKey(_KEY.public_key.to_bytes())}) == 1


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=1300))
def test_arbitrary_public_key_bytes_give_a_key_or_a_typed_error(data: bytes) -> None:
    try:
        key = XWingPublicKey.from_bytes(data)
    except InvalidKeyError:
        return
    assert key.to_bytes() == data


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1120, max_size=1120) | st.binary(max_size=1200))
def test_arbitrary_ciphertexts_give_a_secret_or_a_typed_error(data: bytes) -> None:
    if len(data) != XWingPublicKey.CIPHERTEXT_SIZE:
        with pytest.raises(InvalidCiphertextError):
            _KEY.decapsulate(data)
        return
    try:
        shared = _KEY.decapsulate(data)
    except InvalidCiphertextError:
        # Only a low-order X25519 half may be refused at the right length.
        assert data[1088:] in _low_order_points()
        return
    assert len(shared) == 32


def _low_order_points() -> set[bytes]:
    # The X25519 inputs whose (clamped) product is the identity, as 32-byte encodings.
    points: set[bytes] = set()
    for u in (
        0,
        1,
        325606250916557431795983626356110631294008115727848805560023387167927233504,
        39382357235489614581723060781553021112529911719440698176882885853963445705823,
        2**255 - 19 - 1,
        2**255 - 19,
        2**255 - 19 + 1,
    ):
        for high in (0, 1):
            value = u + high * 2**255
            if value < 2**256:
                points.add(value.to_bytes(32, "little"))
    return points
