"""A wallet's stealth scan on disk: ``WALLET.stealth``, sealed under the wallet key.

The scan (:class:`~._stealth_scan.StealthScan`) does no I/O; this blocking
shell (the wallet CLI, a user node) keeps it. Its finds say which one-time
accounts are the wallet's, which is exactly what stealth payments hide, so the
file is sealed: ChaCha20-Poly1305 under ``HKDF-SHA256(wallet seed, info =
"dchat-stealth-file-v1")`` with a fresh 12-byte nonce per write (the key
needs no passphrase round, so a scan can save after every page), written
atomically with mode 0600. Layout: ``nonce || ciphertext`` of
:meth:`StealthScan.to_bytes`, with ``"dchat-stealth-scan"`` as associated data.

A user node's file also scans for its burners: ``others`` maps each live
burner's label to the burner's own seed (its stealth keys derive from it as
the wallet's do from the wallet seed); the file stays sealed under the main
seed's key.
"""

from __future__ import annotations

import os
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from dchat_crypto import DecryptionError
from dchat_crypto.hazmat import (
    chacha20poly1305_decrypt,
    chacha20poly1305_encrypt,
    hkdf_sha256,
)
from dchat_storage.lowlevel import read_private, write_private

from ._errors import LightStateError
from ._stealth import StealthKeys
from ._stealth_scan import StealthScan

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = ("StealthScanFile",)

_INFO: Final = b"dchat-stealth-file-v1"
_AD: Final = b"dchat-stealth-scan"
_NONCE: Final = 12
_MAX_FILE: Final = 16 << 20


class StealthScanFile:
    """Where one wallet's stealth scan is kept, and how it is sealed.

    Args:
        path: The scan file (created on first save).
        seed: The wallet key's 32-byte seed (derives the stealth keys and the file key).
        others: More owners to scan for in the same pass: label -> 32-byte seed.
    """

    def __init__(
        self, path: Path, seed: bytes, others: Mapping[bytes, bytes] = MappingProxyType({})
    ) -> None:
        self.path = path
        self.keys = StealthKeys.from_seed(seed)
        self.keyring = {b"": self.keys} | {o: StealthKeys.from_seed(s) for o, s in others.items()}
        """Every owner's keys, the wallet's own under ``b""``."""
        self._key = hkdf_sha256(seed, salt=b"", info=_INFO, length=32)

    def load(self, genesis: bytes | None) -> StealthScan:
        """The kept scan, or a new one from ``genesis`` when there is no file.

        Raises:
            LightStateError: The file is unreadable, not this wallet's, corrupt,
                or missing while ``genesis`` is None.
        """
        try:
            blob = read_private(self.path, _MAX_FILE)
        except (OSError, ValueError) as exc:
            raise LightStateError(f"cannot read {self.path.name}: {exc}") from None
        if blob is None:
            return StealthScan.restore(None, genesis, self.keyring)
        if len(blob) < _NONCE + 16:
            raise LightStateError(f"{self.path.name} is not this wallet's or is damaged")
        try:
            data = chacha20poly1305_decrypt(self._key, blob[:_NONCE], blob[_NONCE:], _AD)
        except DecryptionError:
            raise LightStateError(f"{self.path.name} is not this wallet's or is damaged") from None
        return StealthScan.restore(data, None, self.keyring)

    def save(self, scan: StealthScan) -> None:
        """Seal and replace the file (atomic, mode 0600)."""
        nonce = os.urandom(_NONCE)
        sealed = chacha20poly1305_encrypt(self._key, nonce, scan.to_bytes(), _AD)
        try:
            write_private(self.path, nonce + sealed)
        except OSError as exc:
            raise LightStateError(f"cannot write {self.path.name}: {exc.strerror}") from None
