"""A wallet's channel book on disk: ``WALLET.channels``, encrypted under the passphrase.

The book itself (:class:`~dchat_chain.lowlevel.ChannelBook`) does no I/O;
this blocking shell (the node CLI's ``wallet channel`` commands) keeps it.
The file is an ``encrypt_with_passphrase`` blob around the book's canonical
map (``docs/protocol.md``, section 16), under the wallet's passphrase and the
wallet file's own Argon2id cost (an existing channel file keeps its own),
written atomically with mode 0600.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dchat_crypto import (
    DecryptionError,
    KdfParams,
    KeystoreFormatError,
    decrypt_with_passphrase,
    encrypt_with_passphrase,
)
from dchat_storage.lowlevel import write_private

from ._channel_book import ChannelBook
from ._errors import ChannelError, ChannelFileError

if TYPE_CHECKING:
    from pathlib import Path

    from dchat_crypto import SigningKey

__all__ = ("ChannelFile",)


def _kdf_of(blob: bytes) -> KdfParams:
    """The Argon2id cost recorded in a keystore blob's header (the default if none)."""
    try:
        return KdfParams.of_blob(blob)
    except KeystoreFormatError:
        return KdfParams.DEFAULT


class ChannelFile:
    """Where one wallet's channel book is kept, and how it is sealed.

    Args:
        path: The channel file (created on first save).
        passphrase: The wallet's passphrase.
        kdf: The Argon2id cost to seal with.
    """

    def __init__(self, path: Path, passphrase: bytes, kdf: KdfParams) -> None:
        self.path, self._passphrase, self._kdf = path, passphrase, kdf

    @classmethod
    def load(
        cls, path: Path, key: SigningKey, passphrase: bytes, wallet: Path
    ) -> tuple[ChannelFile, ChannelBook]:
        """Open ``path`` (an empty book if missing), with the wallet file's KDF cost for a new one.

        Raises:
            ChannelFileError: Unreadable, wrong passphrase, another wallet's, or corrupt.
        """
        try:
            kdf = _kdf_of(wallet.read_bytes())
            blob = path.read_bytes() if path.exists() else None
        except OSError as exc:
            raise ChannelFileError(f"cannot read {path.name}: {exc.strerror}") from None
        if blob is None:
            return cls(path, passphrase, kdf), ChannelBook(key)
        try:
            plain = decrypt_with_passphrase(blob, passphrase)
        except (DecryptionError, KeystoreFormatError):
            raise ChannelFileError(f"cannot unlock {path.name}: wrong passphrase?") from None
        try:
            book = ChannelBook.from_bytes(plain, key)
        except ChannelError as exc:
            raise ChannelFileError(f"{path.name}: {exc}") from None
        return cls(path, passphrase, _kdf_of(blob)), book

    def save(self, book: ChannelBook) -> None:
        """Encrypt and write ``book`` atomically."""
        sealed = encrypt_with_passphrase(book.to_bytes(), self._passphrase, params=self._kdf)
        write_private(self.path, sealed)
