"""A user node inside the calling process, for :meth:`dchat_sdk.Client.embedded`.

The node is dchat-node's own runtime (:func:`dchat_node.run_node`: the same
composition, engines, storage and API as ``dchat-node run``), started on its
own trio loop in a background thread. It serves its API on a free loopback
port with a fresh token, as a node process does, and writes ``api.json``; the
client talks to it over that API, so embedded and connected clients are one
client. Nothing of the engine is repeated here: this module only starts,
waits for and stops the thread, and translates the node's start-up errors.

dchat-node is an optional dependency (``pip install 'dchat-sdk[embedded]'``):
it and trio are imported only when an embedded node starts.
"""

from __future__ import annotations

import contextlib
import threading
from functools import partial
from pathlib import Path
from typing import Any

from ._errors import DataDirLockedError, EmbeddedNodeError, WrongPassphraseError

__all__ = ("EmbeddedNode",)


class EmbeddedNode:
    """A user node running on a trio loop in a daemon thread of this process.

    Args:
        data_dir: The node's data directory (created if missing; made private).
        passphrase: Unlocks (or, the first time, seals) the node's database.
        overrides: Node configuration (``relay``, ``relays``, ``poll_interval``,
            ...), over ``DATA_DIR/dchat.toml`` and ``DCHAT_*`` variables.

    The node sets the process umask to 0077, as ``dchat-node run`` does.
    """

    def __init__(self, data_dir: str | Path, passphrase: str, overrides: dict[str, Any]) -> None:
        self._data_dir = Path(data_dir)
        self._passphrase = passphrase.encode()
        self._overrides = {**overrides, "role": "user"}
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._info: dict[str, Any] | None = None
        self._error: BaseException | None = None
        self._stop: Any = None  # cancels the node from another thread

    def start(self, timeout: float) -> tuple[str, str]:
        """Start the node and wait until its API serves; returns its URL and token (blocking).

        Raises:
            DataDirLockedError: Another node runs on the data directory.
            WrongPassphraseError: The passphrase does not unlock the database.
            EmbeddedNodeError: Any other reason the node refused to start, or
                ``timeout`` seconds passed.
            ImportError: dchat-node is not installed (``dchat-sdk[embedded]``).
        """
        from dchat_node import load_config

        config = load_config(self._data_dir, overrides=self._overrides)
        self._thread = threading.Thread(
            target=self._main, args=(config,), name="dchat-embedded-node", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop(timeout)
            raise EmbeddedNodeError(f"the embedded node did not start within {timeout} s")
        if self._error is not None:
            raise _translate(self._error) from None
        assert self._info is not None
        return str(self._info["url"]), str(self._info["token"])

    def _main(self, config: Any) -> None:
        import trio

        from dchat_node import run_node

        async def main() -> None:
            token = trio.lowlevel.current_trio_token()
            async with trio.open_nursery() as nursery:
                cancel = nursery.cancel_scope.cancel
                self._stop = partial(trio.from_thread.run_sync, cancel, trio_token=token)
                run = partial(run_node, config, self._passphrase, signals=False)
                self._info = await nursery.start(run)
                self._ready.set()

        try:
            trio.run(main)
        except BaseException as exc:  # reported to start(); the thread ends here
            self._error = exc
        finally:
            self._ready.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the node (its API, engines and database) and wait for the thread."""
        thread, stop = self._thread, self._stop
        if thread is None:
            return
        if stop is not None and thread.is_alive():
            with contextlib.suppress(RuntimeError):  # trio.RunFinishedError: it ended
                stop()
        thread.join(timeout)
        self._thread = None


def _translate(exc: BaseException) -> Exception:
    from dchat_node import DchatNodeError, NodeStateError
    from dchat_storage import LockedError

    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]  # trio's nurseries group what fails inside them
    if isinstance(exc, NodeStateError) and exc.code == "data_dir_in_use":
        return DataDirLockedError(str(exc))
    if isinstance(exc.__context__, LockedError):  # the node's "cannot unlock the database"
        return WrongPassphraseError("the passphrase does not unlock the node's database")
    if isinstance(exc, DchatNodeError):
        return EmbeddedNodeError(str(exc))
    return EmbeddedNodeError(f"the embedded node stopped: {type(exc).__name__}: {exc}")
