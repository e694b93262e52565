"""The wallet's light-client shell: the state file, and retrying a stale answer.

Verification and the state encoding are dchat-chain's (``test_light_reader.py``);
here only what the node adds: atomic files, read errors, and the retry loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dchat_chain import BlockHeader, LightClient, Validator, ValidatorSet
from dchat_chain.lowlevel import (
    LightReader,
    LightStateError,
    MerkleTree,
    StaleAnswerError,
    WalletLightReader,
    encode_light_state,
    light_state_path,
    read_light_state,
    write_light_state,
)
from dchat_crypto import BlsSecretKey, SigningKey


def _set() -> ValidatorSet:
    bls = BlsSecretKey.generate()
    member = Validator(
        validator_id=b"\x01" * 20,
        signing_key=SigningKey.generate().public_key,
        bls_public_key=bls.public_key,
        power=10,
        proof_of_possession=bls.prove_possession(),
    )
    return ValidatorSet.create([member])


VALS = _set()
GOOD = encode_light_state(LightClient("test-chain", VALS), VALS.hash())


def test_state_is_written_atomically_and_read_back(tmp_path: Path) -> None:
    path = light_state_path(tmp_path / "light", "test/chain")
    assert path.name == "test_chain.light"
    write_light_state(path, GOOD)
    assert path.read_bytes() == GOOD
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp left
    stored = read_light_state(path)
    assert stored is not None
    assert stored[1] == VALS.hash()
    assert read_light_state(tmp_path / "absent.light") is None


def test_damaged_oversized_or_missing_state_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "test-chain.light"
    path.write_bytes(GOOD[:-1] + bytes([GOOD[-1] ^ 1]))
    with pytest.raises(LightStateError):
        WalletLightReader.open(lambda _: {}, path, None)
    path.write_bytes(bytes(5 << 20))
    with pytest.raises(LightStateError, match="larger"):
        read_light_state(path)
    path.unlink()
    with pytest.raises(LightStateError, match="genesis"):
        WalletLightReader.open(lambda _: {}, path, None)  # no file and nothing to anchor at


def _at_height_5(key: bytes, value: bytes) -> tuple[LightReader, dict[str, Any]]:
    """A reader trusting header 5, whose app hash commits to ``key = value``."""
    tree = MerkleTree.from_items({key: value})
    header = BlockHeader.from_obj(
        {
            "chain": "test-chain",
            "h": 5,
            "r": 0,
            "t": 5,
            "prev": bytes(32),
            "txs": bytes(32),
            "app": tree.root,
            "vals": VALS.hash(),
            "next": VALS.hash(),
            "prop": b"\x01" * 20,
            "lc": bytes(32),
        }
    )
    reader = LightReader(LightClient.from_trusted_header(header, VALS), VALS.hash())
    _, proof = tree.prove(key)
    fresh = {
        "height": 4,
        "header_height": 5,
        "app_hash": tree.root.hex(),
        "value": value.hex(),
        "proof": proof.encode().hex(),
    }
    return reader, fresh


def test_a_stale_answer_is_retried_until_a_fresh_one_or_the_deadline(tmp_path: Path) -> None:
    reader, fresh = _at_height_5(b"acct/x", b"\x00" * 16)
    stale = {**fresh, "height": 1, "header_height": 2}
    answers = [stale, stale, fresh]
    shell = WalletLightReader(lambda _: answers.pop(0), tmp_path / "s.light", reader)
    doc, value, height = shell.read("/v1/chain/accounts/x", b"acct/x")
    assert (doc, value, height) == (fresh, b"\x00" * 16, 4)
    assert answers == []
    assert not (tmp_path / "s.light").exists()  # nothing newly verified, nothing written
    always = WalletLightReader(lambda _: stale, tmp_path / "s.light", reader, stale_wait=0.3)
    with pytest.raises(StaleAnswerError, match="height 1"):
        always.read("/v1/chain/accounts/x", b"acct/x")
