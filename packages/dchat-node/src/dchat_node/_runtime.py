"""The node process: opens storage, unlocks keys, runs the role's services.

A user node's database is encrypted at rest: it is opened with the node
passphrase, which unwraps (Argon2id) the database's storage key; a database
left clear by an older release is sealed on that first open. A relay's
database holds only sealed envelopes and stays clear. Both run the lifecycle
task (``_lifecycle``).

On start the node writes ``<data-dir>/api.json`` (mode 0600) with its API URL,
a fresh bearer token, its role, link address, node id and pid; clients and the
demo read it, and the process that wrote it removes it on a clean stop.
Before opening the database the node takes the data directory's lock
(``_datadir_lock``): a second node on the same directory refuses to start
and leaves the first one's ``api.json`` alone. SIGINT and SIGTERM stop the
node gracefully.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import secrets
import signal
from typing import TYPE_CHECKING, Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from dchat_core import Clock, NodeId, SystemClock
from dchat_crypto import (
    DecryptionError,
    KeystoreFormatError,
    SigningKey,
    decrypt_with_passphrase,
    encrypt_with_passphrase,
)
from dchat_network import serve_links
from dchat_storage import Database, LockedError, open_database

from ._api import create_app
from ._burner_service import BurnerService
from ._datadir_lock import datadir_lock
from ._documents import DocumentService
from ._errors import ConfigError, NodeStateError
from ._guardian_service import GuardianService
from ._identity_api import IdentityFeatures
from ._lifecycle import LifecycleTask, policy_for
from ._relay_service import RelayService
from ._requests_service import RequestService
from ._store import AsyncStore
from ._user_service import UserService
from ._validator_api import start_validator
from .config import NodeConfig, parse_hostport

if TYPE_CHECKING:
    from pathlib import Path

    from ._validator_service import ValidatorService

__all__ = ("Node", "run_node")

_log = logging.getLogger("dchat.node")


def _load_node_key(path: Path, passphrase: bytes) -> SigningKey:
    """The relay's long-lived node key, created on first start."""
    if path.exists():
        try:
            return SigningKey.from_bytes(decrypt_with_passphrase(path.read_bytes(), passphrase))
        except (DecryptionError, KeystoreFormatError):
            raise ConfigError("cannot unlock the node key: wrong passphrase?") from None
    key = SigningKey.generate()
    _write_private(path, encrypt_with_passphrase(key.to_bytes(), passphrase))
    return key


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class Node:
    """One running node: its config, storage and role services."""

    def __init__(
        self, config: NodeConfig, store: AsyncStore, clock: Clock, passphrase: bytes
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self._user = (
            UserService(config, store, clock, passphrase) if config.role == "user" else None
        )
        self._documents = None if self._user is None else DocumentService(self._user)
        self._features = (
            None
            if self._user is None or self._documents is None
            else IdentityFeatures(self._user, self._documents, store)
        )
        self._guardians = (
            None
            if self._user is None or self._documents is None
            else GuardianService(self._user, self._documents, min_lock=config.guardian_min_lock)
        )
        self._burners = None if self._user is None else BurnerService(self._user, config)
        self._requests = None if self._user is None else RequestService(self._user, store)
        self.relay = RelayService(store.db, clock) if config.role == "relay" else None
        self.lifecycle = LifecycleTask(store, clock, policy_for(config.role))
        self.node_id: NodeId | None = None
        self.validator: ValidatorService | None = None  # set by start_validator
        self.link_address: str | None = None
        self.started_at = clock.now()

    @property
    def user(self) -> UserService:
        """The user service; :class:`NodeStateError` on a relay."""
        if self._user is None:
            raise NodeStateError("wrong_role", "this node does not have the user role")
        return self._user

    @property
    def documents(self) -> DocumentService:
        """Identity documents (user role); :class:`NodeStateError` on other roles."""
        if self._documents is None:
            raise NodeStateError("wrong_role", "this node does not have the user role")
        return self._documents

    @property
    def features(self) -> IdentityFeatures:
        """Devices, pairing, sync and profiles (user role)."""
        if self._features is None:
            raise NodeStateError("wrong_role", "this node does not have the user role")
        return self._features

    @property
    def guardians(self) -> GuardianService:
        """Guardians and recovery (user role); :class:`NodeStateError` on other roles."""
        if self._guardians is None:
            raise NodeStateError("wrong_role", "this node does not have the user role")
        return self._guardians

    @property
    def burners(self) -> BurnerService:
        """Burners (user role); :class:`NodeStateError` on other roles."""
        if self._burners is None:
            raise NodeStateError("wrong_role", "this node does not have the user role")
        return self._burners

    @property
    def requests(self) -> RequestService:
        """Message requests and blocking (user role)."""
        if self._requests is None:
            raise NodeStateError("wrong_role", "this node does not have the user role")
        return self._requests

    async def status(self) -> dict[str, Any]:
        """Counters and identity for ``/status``."""
        db = self.store.db
        report: dict[str, Any] = {
            "role": self.config.role,
            "uptime": round(self.clock.now() - self.started_at, 3),
            "node_id": None if self.node_id is None else str(self.node_id),
            "link": self.link_address,
            "lifecycle_sweeps": self.lifecycle.sweeps,
        }
        if self.relay is not None:
            report["mailbox_entries"] = await self.store.run(db.mailboxes.count)
            report["stored"] = self.relay.server.stored
            report["delivered"] = self.relay.server.delivered
        if self._user is not None:
            report["identity_id"] = (
                None if self._user._identity is None else str(self._user.identity.identity_id)
            )
            queued = await self.store.run(db.outbox.count)
            report["outbox"] = queued + await self._user.waiting_for_sessions()
            report["sent"] = self._user.sent
            report["received"] = self._user.received
            report["rejected"] = self._user.rejected
            report["rejected_retired"] = self._user.rejected_retired
            report["session_resets"] = self._user.session_resets
            report["refusals"] = dict(self._user.refusals)
        return report


async def _serve_api(node: Node, address: str, token: str, *, task_status: Any) -> None:
    config = HypercornConfig()
    config.bind = [address]
    config.accesslog = None
    config.errorlog = logging.getLogger("dchat.api")
    config.graceful_timeout = 2.0
    app: Any = create_app(node, token)  # hypercorn types ASGI apps more narrowly than Starlette
    await hypercorn_serve(app, config, task_status=task_status)


async def _wait_for_signal(cancel: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            _log.info("stopping on signal %s", signal.Signals(signum).name)
            cancel.cancel()
            return


async def run_node(config: NodeConfig, passphrase: bytes, *, clock: Clock | None = None) -> None:
    """Run the node described by ``config`` until SIGINT/SIGTERM."""
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with datadir_lock(config.data_dir):
        await _run_locked(config, passphrase, clock or SystemClock())


async def _run_locked(config: NodeConfig, passphrase: bytes, clock: Clock) -> None:
    runfile = config.data_dir / "api.json"
    wrote_runfile = False
    db = await trio.to_thread.run_sync(_open_store, config, passphrase)
    try:
        store = AsyncStore(db)
        node = Node(config, store, clock, passphrase)
        with trio.CancelScope() as cancel:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_wait_for_signal, cancel)
                info = await _start_role(node, nursery, passphrase)
                _write_private(runfile, json.dumps(info).encode())
                wrote_runfile = True
                _log.info("node ready", extra={"role": config.role})
    finally:
        if wrote_runfile:  # never remove a file another (or a crashed) process wrote
            runfile.unlink(missing_ok=True)
        db.close()


def _open_store(config: NodeConfig, passphrase: bytes) -> Database:
    """Open the node database: sealed at rest for a user node, clear for a relay."""
    path = config.data_dir / "node.db"
    if config.role != "user":
        return open_database(path)
    try:
        return open_database(path, passphrase=passphrase)
    except LockedError:
        raise ConfigError("cannot unlock the database: wrong passphrase?") from None


async def _start_role(node: Node, nursery: trio.Nursery, passphrase: bytes) -> dict[str, Any]:
    config = node.config
    token = secrets.token_urlsafe(32)
    nursery.start_soon(node.lifecycle.run)
    if config.role == "validator":
        await start_validator(node, nursery, passphrase)
        api_address = config.api_listen
    elif node.relay is not None:
        key = await trio.to_thread.run_sync(
            _load_node_key, config.data_dir / "node.key", passphrase
        )
        node.node_id = NodeId.derive(key.public_key.to_bytes())
        host, port = parse_hostport(config.listen)
        serve = functools.partial(serve_links, node.relay.handle, host, port, node_key=key)
        bound = await nursery.start(serve)
        node.link_address = f"{bound[0]}:{bound[1]}"
        api_address = config.api_listen
    else:
        await node.user.load()
        await node.requests.load()
        await node.features.start()
        await node.documents.load()
        await node.burners.load()
        nursery.start_soon(node.burners.run_expiry, max(1.0, config.poll_interval))
        nursery.start_soon(node.user.run_outbox)
        nursery.start_soon(node.user.run_sessions)
        nursery.start_soon(node.user.run_mailbox)
        api_address = config.listen
    binds = await nursery.start(_serve_api, node, api_address, token)
    return {
        "url": binds[0],
        "token": token,
        "role": config.role,
        "link": node.link_address,
        "node_id": None if node.node_id is None else str(node.node_id),
        "pid": os.getpid(),
    }
