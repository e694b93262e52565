"""The node process: opens storage, composes the role, serves the API.

:func:`build_node` is the one place a node is composed from its config: a
:class:`~._user_role.UserRole`, :class:`~._relay_role.RelayRole` or
:class:`~._validator_role.ValidatorRole` over the opened store, inside a
:class:`Node` that adds the lifecycle task and the ``/status`` report.

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
and leaves the first one's ``api.json`` alone. Before that it sets the umask
to 0077 and refuses a data directory other users can reach
(:func:`dchat_storage.check_private_directory`), and refuses an API address
off loopback unless exposed on purpose over TLS (``api._serve``). SIGINT and
SIGTERM stop the node gracefully.

With ``database_url`` (user and relay nodes) the database is on PostgreSQL,
sealed the same way; being outside the locked directory, it is also claimed
(``Database.claim_exclusive``: a second node on it stops with
``database_in_use``). Only its redacted URL is logged.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
from typing import TYPE_CHECKING, Any

import trio

from dchat_core import Clock, NodeId, SystemClock
from dchat_network.lowlevel import set_source_address
from dchat_storage import (
    AsyncStore,
    Database,
    LockedError,
    SweepSchedule,
    check_private_directory,
    open_database,
)
from dchat_storage.lowlevel import write_private

from ._datadir_lock import datadir_lock
from ._errors import ConfigError
from ._lifecycle import LifecycleTask
from .api._serve import check_api_exposure, serve_api
from .relay._role import RelayRole
from .user._role import UserRole
from .validator._role import ValidatorRole

if TYPE_CHECKING:
    from .config import NodeConfig

__all__ = ("Node", "build_node", "run_node")

_log = logging.getLogger("dchat.node")

Role = UserRole | RelayRole | ValidatorRole


def build_node(config: NodeConfig, store: AsyncStore, clock: Clock, passphrase: bytes) -> Node:
    """The one place a node is composed: the role its config names, over ``store``."""
    role: Role
    if config.role == "user":
        role = UserRole(config, store, clock, passphrase)
    elif config.role == "relay":
        role = RelayRole(config, store, clock)
    else:
        role = ValidatorRole(config, store, clock)
    return Node(config, store, clock, role)


class Node:
    """One running node: its config, storage, role and lifecycle task.

    The API reaches the role's services through ``role`` (``api._roles``).
    """

    def __init__(self, config: NodeConfig, store: AsyncStore, clock: Clock, role: Role) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.role = role
        schedule = SweepSchedule.for_role(config.role, event_ttl=config.event_retention)
        self.lifecycle = LifecycleTask(store, clock, schedule)
        self.node_id: NodeId | None = None
        self.link_address: str | None = None
        self.started_at = clock.now()

    async def start(self, nursery: trio.Nursery, passphrase: bytes) -> str:
        """Start the lifecycle task and the role; returns the address the API listens on."""
        nursery.start_soon(self.lifecycle.run)
        if isinstance(self.role, UserRole):
            await self.role.start(nursery)
            return self.config.listen
        self.link_address, self.node_id = await self.role.start(nursery, passphrase)
        return self.config.api_listen

    async def status(self) -> dict[str, Any]:
        """Counters and identity for ``/status``."""
        report: dict[str, Any] = {
            "role": self.config.role,
            "uptime": round(self.clock.now() - self.started_at, 3),
            "node_id": None if self.node_id is None else str(self.node_id),
            "link": self.link_address,
            "lifecycle_sweeps": self.lifecycle.schedule.sweeps,
        }
        if isinstance(self.role, RelayRole | UserRole):
            report |= await self.role.status()
        return report


async def _wait_for_signal(cancel: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            _log.info("stopping on signal %s", signal.Signals(signum).name)
            cancel.cancel()
            return


async def run_node(
    config: NodeConfig,
    passphrase: bytes,
    *,
    clock: Clock | None = None,
    signals: bool = True,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the node described by ``config`` until SIGINT/SIGTERM (or cancelled).

    Started (``nursery.start``) with the ``api.json`` contents once the API
    serves; ``signals=False`` for a node embedded in another program's thread
    (dchat-sdk's ``Client.embedded``), which stops it by cancelling.
    """
    check_api_exposure(config)
    set_source_address(config.link_source)  # every link this process dials leaves from it
    os.umask(0o077)  # whatever the node and its libraries create is the user's alone
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    check_private_directory(config.data_dir)
    with datadir_lock(config.data_dir):
        await _run_locked(config, passphrase, clock or SystemClock(), signals, task_status)


async def _run_locked(
    config: NodeConfig, passphrase: bytes, clock: Clock, signals: bool, task_status: Any
) -> None:
    runfile = config.data_dir / "api.json"
    wrote_runfile = False
    db = await trio.to_thread.run_sync(_open_store, config, passphrase)
    try:
        await trio.to_thread.run_sync(db.claim_exclusive)
        _log.info("database open", extra={"database": db.url})
        store = AsyncStore(db)
        node = build_node(config, store, clock, passphrase)
        with trio.CancelScope() as cancel:
            async with trio.open_nursery() as nursery:
                if signals:
                    nursery.start_soon(_wait_for_signal, cancel)
                info = await _start(node, nursery, passphrase)
                write_private(runfile, json.dumps(info).encode())
                wrote_runfile = True
                task_status.started(info)
                _log.info("node ready", extra={"role": config.role})
    finally:
        if wrote_runfile:  # never remove a file another (or a crashed) process wrote
            runfile.unlink(missing_ok=True)
        db.close()


def _open_store(config: NodeConfig, passphrase: bytes) -> Database:
    """Open ``node.db`` or ``database_url``: sealed at rest for a user node, clear for a relay."""
    url = config.database_url
    target = config.data_dir / "node.db" if url is None else url.get_secret_value()
    if config.role != "user":
        return open_database(target)
    try:
        return open_database(target, passphrase=passphrase)
    except LockedError:
        raise ConfigError("cannot unlock the database: wrong passphrase?") from None


async def _start(node: Node, nursery: trio.Nursery, passphrase: bytes) -> dict[str, Any]:
    token = secrets.token_urlsafe(32)
    api_address = await node.start(nursery, passphrase)
    binds = await nursery.start(serve_api, node, api_address, token)
    return {
        "url": binds[0],
        "token": token,
        "role": node.config.role,
        "link": node.link_address,
        "node_id": None if node.node_id is None else str(node.node_id),
        "pid": os.getpid(),
    }
