"""The user role: the services of a user node, wired together and started.

A user node runs the messaging shell (:class:`UserService`) and, around it,
identity documents, the device features (devices, pairing, sync, profiles),
guardians and recovery, burners, message requests and broadcast channels
(:class:`dchat_network.lowlevel.TopicSync` over ``agent.channels``). Each of those is a thin
shell around its package's sans-IO agent; this module only builds them in the
order their hooks need and starts their tasks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dchat_network.lowlevel import CoverSender, TopicSync

from ._attachments import AttachmentService
from ._burners import BurnerService
from ._devices import DeviceService
from ._documents import DocumentService
from ._guardians import GuardianService
from ._pairing import PairingService
from ._profiles import ProfileService
from ._requests import RequestService
from ._service import UserService
from ._sync import SyncService

if TYPE_CHECKING:
    import trio

    from dchat_core import Clock
    from dchat_storage import AsyncStore

    from ..config import NodeConfig

__all__ = ("IdentityFeatures", "UserRole")


class IdentityFeatures:
    """The device, pairing, sync and profile services of one user node."""

    def __init__(self, user: UserService, documents: DocumentService, store: AsyncStore) -> None:
        self.devices = DeviceService(user, documents)
        self.pairing = PairingService(user, self.devices)
        self.sync = SyncService(user, self.devices, store)
        self.profile = ProfileService(user, documents, self.sync)
        self.pairing.on_joined(self.sync.start)

    async def start(self) -> None:
        """After the identity is loaded: start draining the sync mailbox."""
        await self.sync.start()


class UserRole:
    """Every service of a user node (built in dependency order, started by :meth:`start`)."""

    def __init__(
        self, config: NodeConfig, store: AsyncStore, clock: Clock, passphrase: bytes
    ) -> None:
        self.config = config
        self._store = store
        self.user = UserService(config, store, clock, passphrase)
        self.documents = DocumentService(self.user)
        self.features = IdentityFeatures(self.user, self.documents, store)
        self.guardians = GuardianService(
            self.user, self.documents, min_lock=config.guardian_min_lock
        )
        self.burners = BurnerService(self.user, config)
        self.requests = RequestService(self.user, store)
        self.attachments = AttachmentService(self.user, store, config.data_dir / "attachments")
        u, book = self.user, self.user.agent.channels
        self.channels = TopicSync(
            u.pool,
            pending=lambda: u.run(book.pending),
            uploaded=lambda post, relay: u.run(book.uploaded, post, relay),
            follows=lambda: u.run(book.follows),
            receive=lambda *read: u.logged(book.receive, *read, now=u.now()),
        )
        self.features.sync.on_channels = self.channels.wake
        self.cover = CoverSender(u.agent.cover, u.pool.put_many, u.now, config.home_relays)

    async def start(self, nursery: trio.Nursery) -> None:
        """Load the stored state, then run the outbox, session and mailbox tasks."""
        await self.user.load()
        await self.requests.load()
        await self.features.start()
        await self.documents.load()
        await self.burners.load()
        nursery.start_soon(self.burners.run_expiry, max(1.0, self.config.poll_interval))
        nursery.start_soon(self.user.run_outbox)
        nursery.start_soon(self.user.run_sessions)
        nursery.start_soon(self.user.run_mailbox)
        nursery.start_soon(self.user.run_status_events)
        nursery.start_soon(self.attachments.run_expiry)
        nursery.start_soon(self.channels.run)
        nursery.start_soon(self.cover.run)

    async def status(self) -> dict[str, Any]:
        """The user part of ``/status``."""
        user, now, db = self.user, self.user.now(), self._store.db

        def queue() -> tuple[int, float | None]:  # one worker trip for the three reads
            queued = db.outbox.count() + user.engines.pending_count()
            return queued, user.agent.outbox.oldest()

        queued, oldest = await user.run(queue)
        return {
            "identity_id": str(user.identity.identity_id) if user.has_identity else None,
            "outbox": queued,
            "outbox_oldest_age": None if oldest is None else round(max(0.0, now - oldest), 3),
            "relay": user.relay_state(),
            "links": [link.status() for link in user.links.values()],
            **user.agent.counters(),
        }
