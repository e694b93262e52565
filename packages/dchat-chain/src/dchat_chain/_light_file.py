"""A light client kept in a file: :class:`~dchat_chain.lowlevel.LightReader` over a fetch.

The reader (verification, the order of requests) does no I/O. This blocking
shell (the wallet's, the node CLI's) GETs what it asks for through a
``fetch`` callable, retries a stale answer for a few seconds (another node may
lag a block), and keeps the verified state in one file per chain, written
atomically and durably (a crash leaves the old or the new state, never a torn
one). Whatever verified before a refusal is kept and saved.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final

from dchat_storage.lowlevel import read_private, write_private

from ._errors import LightStateError, StaleAnswerError
from ._light_reader import LightReader
from ._light_state import MAX_LIGHT_STATE_SIZE, decode_light_state, light_state_name

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from ._light import LightClient
    from ._light_reader import LightRead

__all__ = ("WalletLightReader", "light_state_path", "read_light_state", "write_light_state")

STALE_WAIT: Final = 5.0
RETRY_PAUSE: Final = 0.2


def light_state_path(directory: Path, chain_id: str) -> Path:
    """Where the light state of ``chain_id`` lives in ``directory``."""
    return directory / light_state_name(chain_id)


def _read_bytes(path: Path) -> bytes | None:
    try:
        return read_private(path, MAX_LIGHT_STATE_SIZE)
    except (OSError, ValueError) as exc:
        raise LightStateError(f"cannot read {path.name}: {exc}") from None


def read_light_state(path: Path) -> tuple[LightClient, bytes] | None:
    """The client and anchor stored at ``path``, or None when there is no file.

    Raises:
        LightStateError: The file is unreadable, too large or corrupt.
    """
    data = _read_bytes(path)
    return None if data is None else decode_light_state(data)


def write_light_state(path: Path, data: bytes) -> None:
    """Replace the state at ``path`` atomically and durably (see :func:`write_private`)."""
    try:
        write_private(path, data)
    except OSError as exc:
        raise LightStateError(f"cannot write {path.name}: {exc.strerror}") from None


class WalletLightReader:
    """Verified reads of one chain through an untrusted node API, persisted in a file.

    Args:
        fetch: GET a path of the node API, returning the decoded JSON.
        path: The state file.
        reader: The sans-IO reader (restored or fresh).
        stale_wait: How long a stale answer is retried before it is refused.
    """

    def __init__(
        self,
        fetch: Callable[[str], Any],
        path: Path,
        reader: LightReader,
        *,
        stale_wait: float = STALE_WAIT,
    ) -> None:
        self._fetch, self._path, self.reader = fetch, path, reader
        self._stale_wait = stale_wait

    @classmethod
    def open(
        cls,
        fetch: Callable[[str], Any],
        path: Path,
        genesis: bytes | None,
        *,
        stale_wait: float = STALE_WAIT,
    ) -> WalletLightReader:
        """The reader of the state at ``path``, or a new one anchored at ``genesis``.

        Raises:
            LightStateError: The file is corrupt; it is anchored at another
                genesis than ``genesis``; or there is neither file nor genesis.
        """
        reader = LightReader.restore(_read_bytes(path), genesis, name=path.name)
        return cls(fetch, path, reader, stale_wait=stale_wait)

    @property
    def client(self) -> LightClient:
        """The light client."""
        return self.reader.client

    def save(self) -> None:
        """Persist the verified state (atomic)."""
        write_light_state(self._path, self.reader.to_bytes())

    def catch_up(self, height: int) -> int:
        """Verify headers until ``height``; returns how many were verified (saved)."""
        start = self.reader.height
        self._run(self.reader.catch_up(height))
        return self.reader.height - start

    def read(self, path: str, key: bytes) -> tuple[dict[str, Any], bytes | None, int]:
        """GET ``path`` (a proven answer for ``key``) and verify it.

        Returns:
            The answer, the proven value (None: absent) and the height of the state.

        Raises:
            StaleAnswerError: The node kept answering for an older state.
            DchatChainError: The answer or a header does not verify (see
                :class:`dchat_chain.lowlevel.LightRead`).
        """
        deadline = time.monotonic() + self._stale_wait
        while True:
            try:
                read = self._run(self.reader.read(path, key))
            except StaleAnswerError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(RETRY_PAUSE)
                continue
            return read.result()

    def _run(self, read: LightRead) -> LightRead:
        """Answer ``read``'s requests; save what verified, also after a refusal."""
        start = self.reader.height
        try:
            while (request := read.next_request()) is not None:
                read.receive(self._fetch(request))
        finally:
            if self.reader.height != start:
                self.save()
        return read
