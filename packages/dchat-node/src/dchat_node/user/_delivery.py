"""The user role's trio tasks: deliver the outbox, set up sessions, keep the mailbox links.

These are the I/O half of :class:`~dchat_node.user._service.UserService`
(mixed into it); the decisions (what is due and in which batches, when to
retry, what a received envelope counts as, when to publish prekeys) are the
sans-IO half, :class:`dchat_messaging.UserMessaging`, its outbox and engines;
the links are dchat-network's.

* **outbox** (:meth:`run_outbox`): woken by every send, it drains everything
  due, in queue order per destination, as ``put_many`` deposits over the
  pooled links (``OnionPool``, one per relay, random key; via 3 relays in onion
  mode; the relays of a round in parallel, so a dead one does not delay the others),
  and applies each deposit's per-envelope results in one transaction. The
  wake-up is armed before each read, so one during a round is never lost; a
  round that stored all of a read that saw the whole queue left nothing due
  but what a send (which woke it) queued, so it re-reads only when woken, and
  at once after any other round; retries wake it after at most
  ``poll_interval``; a relay that answered ``busy`` is held its retry-after.
* **sessions** (:meth:`run_sessions`): fetch the prekey bundle of each device
  a message waits for and hand it to the engine; a relay that is down, or a
  device that published nothing yet, is retried with backoff.
* **mailboxes** (:meth:`run_mailbox`): one standing link per mailbox and home
  relay (:class:`dchat_network.MailboxLink`: the identity's, a linked device's,
  each burner's, each raw one), each proven with its own key, so the relay
  cannot tie them together; a copy of an envelope that came through another
  relay first is counted by the engine as a duplicate and acknowledged. The
  relay pushes mail as it arrives; each batch is opened in one transaction,
  the message hooks run, then control messages go to their handlers, and only
  then is the batch acknowledged. Prekeys are topped up (at each relay) on
  each connection, when a link is idle and at most every
  :data:`PREKEY_CHECK` seconds under load.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Final

import trio

from dchat_core import DchatError
from dchat_messaging.lowlevel import UserMailbox, relay_deposits
from dchat_network import MailboxLink, RelayBusyError, links_state, relay_session

from .._errors import NodeStateError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from dchat_core import Clock, IdentityId, RelayAddress
    from dchat_identity import Identity
    from dchat_messaging import (
        DeviceAddress,
        LocalEngines,
        MessageReceived,
        MessagingEngine,
        UserMessaging,
    )
    from dchat_messaging.lowlevel import OutboxEntry, RawMailbox
    from dchat_network import RelaySession
    from dchat_network.lowlevel import OnionPool
    from dchat_storage import AsyncStore

    from ..config import NodeConfig

__all__ = ("MailDelivery",)

_log = logging.getLogger("dchat.user")
PREKEY_CHECK: Final = 5.0


class MailDelivery:
    """The outbox, sessions and mailbox tasks of a user node (a mixin of ``UserService``)."""

    _config: NodeConfig
    _store: AsyncStore
    _clock: Clock
    _wake_outbox: trio.Event
    _wake_sessions: trio.Event
    _wake_links: trio.Event
    _publishing: trio.Lock
    _prekeys_checked: dict[bytes, float]
    _message_hooks: list[Callable[[MessageReceived], Awaitable[None]]]
    _learned_hooks: list[Callable[[IdentityId, bytes], Awaitable[None]]]
    _event_hooks: list[Callable[[], None]]
    _wake_status: trio.Event
    agent: UserMessaging
    engines: LocalEngines
    pool: OnionPool
    keep_guards: Callable[[], Awaitable[None]]
    links: dict[tuple[bytes, str], MailboxLink]

    @property
    def home_relays(self) -> tuple[RelayAddress, ...]:
        """The configured home relays (``no_relay`` if there is none)."""
        if not self._config.home_relays:
            raise NodeStateError("no_relay", "configure a home relay (--relay) first")
        return self._config.home_relays

    def relay_state(self) -> str:
        """``connected``, ``connecting`` or ``unreachable`` (see :func:`links_state`)."""
        return links_state(self.links.values(), bool(self._config.home_relays))

    async def run_status_events(self) -> None:
        """Log a ``status`` event each time the relay becomes connected or unreachable.

        Clients following the event stream learn of it without polling
        ``/status``; the transient ``connecting`` is not logged.
        """
        logged: str | None = None
        while True:
            self._wake_status = trio.Event()  # armed before reading: no change is missed
            state = self.relay_state()
            if state != logged and state != "connecting":
                data = {"relay": state}
                await self._store.run(
                    self._store.db.events.append, "status", data, self._clock.now()
                )
                logged = state
                for hook in self._event_hooks:
                    hook()
            await self._wake_status.wait()

    def _link_state(self, _state: str) -> None:
        self._wake_status.set()

    # -- outbox ---------------------------------------------------------------------

    async def run_outbox(self) -> None:
        """Deliver queued envelopes forever; a failed one is retried after a backoff."""
        while True:
            self._wake_outbox = trio.Event()  # armed before reading: no wake-up is lost
            self.agent.tags.notify()  # a send may have issued a tag secret: watch its tags
            if (at := self.agent.receipts_due_at()) is not None and at <= self._clock.now():
                flush = functools.partial(self.agent.flush_receipts, now=self._clock.now())
                if await self._store.run_grouped(flush):
                    self._wake_sessions.set()
            while due := await self._store.run(self.agent.outbox.due, self._clock.now(), 256):
                stored: list[bool] = []  # one per relay whose every batch was stored
                async with trio.open_nursery() as nursery:  # relays in parallel, each in order
                    for batches in (rounds := relay_deposits(due)):
                        nursery.start_soon(self._deposit, batches, stored)
                if self.agent.outbox.read_to_end and len(stored) == len(rounds):
                    break  # nothing left due but what a send queued since (it set the wake-up)
            await self.keep_guards()  # onion guards picked or marked by these deposits
            wait = self.agent.outbox.held_for(self._clock.now(), self._config.poll_interval)
            if (at := self.agent.receipts_due_at()) is not None:
                wait = min(wait, max(0.0, at - self._clock.now()))
            with trio.move_on_after(wait):
                await self._wake_outbox.wait()

    async def _deposit(self, batches: list[list[OutboxEntry]], stored: list[bool]) -> None:
        """Deposit one relay's batches in order (a busy relay holds the rest).

        Appends to ``stored`` once every batch was stored.
        """
        for batch in batches:
            items = self.agent.route(batch, self._clock.now())  # rotating tags, if any
            try:
                results: list[bytes | str] = await self.pool.deposit(batch[0].relay, items)
            except RelayBusyError as exc:
                busy = functools.partial(self.agent.relay_busy, now=self._clock.now())
                await self._store.run_grouped(busy, batch, exc.retry_after)
                _log.info("relay busy (%s): %d envelopes held", exc.reason, len(batch))
                return
            except DchatError as exc:
                _log.info("delivery deferred: %s", type(exc).__name__)
                results = [type(exc).__name__] * len(batch)
            deposited = functools.partial(self.agent.deposited, now=self._clock.now())
            # Grouped: the settling shares its commit with the sends made meanwhile.
            if failed := await self._store.run_grouped(deposited, batch, results):
                _log.info("%d envelopes refused by the relay, retried later", failed)
                return  # the rest wait for the next round, behind the failed ones (order)
        stored.append(True)

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
        try:  # from its first relay that answers
            bundle = await self.pool.get_prekeys_from(
                device.paths(), bytes(device.mailbox), onion=engine.onion
            )  # in onion mode through an onion (protocol §46): no relay sees who asks
            await self._store.run(self.agent.bundle_received, engine, device, bundle, now=now)
        except DchatError as exc:  # its relays are down, or it published no (valid) bundle yet
            self.agent.bundle_failed(device, now=now, interval=self._config.poll_interval)
            _log.info("session setup deferred: %s", type(exc).__name__)
        else:
            self._wake_outbox.set()

    # -- mailboxes ------------------------------------------------------------------

    async def run_mailbox(self) -> None:
        """Keep one link per mailbox to drain, as the set of mailboxes changes."""
        async with trio.open_nursery() as nursery:
            while True:
                self._wake_links = trio.Event()
                self._reconcile(nursery)
                with trio.move_on_after(self.agent.tags_change_in(self._clock.now())):
                    await self._wake_links.wait()  # or the rotating tags move on

    def put_auth_changed(self, identity: Identity) -> None:
        """Tokens were revoked: reopen ``identity``'s mailbox links (they register on connect)."""
        mailbox = bytes(self.engines.for_identity(identity).keys.mailbox)
        for key in [key for key, link in self.links.items() if link.mailbox == mailbox]:
            self.links.pop(key).stop()  # unacknowledged mail is pushed again, and deduplicated
        self._wake_links.set()

    def _reconcile(self, nursery: trio.Nursery) -> None:
        """Start a link for each mailbox and home relay that has none; stop the unwanted ones."""
        wanted = self.agent.mailbox_links(self._config.home_relays, now=self._clock.now())
        for gone in set(self.links) - set(wanted):
            self.links.pop(gone).stop()
        for key, (box, relay) in wanted.items():
            if key not in self.links:
                self.links[key] = link = self._link(box, relay)
                nursery.start_soon(link.run)

    def _link(self, box: UserMailbox | RawMailbox, relay: RelayAddress) -> MailboxLink:
        host, port, pinned = relay.host, relay.port, relay.node
        if not isinstance(box, UserMailbox):  # raw or a rotating tag: no prekeys there
            return MailboxLink(host, port, box.key, box.take, on_idle=box.drained, wait=box.wait,
                on_connect=box.connected, expected_peer=pinned, on_state=self._link_state,
            )  # fmt: skip
        publish = functools.partial(self._publish_prekeys, engine=box.engine)
        return MailboxLink(
            host,
            port,
            box.key,
            functools.partial(self._accept, box.engine, box.identity),
            on_connect=publish,
            on_idle=publish,
            after_batch=functools.partial(self._publish_prekeys, engine=box.engine, every=True),
            expected_peer=pinned,
            on_state=self._link_state,
        )

    async def _accept(
        self, engine: MessagingEngine, identity: Identity | None, batch: list[tuple[bytes, bytes]]
    ) -> None:
        """Open a pushed batch in one transaction, run the hooks, then the control handlers."""
        accept = functools.partial(self.agent.accept_many, engine, now=self._clock.now())
        accepted = await self._store.run_grouped(accept, [envelope for _, envelope in batch])
        for reason in accepted.dropped:
            _log.warning("dropped an envelope: %s", reason)
        if accepted.resets or accepted.waiting:
            self._wake_sessions.set()
        if accepted.waiting is not None:  # delivery receipts were queued
            self._wake_outbox.set()
        for notify in self._event_hooks if accepted.updates else []:  # logged with the batch
            notify()
        for message in accepted.texts:
            for on_message in self._message_hooks:
                await on_message(message)
        for sender, document in accepted.learned:
            for hook in self._learned_hooks:
                await hook(sender, document)
        await self._dispatch_controls(engine, identity)

    async def publish_prekeys_now(self, identity: Identity) -> bool:
        """Publish ``identity``'s prekeys at each home relay now (best effort).

        Until its bundles are at a relay nobody can start a session with the
        identity, so a new identity publishes before its creation returns
        rather than when its mailbox links connect. Returns whether all succeeded.
        """
        engine, key, done = self.engines.for_identity(identity), identity.mailbox_key, 0
        for r in self.home_relays:  # each pinned by node id if configured
            session = relay_session(r.host, r.port, node_key=key, expected_peer=r.node)
            try:
                with trio.fail_after(10):
                    async with session as relay:
                        await self._publish_prekeys(relay, engine=engine)
                done += 1
            except (DchatError, trio.TooSlowError) as exc:
                _log.info("prekeys not published yet: %s", type(exc).__name__)
        return done == len(self.home_relays)

    async def _publish_prekeys(
        self, relay: RelaySession, *, engine: MessagingEngine, every: bool = False
    ) -> None:
        """Top up (or first publish, or rotate) our bundles at the home relay of ``relay``.

        With ``every``, only if the last check is :data:`PREKEY_CHECK` seconds
        old (after each batch under load). One at a time: a new identity
        publishes at once while its mailbox link may be connecting, and two
        concurrent counts would both ask for a top-up.
        """
        mailbox, now = bytes(engine.keys.mailbox), self._clock.now()
        await self.agent.register_put_auth(relay, mailbox)  # put tokens, contact ring (§41)
        if every and now - self._prekeys_checked.get(mailbox, 0.0) < PREKEY_CHECK:
            return
        async with self._publishing:
            self._prekeys_checked[mailbox] = now
            held = await relay.count_prekeys(mailbox)
            upload = await self._store.run(engine.prekey_upload, held=held, now=self._clock.now())
            if upload is None:
                return
            last, one_time = upload.last_resort, list(upload.one_time)
            await relay.put_prekeys(mailbox, last, one_time, replace=upload.replace)
            _log.info("published %d one-time prekeys", len(upload.one_time))

    async def _dispatch_controls(self, engine: MessagingEngine, identity: Identity | None) -> None:
        if not engine.controls_maybe_pending:  # a batch of plain texts: no read needed
            return
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
