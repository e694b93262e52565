"""The relay role: the relay server shell on the link port, with its node key.

The relay's long-lived node key (its :class:`~dchat_core.NodeId`, which users
pin with ``--relay-node``) is created on first start and kept encrypted under
the node passphrase in ``<data-dir>/node.key``. With ``chat_node`` set the
relay claims its receipt batches on its own (dchat-network's ``run_claims``,
``[node.relay_claims]``), signed with the node key or the operator's wallet.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

import httpx
import trio

from dchat_chain import Transaction
from dchat_core import NodeId
from dchat_crypto import (
    DecryptionError,
    KeystoreFormatError,
    SigningKey,
    decrypt_with_passphrase,
    encrypt_with_passphrase,
)
from dchat_network.lowlevel import ClaimPolicy, PortMapper, run_claims
from dchat_storage.lowlevel import RelayBlobStore, write_private

from .._errors import ConfigError, NodeStateError
from ..config import parse_hostport
from ..validator._keys import load_wallet
from ._service import RelayService

if TYPE_CHECKING:
    from pathlib import Path

    from dchat_core import Clock
    from dchat_storage import AsyncStore

    from ..config import NodeConfig

__all__ = ("RelayRole", "load_node_key", "submit_claim")


def load_node_key(path: Path, passphrase: bytes) -> SigningKey:
    """The relay's node key at ``path``, created on first start."""
    if path.exists():
        try:
            return SigningKey.from_bytes(decrypt_with_passphrase(path.read_bytes(), passphrase))
        except (DecryptionError, KeystoreFormatError):
            raise ConfigError("cannot unlock the node key: wrong passphrase?") from None
    key = SigningKey.generate()
    write_private(path, encrypt_with_passphrase(key.to_bytes(), passphrase))
    return key


async def submit_claim(chat_node: Path, key: SigningKey, root: bytes, count: int, fee: int) -> None:
    """Claim ``receipt_batch {root, count}`` through the chat validator of ``chat_node``.

    Returns once the claim is committed (the caller bounds the wait): only then
    may the relay drop the batch this claim supersedes.
    """
    info = json.loads(await trio.Path(chat_node / "api.json").read_text())
    auth = {"Authorization": f"Bearer {info['token']}"}
    async with httpx.AsyncClient(base_url=info["url"], headers=auth, timeout=10.0) as api:
        chain = (await api.get("/v1/chain/status")).raise_for_status().json()["chain_id"]
        path = f"/v1/chain/accounts/{key.public_key.to_bytes().hex()}"
        nonce = (await api.get(path)).raise_for_status().json()["next_nonce"]
        body = {"root": root, "count": count}
        tx = Transaction.create(
            key, chain_id=chain, nonce=nonce, fee=fee, kind="receipt_batch", body=body
        )
        answer = await api.post("/v1/chain/txs", json={"txs": [tx.raw.hex()]})
        (result,) = answer.raise_for_status().json()["results"]
        while result.get("status") != "committed" and result.get("accepted", True):
            await trio.sleep(0.5)  # polling a remote node: there is no event to wait for
            result = (await api.get(f"/v1/chain/txs/{tx.hash.hex()}")).json()
    if not result.get("accepted", True) or result.get("code"):
        why = result.get("log") or f"{result.get('error')}: {result.get('message')}"
        raise NodeStateError("claim_refused", why)


class RelayRole:
    """A relay: the sans-IO relay server behind the link listener."""

    def __init__(self, config: NodeConfig, store: AsyncStore, clock: Clock) -> None:
        self.config = config
        self.store = store
        self.service = RelayService(store, clock, config.relay_limits)
        self.service.server.blobs = RelayBlobStore(config.data_dir / "blobs")  # sealed files
        self.mapper: PortMapper | None = None
        self.clock = clock
        self.claims: ClaimPolicy | None = None
        """The automatic claims' policy (None: the relay does not claim on its own)."""

    async def start(self, nursery: trio.Nursery, passphrase: bytes) -> tuple[str, NodeId]:
        """Unlock the node key, listen for links; returns (link address, node id)."""
        key = await trio.to_thread.run_sync(
            load_node_key, self.config.data_dir / "node.key", passphrase
        )
        host, port = parse_hostport(self.config.listen)
        bound = await nursery.start(self.service.serve, host, port, key)
        if self.config.upnp:  # reachable from outside a home router (removed on shutdown)
            self.mapper = PortMapper(bound[1], igd=self.config.upnp_igd)
            nursery.start_soon(self.mapper.run)
        claims, book = self.config.relay_claims, self.service.server.receipts
        if claims.enabled and self.config.chat_node is not None and book is not None:
            signer = key
            if claims.wallet is not None:
                signer = await trio.to_thread.run_sync(load_wallet, claims.wallet, passphrase)
            submit = functools.partial(submit_claim, self.config.chat_node, signer)
            self.claims = ClaimPolicy(claims, self.clock.now())
            args = (self.claims, book, submit, self.store.run, self.clock.now)
            nursery.start_soon(run_claims, *args)
        return f"{bound[0]}:{bound[1]}", NodeId.derive(key.public_key.to_bytes())

    async def status(self) -> dict[str, Any]:
        """The relay part of ``/status``."""
        return {
            "mailbox_entries": await self.store.run(self.store.db.mailboxes.count),
            "stored": self.service.server.stored,
            "delivered": self.service.server.delivered,
            "parked_pulls": self.service.parked,
            "onions": self.service.onion_status(),  # protocol section 39
            "upnp": None if self.mapper is None else self.mapper.status(),
        }
