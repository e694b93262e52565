"""Linking a new device: a trio shell around :class:`dchat_identity.lowlevel.PairingSession`.

The protocol (hello, keys, reveal, SAS, welcome), its checks and its state
table live in the session; this shell gives it the rendezvous mailboxes at the
home relays (it drains ``session.inbox`` and queues items into
``session.outbox`` through the durable outbox), the clock, and the storage
steps it asks for: the host publishes a document listing the new device
(:class:`Certify`) before the welcome goes out, the joiner adopts the
identity (:class:`JoinedDevice`). At most one session per node; the API only
starts, polls, confirms or aborts, and the protocol runs in the mailbox task.
"""

from __future__ import annotations

import logging
import platform
from typing import TYPE_CHECKING, Any

import trio

from dchat_core import DchatError, MailboxId
from dchat_identity.lowlevel import IdentityStateError, PairingOutput, PairingSession
from dchat_identity.lowlevel import error_code as identity_error_code
from dchat_messaging import SealedEnvelope

from .._errors import NodeStateError
from ._guardian_state import queue_sealed

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._devices import DeviceService
    from ._service import UserService

__all__ = ("PairingService", "error_code")

_FACTS = {"os": platform.system().lower() or "unknown", "keystore": "software",
          "client": "dchat-node"}  # fmt: skip
_log = logging.getLogger("dchat.pairing")


def error_code(exc: BaseException) -> str:
    """The machine-readable code of a failure (a node state error keeps its own)."""
    return exc.code if isinstance(exc, NodeStateError) else identity_error_code(exc)


class PairingService:
    """At most one pairing session per node, driven by the mailbox task."""

    def __init__(self, user: UserService, devices: DeviceService) -> None:
        self._user, self._devices = user, devices
        self._session: PairingSession | None = None
        self._open = False  # the current session's inbox is being drained
        self._lock = trio.Lock()
        self._joined: list[Callable[[], Awaitable[None]]] = []

    def on_joined(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Call ``hook()`` once this node has become a linked device."""
        self._joined.append(hook)

    # -- starting ------------------------------------------------------------------

    async def start_host(self, ttl: float) -> dict[str, Any]:
        """Show a code on this (primary) device; the new device joins with it."""
        identity = self._user.identity
        local = await self._devices.local()
        if local.linked:
            raise NodeStateError("not_primary", "only the primary device can link devices")
        session = PairingSession.host(
            identity.signing_key, identity.identity_id, sync_secret=local.sync_key.secret,
            now=self._user.now(), ttl=ttl,
        )  # fmt: skip
        await self._replace(session)
        return session.view()

    async def start_join(self, code: str, name: str, timeout: float) -> dict[str, Any]:
        """Join the identity whose primary shows ``code``; this node must be fresh."""
        await self._devices.check_fresh()
        session = PairingSession.join(
            code, device_name=name, facts=_FACTS, now=self._user.now(), timeout=timeout
        )
        await self._replace(session)
        await self._send(session, session.hello())
        return session.view()

    async def _replace(self, session: PairingSession) -> None:
        async with self._lock:
            if self._session is not None:
                self._user.agent.remove_raw_mailbox(self._session.inbox)
            self._session, self._open = session, True
            self._user.agent.add_raw_mailbox(session.inbox, self._received)

    # -- polling, confirming, aborting -----------------------------------------------

    def _current(self) -> PairingSession:
        if self._session is None:
            raise NodeStateError("no_pairing", "no pairing in progress: run `dchat device link`")
        return self._session

    async def status(self) -> dict[str, Any]:
        """The current session's state (expiring it if its time is up)."""
        async with self._lock:
            session = self._current()
            session.expire(now=self._user.now())
            self._close_if_finished(session)
            return session.view()

    async def confirm(self) -> dict[str, Any]:
        """The user saw the same SAS on both screens."""
        async with self._lock:
            session = self._current()
            try:
                out = session.confirm(now=self._user.now())
            except IdentityStateError as exc:
                self._close_if_finished(session)
                raise NodeStateError("pairing_state", str(exc)) from None
            await self._carry_out(session, out, tell_peer=False)
            return session.view()

    async def abort(self, reason: str = "cancelled") -> dict[str, Any]:
        """End the session here and tell the other device (e.g. the SAS differed)."""
        async with self._lock:
            session = self._current()
            await self._carry_out(session, session.abort(reason), tell_peer=False)
            return session.view()

    # -- the protocol, driven by rendezvous items -----------------------------------

    async def _received(self, raw: bytes) -> None:
        async with self._lock:
            session = self._session
            if session is None or session.finished:
                return
            try:
                data = SealedEnvelope.from_bytes(raw).ciphertext
            except DchatError as exc:
                out = session.refuse(exc)
            else:
                out = session.receive(data, now=self._user.now())
            await self._carry_out(session, out, tell_peer=True)

    async def _carry_out(
        self, session: PairingSession, out: PairingOutput, *, tell_peer: bool
    ) -> None:
        """Send what the session says, and run the storage step it asks for."""
        await self._send(session, out)
        try:
            if out.certify is not None:
                doc = await self._devices.add_device(out.certify.certificate, out.certify.facts)
                local = await self._devices.local()
                card, epoch = self._user.card.to_bytes(), local.sync_key.epoch
                await self._send(session, session.welcome(card, doc.to_bytes(), epoch))
                _log.info("device linked")
            if out.joined is not None:
                await self._devices.adopt(out.joined)
                session.joined()
                for hook in self._joined:
                    await hook()
        except DchatError as exc:
            if tell_peer:
                await self._send(session, session.refuse(exc, code=error_code(exc)))
            else:
                session.fail(exc, code=error_code(exc))
        self._close_if_finished(session)

    async def _send(self, session: PairingSession, out: PairingOutput) -> None:
        mailbox = MailboxId.derive(session.outbox.public_key.to_bytes())
        await queue_sealed(self._user, [(mailbox, item) for item in out.send])

    def _close_if_finished(self, session: PairingSession) -> None:
        if session.finished and self._open:
            self._open = False
            self._user.agent.remove_raw_mailbox(session.inbox)
            if session.error is not None:
                _log.info("pairing failed: %s", session.error[0])
