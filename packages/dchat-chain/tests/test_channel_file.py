"""A wallet's channel file: the channel book, encrypted under the wallet passphrase.

The book's rules are tested in ``test_channel_book.py``; here only what the file
adds: sealing, the KDF cost taken from the wallet file, and unlocking errors as
``ChannelFileError``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dchat_chain.lowlevel import ChannelFile, ChannelFileError
from dchat_crypto import KdfParams, SigningKey, encrypt_with_passphrase

SECRET = b"channel book passphrase"


def _wallet(tmp_path: Path, name: str) -> tuple[SigningKey, Path]:
    key = SigningKey.generate()
    wallet = tmp_path / f"{name}.wallet"  # only its KDF cost is read here
    wallet.write_bytes(encrypt_with_passphrase(b"a wallet", SECRET, params=KdfParams.TESTING))
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
    with pytest.raises(ChannelFileError, match="passphrase"):
        ChannelFile.load(path, bob, b"wrong", bob_wallet)
    with pytest.raises(ChannelFileError, match="another wallet"):
        ChannelFile.load(path, alice, SECRET, alice_wallet)
    with pytest.raises(ChannelFileError, match="cannot read"):
        ChannelFile.load(path, bob, SECRET, tmp_path / "missing.wallet")
