"""The wallet's channel file: the chain's channel book, encrypted under the wallet passphrase.

The book's rules are tested in dchat-chain (``test_channel_book.py``); here only
what the node adds: sealing, the KDF cost, and unlocking errors as ``ConfigError``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dchat_crypto import KdfParams, SigningKey
from dchat_node import ConfigError
from dchat_node.validator._keys import write_wallet
from dchat_node.wallet._channel_file import ChannelFile

SECRET = b"channel book passphrase"


def _wallet(tmp_path: Path, name: str) -> tuple[SigningKey, Path]:
    key = SigningKey.generate()
    wallet = tmp_path / f"{name}.wallet"
    write_wallet(wallet, key, SECRET, kdf=KdfParams.TESTING)
    return key, wallet


def test_the_book_is_sealed_and_reopened(tmp_path: Path) -> None:
    alice, alice_wallet = _wallet(tmp_path, "alice")
    bob, bob_wallet = _wallet(tmp_path, "bob")
    path = tmp_path / "bob.wallet.channels"
    file, book = ChannelFile.load(path, bob, SECRET, bob_wallet)
    assert book.channels == {}
    offer = ChannelFile.load(tmp_path / "a.channels", alice, SECRET, alice_wallet)[1].offer(
        "chain", book.me, 10, 5, 0
    )
    book.consent(offer)
    file.save(book)
    blob = path.read_bytes()
    assert offer.chan not in blob
    assert book.me not in blob
    assert path.stat().st_mode & 0o777 == 0o600
    assert blob[5:9] == KdfParams.TESTING.memory_kib.to_bytes(4, "big")  # the wallet's cost
    again = ChannelFile.load(path, bob, SECRET, bob_wallet)[1]
    assert again.to_bytes() == book.to_bytes()
    with pytest.raises(ConfigError, match="passphrase"):
        ChannelFile.load(path, bob, b"wrong", bob_wallet)
    with pytest.raises(ConfigError, match="another wallet"):
        ChannelFile.load(path, alice, SECRET, alice_wallet)
    with pytest.raises(ConfigError, match="cannot read"):
        ChannelFile.load(path, bob, SECRET, tmp_path / "missing.wallet")
