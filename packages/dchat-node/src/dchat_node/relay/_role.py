"""The relay role: the relay server shell on the link port, with its node key.

The relay's long-lived node key (its :class:`~dchat_core.NodeId`, which users
pin with ``--relay-node``) is created on first start and kept encrypted under
the node passphrase in ``<data-dir>/node.key``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from dchat_core import NodeId
from dchat_crypto import (
    DecryptionError,
    KeystoreFormatError,
    SigningKey,
    decrypt_with_passphrase,
    encrypt_with_passphrase,
)
from dchat_network.lowlevel import PortMapper
from dchat_storage.lowlevel import RelayBlobStore, write_private

from .._errors import ConfigError
from ..config import parse_hostport
from ._service import RelayService

if TYPE_CHECKING:
    from pathlib import Path

    from dchat_core import Clock
    from dchat_storage import AsyncStore

    from ..config import NodeConfig

__all__ = ("RelayRole", "load_node_key")


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


class RelayRole:
    """A relay: the sans-IO relay server behind the link listener."""

    def __init__(self, config: NodeConfig, store: AsyncStore, clock: Clock) -> None:
        self.config = config
        self.store = store
        blobs = RelayBlobStore(config.data_dir / "blobs")  # sealed attachments, files
        self.service = RelayService(store, clock, config.relay_limits, blobs)
        self.mapper: PortMapper | None = None

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
        return f"{bound[0]}:{bound[1]}", NodeId.derive(key.public_key.to_bytes())

    async def status(self) -> dict[str, Any]:
        """The relay part of ``/status``."""
        return {
            "mailbox_entries": await self.store.run(self.store.db.mailboxes.count),
            "stored": self.service.server.stored,
            "delivered": self.service.server.delivered,
            "parked_pulls": self.service.parked,
            "upnp": None if self.mapper is None else self.mapper.status(),
        }
