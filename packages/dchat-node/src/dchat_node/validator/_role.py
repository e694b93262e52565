"""The validator role: unlock the validator's keys and run the consensus shell."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from ._keys import load_validator_keys
from ._service import ValidatorService

if TYPE_CHECKING:
    from dchat_core import Clock, NodeId
    from dchat_storage import AsyncStore

    from ..config import NodeConfig

__all__ = ("ValidatorRole",)


class ValidatorRole:
    """A validator; :attr:`service` exists once :meth:`start` has unlocked the keys."""

    def __init__(self, config: NodeConfig, store: AsyncStore, clock: Clock) -> None:
        self.config, self.store, self.clock = config, store, clock
        self.service: ValidatorService | None = None

    async def start(self, nursery: trio.Nursery, passphrase: bytes) -> tuple[str, NodeId]:
        """Unlock ``validator.key``, start the service; returns (link address, node id)."""
        path = self.config.data_dir / "validator.key"
        keys = await trio.to_thread.run_sync(load_validator_keys, path, passphrase)
        self.service = ValidatorService(self.config, self.store, self.clock, keys)
        link = await self.service.start(nursery)
        return link, keys.node_id
