"""A user node's way to one chain: a validator's API, read through a light client.

:class:`ChainLink` is the I/O around dchat-chain's sans-IO readers for one
chain (the chat chain for handles, the currency chain for payments). It
reaches a validator through the ``api.json`` in the configured data directory
(``chat_node`` / ``currency_node``), anchors the light client at that chain's
genesis (``chat_genesis`` / ``currency_genesis``, else the validator's own
``genesis.cbor``, trusted on first use), keeps the verified headers in
``DATA_DIR/light/<chain>.light``, retries stale answers for a few seconds, and
submits transactions and waits until they are committed and certified.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

import httpx
import trio

from dchat_chain.lowlevel import (
    LightReader,
    StaleAnswerError,
    genesis_anchor,
    light_state_name,
    light_state_path,
    write_light_state,
)

from .._errors import NodeStateError
from ..validator._keys import VALIDATOR_GENESIS

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from dchat_chain import Transaction

    from .._runtime import Node

__all__ = ("COMMIT_WAIT", "ChainLink")

STALE_WAIT: Final = 5.0
COMMIT_WAIT: Final = 60.0
POLL: Final = 0.1


class ChainLink:
    """One chain's validator API and light client for a user node (see the module docstring).

    Args:
        node: The node (its data directory holds the light state).
        name: The chain's role, ``chat`` or ``currency`` (for messages).
        where: Gives the configured validator data directory and genesis file.
        refused: The error code of a transaction the chain refuses.
    """

    def __init__(
        self,
        node: Node,
        name: str,
        where: Callable[[], tuple[Path | None, Path | None]],
        refused: str,
    ) -> None:
        self._node, self._name, self._where, self._refused = node, name, where, refused
        self._lock = trio.Lock()  # one light client: one verified read at a time
        self._genesis: bytes | None = None
        self._light: LightReader | None = None  # restored once, then kept (and written back)
        self._http: httpx.AsyncClient | None = None  # one connection pool, while api.json holds
        self._http_for: tuple[str, str] | None = None

    def _chain_dir(self) -> Path:
        directory = self._where()[0]
        if directory is None:
            raise NodeStateError(
                "no_chain", f"no {self._name} chain configured (set {self._name}_node)"
            )
        return directory

    def genesis(self) -> bytes:
        """The chain's genesis document (the light client's anchor), read once."""
        if self._genesis is None:
            path = self._where()[1] or self._chain_dir() / VALIDATOR_GENESIS
            try:
                self._genesis = path.read_bytes()
            except OSError as exc:
                raise NodeStateError(
                    "no_chain", f"cannot read the {self._name} genesis: {exc}"
                ) from None
        return self._genesis

    def chain_id(self) -> str:
        """The chain's id, from its genesis."""
        return str(genesis_anchor(self.genesis())[0])

    async def _client(self) -> httpx.AsyncClient:
        """The HTTP client for the validator ``api.json`` names (rebuilt when it changes)."""
        info = json.loads(await trio.Path(self._chain_dir() / "api.json").read_text())
        where = (str(info["url"]), str(info["token"]))
        if self._http is None or self._http_for != where:
            if self._http is not None:
                await self._http.aclose()
            headers = {"Authorization": f"Bearer {where[1]}"}
            self._http = httpx.AsyncClient(base_url=where[0], headers=headers, timeout=10)
            self._http_for = where
        return self._http

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """One API call to the chain's validator (its answers are not trusted)."""
        try:
            client = await self._client()
            answer = await client.request(method, path, json=body)
            data = answer.json()
        except (OSError, ValueError, KeyError, TypeError, httpx.HTTPError) as exc:
            raise NodeStateError(
                "chain_unreachable", f"the {self._name} chain node: {exc}"
            ) from None
        if answer.status_code >= 400:
            raise NodeStateError("chain_unreachable", f"the {self._name} chain node: {data}")
        return data

    def _state_file(self, chain_id: str) -> Path:
        return light_state_path(self._node.config.data_dir / "light", chain_id)

    async def _reader(self) -> LightReader:
        if self._light is None:
            genesis, chain_id = self.genesis(), self.chain_id()
            path = trio.Path(self._state_file(chain_id))
            stored = await path.read_bytes() if await path.exists() else None
            self._light = LightReader.restore(stored, genesis, name=light_state_name(chain_id))
        return self._light

    async def verified(self, start: Any) -> Any:
        """Run the read ``start(reader)`` makes to the end; retry stale answers; keep headers."""
        async with self._lock:
            reader = await self._reader()
            height = reader.height
            deadline = trio.current_time() + STALE_WAIT
            try:
                while True:
                    read = start(reader)
                    try:
                        while (path := read.next_request()) is not None:
                            read.receive(await self.call("GET", path))
                        return read
                    except StaleAnswerError:
                        if trio.current_time() >= deadline:
                            raise
                        await trio.sleep(0.2)
            finally:
                if reader.height != height:
                    file = self._state_file(reader.client.chain_id)
                    file.parent.mkdir(mode=0o700, exist_ok=True)
                    await trio.to_thread.run_sync(write_light_state, file, reader.to_bytes())

    async def send(self, raw: bytes) -> dict[str, Any]:
        """Submit the transaction bytes ``raw``; the node's admission result."""
        result: dict[str, Any] = (await self.call("POST", "/v1/chain/txs", {"txs": [raw.hex()]}))[
            "results"
        ][0]
        return result

    async def submit(self, tx: Transaction) -> int:
        """Submit ``tx``; wait until it is committed and a header certifies its result.

        Returns:
            The height it committed at.
        """
        result = await self.send(tx.raw)
        if not result["accepted"]:
            raise NodeStateError(self._refused, f"{result['error']}: {result['message']}")
        return await self.settled(tx.hash.hex())

    async def settled(self, digest: str) -> int:
        """Wait until the transaction ``digest`` is committed (code 0) and certified."""
        with trio.move_on_after(COMMIT_WAIT) as scope:
            status = await self.committed(digest)
            if status["code"] != 0:
                raise NodeStateError(self._refused, str(status["log"]))
            height = int(status["height"])
            while True:  # polling a remote node: there is no event to wait for
                if await self.certified(height):
                    return height
                await trio.sleep(POLL)
        assert scope.cancelled_caught
        raise NodeStateError("chain_unreachable", "not committed in time")

    async def certified(self, height: int) -> bool:
        """Whether a header certifies the state after block ``height``."""
        status = await self.call("GET", "/v1/chain/status")
        return bool(status.get("certified_height", 0) >= height)

    async def committed(self, digest: str) -> dict[str, Any]:
        """Wait until the transaction ``digest`` is committed; its status."""
        while True:
            status: dict[str, Any] = await self.call("GET", f"/v1/chain/txs/{digest}")
            if status["status"] == "committed":
                return status
            await trio.sleep(POLL)
