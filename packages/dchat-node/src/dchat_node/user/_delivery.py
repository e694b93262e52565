"""The user role's trio tasks: deliver the outbox, set up sessions, drain the mailboxes.

These are the I/O half of :class:`~dchat_node.user._service.UserService`
(mixed into it); the decisions (which bundles to fetch and when to retry,
what a received envelope counts as, when to publish prekeys) are the sans-IO
half, :class:`dchat_messaging.UserMessaging` and its engines:

* **outbox** (:meth:`run_outbox`): deliver each queued envelope to its relay
  under a fresh link key (the relay cannot link deposits to one sender) and
  remove it only when the relay confirms it stored it; failures back off (the
  engine's retry policy).
* **sessions** (:meth:`run_sessions`): fetch the prekey bundle of each device
  a message waits for (``pk_get``) and hand it to the engine; a relay that is
  down, or a device that published nothing yet, is retried with backoff.
* **mailboxes** (:meth:`run_mailbox`): connect to the home relay with each
  mailbox key, publish prekeys when the relay runs low (``pk_count`` /
  ``pk_put``), fetch waiting envelopes and hand each to its engine, which
  commits the message and the session state together; only then is the batch
  acknowledged, so a crash at any point loses nothing. Control messages then
  go to their handlers, each removed from the engine's durable queue once
  its handler ran.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

import trio

from dchat_core import DchatError, NodeId
from dchat_network import relay_session

from .._errors import NodeStateError
from ..config import parse_hostport

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from contextlib import AbstractAsyncContextManager

    from dchat_core import Clock, IdentityId
    from dchat_crypto import SigningKey
    from dchat_identity import Identity
    from dchat_messaging import (
        DeviceAddress,
        LocalEngines,
        MessageReceived,
        MessagingEngine,
        UserMessaging,
    )
    from dchat_messaging.lowlevel import RawMailbox
    from dchat_network import RelaySession

    from .._store import AsyncStore
    from ..config import NodeConfig

__all__ = ("MailDelivery",)

_log = logging.getLogger("dchat.user")


class MailDelivery:
    """The outbox, sessions and mailbox tasks of a user node (a mixin of ``UserService``)."""

    _config: NodeConfig
    _store: AsyncStore
    _clock: Clock
    _wake_outbox: trio.Event
    _wake_sessions: trio.Event
    _publishing: trio.Lock
    _message_hooks: list[Callable[[MessageReceived], Awaitable[None]]]
    _learned_hooks: list[Callable[[IdentityId, bytes], Awaitable[None]]]
    agent: UserMessaging
    engines: LocalEngines

    @property
    def home_relay(self) -> str:
        """The configured home relay, ``HOST:PORT``."""
        if self._config.relay is None:
            raise NodeStateError("no_relay", "configure a home relay (--relay) first")
        return self._config.relay

    @property
    def home_relay_node(self) -> NodeId | None:
        """The home relay's pinned node id, if configured."""
        return NodeId.parse(self._config.relay_node) if self._config.relay_node else None

    # -- outbox ---------------------------------------------------------------------

    async def run_outbox(self) -> None:
        """Deliver queued envelopes forever; a failed one is retried after a backoff."""
        while True:
            self._wake_outbox = trio.Event()
            for item in await self._store.run(self.agent.outbox.due, self._clock.now(), 64):
                try:
                    # A fresh key per deposit: the relay cannot link them to one sender.
                    async with relay_session(*parse_hostport(item.relay)) as relay:
                        await relay.put(item.mailbox, item.envelope)
                except DchatError as exc:
                    _log.info("delivery deferred: %s", type(exc).__name__)
                    await self._store.run(self.agent.outbox.failed, item, self._clock.now())
                else:
                    await self._store.run(self.agent.delivered, item.message_id)
            with trio.move_on_after(self._config.poll_interval):
                await self._wake_outbox.wait()

    # -- sessions -------------------------------------------------------------------

    async def run_sessions(self) -> None:
        """Fetch the prekey bundles that waiting messages need, forever."""
        while True:
            self._wake_sessions = trio.Event()
            for engine, device in await self._store.run(self.agent.bundles_due, self._clock.now()):
                await self._set_up(engine, device)
            with trio.move_on_after(self._config.poll_interval):
                await self._wake_sessions.wait()

    async def _set_up(self, engine: MessagingEngine, device: DeviceAddress) -> None:
        now = self._clock.now()
        try:
            async with relay_session(*parse_hostport(device.relay)) as relay:
                bundle = await relay.get_prekeys(bytes(device.mailbox))
            await self._store.run(self.agent.bundle_received, engine, device, bundle, now=now)
        except DchatError as exc:  # its relay is down, or it published no (valid) bundle yet
            self.agent.bundle_failed(device, now=now, interval=self._config.poll_interval)
            _log.info("session setup deferred: %s", type(exc).__name__)
        else:
            self._wake_outbox.set()

    # -- mailboxes ------------------------------------------------------------------

    async def run_mailbox(self) -> None:
        """Poll the home relay for mail forever."""
        while True:
            # A pairing node has no identity, only raw mailboxes.
            active = self.agent.mailboxes() or self.agent.raw_mailboxes()
            if active and self._config.relay is not None:
                try:
                    await self.fetch_once()
                except DchatError as exc:
                    _log.info("mailbox fetch failed: %s", type(exc).__name__)
            await trio.sleep(self._config.poll_interval)

    async def fetch_once(self) -> int:
        """Fetch, store and acknowledge everything waiting; returns new messages.

        Each mailbox (this identity's, every extra identity's, every raw one)
        is drained over its own connection, authenticated by its own key.
        """
        new = 0
        for box in self.agent.mailboxes():
            new += await self._fetch_mailbox(box.key, box.engine, box.identity)
        for raw in self.agent.raw_mailboxes():
            await self._fetch_raw(raw)
        return new

    def _home(self, key: SigningKey) -> AbstractAsyncContextManager[RelaySession]:
        """A session with the home relay (pinned by node id if configured), proven with ``key``."""
        host, port = parse_hostport(self.home_relay)
        return relay_session(host, port, node_key=key, expected_peer=self.home_relay_node)

    async def _fetch_mailbox(
        self, key: SigningKey, engine: MessagingEngine, identity: Identity | None
    ) -> int:
        new = 0

        async def accept(raw: bytes) -> None:
            nonlocal new
            new += await self._accept(raw, engine)

        async with self._home(key) as relay:
            await self._publish_prekeys(relay, engine)
            # Each batch's controls run after it is acknowledged (and again below).
            after = functools.partial(self._dispatch_controls, engine, identity)
            await relay.drain(bytes(engine.keys.mailbox), accept, after)
        await self._dispatch_controls(engine, identity)
        return new

    async def publish_prekeys_now(self, identity: Identity) -> bool:
        """Publish ``identity``'s prekeys at the home relay now (best effort).

        Until its bundles are at the relay nobody can start a session with the
        identity, so a new identity publishes before its creation returns
        rather than at the next poll; if the relay cannot be reached, the
        mailbox task publishes later. Returns whether it succeeded.
        """
        try:
            with trio.fail_after(10):
                async with self._home(identity.mailbox_key) as relay:
                    await self._publish_prekeys(relay, self.engines.for_identity(identity))
        except (DchatError, trio.TooSlowError) as exc:
            _log.info("prekeys not published yet: %s", type(exc).__name__)
            return False
        return True

    async def _publish_prekeys(self, relay: RelaySession, engine: MessagingEngine) -> None:
        """Top up (or first publish, or rotate) our bundles at the home relay.

        One at a time: a new identity publishes at once while the mailbox task
        may be polling, and two concurrent counts would both ask for a top-up.
        """
        async with self._publishing:
            mailbox = bytes(engine.keys.mailbox)
            held = await relay.count_prekeys(mailbox)
            upload = await self._store.run(engine.prekey_upload, held=held, now=self._clock.now())
            if upload is None:
                return
            last, one_time = upload.last_resort, list(upload.one_time)
            await relay.put_prekeys(mailbox, last, one_time, replace=upload.replace)
            _log.info("published %d one-time prekeys", len(upload.one_time))

    async def _fetch_raw(self, raw: RawMailbox) -> None:
        async with self._home(raw.key) as relay:
            await relay.drain(raw.mailbox, raw.handler)

    async def _accept(self, raw: bytes, engine: MessagingEngine) -> int:
        accepted = await self._store.run(self.agent.accept, engine, raw, now=self._clock.now())
        for reason in accepted.dropped:
            _log.warning("dropped an envelope: %s", reason)
        if accepted.resets:
            self._wake_sessions.set()
        for message in accepted.texts:
            for on_message in self._message_hooks:
                await on_message(message)
        for sender, document in accepted.learned:
            for hook in self._learned_hooks:
                await hook(sender, document)
        return len(accepted.texts)

    async def _dispatch_controls(self, engine: MessagingEngine, identity: Identity | None) -> None:
        for message, handler in await self._store.run(self.agent.controls_due, engine, identity):
            try:
                if handler is None:
                    _log.warning("dropped a control message of an unknown kind")
                else:
                    await handler(message)
            except DchatError as exc:
                # A hostile or stale control message must not block the mailbox.
                self.agent.control_dropped(type(exc).__name__)
                _log.warning("control message refused: %s", type(exc).__name__)
            finally:
                await self._store.run(engine.control_done, message.message_id)
