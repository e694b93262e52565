"""BIP-39 phrases, SLIP-0010 Ed25519 derivation and the dchat path scheme."""

from __future__ import annotations

import contextlib
import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_identity import Identity, IdentityArgumentError, generate_phrase
from dchat_identity.lowlevel import (
    COIN_TYPE,
    ExtendedKey,
    IdentitySeed,
    Purpose,
    key_path,
    phrase_to_seed,
)

from .conftest import SeededRng

# BIP-39 test vector (Trezor vectors.json, entropy 0x00 * 32, passphrase "TREZOR").
ZERO_PHRASE = " ".join(["abandon"] * 23 + ["art"])
ZERO_SEED = (
    "bda85446c68413707090a52022edd26a1c9462295029f2e60cd7c4f2bbd3097170af7a4d73245cafa9c3cca8d5"
    "61a7c3de6f5d4a10be8ed2a5e608d68f92fcc8"
)


def _hash160(data: bytes) -> bytes | None:
    """RIPEMD-160(SHA-256(data)), or None where OpenSSL no longer offers RIPEMD-160."""
    try:
        return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()
    except ValueError:
        return None


def test_slip0010_ed25519_vectors(vectors) -> None:
    data = json.loads((vectors / "slip0010_bip32" / "slip-0010_vectors_parsed.json").read_text())
    sets = [v for v in data["vectors"] if v["curve"] == "ed25519"]
    checked = 0
    for vector in sets:
        master = ExtendedKey.master(bytes.fromhex(vector["seed"]))
        parent: ExtendedKey | None = None
        for chain in vector["chains"]:
            node = master.derive(chain["path"])
            assert node.chain_code.hex() == chain["chain code"], chain["path"]
            assert node.private.hex() == chain["private"], chain["path"]
            assert node.public_key.hex() == chain["public"], chain["path"]
            fingerprint = _hash160(parent.public_key) if parent else bytes(4)
            if fingerprint is not None:  # the parent fingerprint checks our public keys too
                assert fingerprint[:4].hex() == chain["fingerprint"], chain["path"]
            parent = node
            checked += 1
    print(f"SLIP-0010 ed25519: {checked} chains in {len(sets)} vector sets passed")
    assert len(sets) == 2
    assert checked == 12


def test_non_hardened_paths_are_refused() -> None:
    master = ExtendedKey.master(bytes(16))
    for path in ["m/0", "m/0'/1", "x/0'", "m/", "m/2147483648'", "m/-1'", "m/01'", "m/1''"]:
        with pytest.raises(IdentityArgumentError):
            master.derive(path)
    with pytest.raises(IdentityArgumentError):
        master.child(5)
    assert master.derive("m/0h").private == master.derive("m/0'").private


@pytest.mark.parametrize("size", [0, 15, 65, 100])
def test_seed_size_limits(size: int) -> None:
    with pytest.raises(IdentityArgumentError):
        ExtendedKey.master(bytes(size))


def test_path_scheme_is_documented_shape() -> None:
    assert key_path(3, 2, Purpose.DEVICE, 7) == f"m/44'/{COIN_TYPE}'/3'/2'/3'/7'"
    with pytest.raises(IdentityArgumentError):
        key_path(-1, 0, Purpose.IDENTITY)
    with pytest.raises(IdentityArgumentError):
        key_path(2**31, 0, Purpose.IDENTITY)


def test_bip39_seed_matches_the_trezor_vector() -> None:
    assert phrase_to_seed(ZERO_PHRASE, "TREZOR").hex() == ZERO_SEED


def test_phrase_restores_the_same_identity() -> None:
    phrase = generate_phrase(SeededRng(b"alice"))
    assert len(phrase.split()) == 24
    first, again = Identity.from_phrase(phrase), Identity.from_phrase(f"  {phrase.upper()} ")
    assert first.identity_id == again.identity_id
    assert first.encryption_key == again.encryption_key
    assert first.mailbox_id == again.mailbox_id
    # The identity key is the one at the documented path.
    seed = IdentitySeed.from_phrase(phrase)
    expected = ExtendedKey.master(phrase_to_seed(phrase)).derive(key_path(0, 0, Purpose.IDENTITY))
    assert first.signing_key.to_bytes() == expected.private
    assert seed.signing_key(0, 0, Purpose.IDENTITY) == first.signing_key


def test_keys_of_one_seed_are_all_different() -> None:
    seed = IdentitySeed(bytes(range(64)))
    identity = Identity.from_seed(seed)
    raw = {
        identity.signing_key.to_bytes(),
        identity.encryption_key.to_bytes(),
        identity.mailbox_key.to_bytes(),
        seed.signing_key(0, 1, Purpose.DEVICE).to_bytes(),
        seed.sync_secret(),
        Identity.from_seed(seed, account=1).signing_key.to_bytes(),
    }
    assert len(raw) == 6


def test_passphrase_and_account_give_other_identities() -> None:
    phrase = generate_phrase(SeededRng(b"bob"))
    base = Identity.from_phrase(phrase).identity_id
    assert Identity.from_phrase(phrase, passphrase="x").identity_id != base
    assert Identity.from_phrase(phrase, account=1).identity_id != base


@pytest.mark.parametrize(
    "phrase",
    [
        "",
        ZERO_PHRASE.replace("art", "abandon"),  # bad checksum
        ZERO_PHRASE.replace("art", "notaword"),
        " ".join(["abandon"] * 11),
        "x" * 2000,
    ],
)
def test_bad_phrases_are_refused(phrase: str) -> None:
    with pytest.raises(IdentityArgumentError):
        Identity.from_phrase(phrase)


def test_seed_repr_shows_nothing() -> None:
    seed = IdentitySeed(bytes(range(64)))
    assert repr(seed) == "IdentitySeed(<secret>)"
    node = seed.node(0, 0, Purpose.IDENTITY)
    assert node.private.hex() not in repr(node)


@settings(max_examples=200)
@given(st.text(max_size=300))
def test_any_text_is_a_phrase_or_a_typed_error(text: str) -> None:
    with contextlib.suppress(IdentityArgumentError):
        phrase_to_seed(text)
