"""Linking a new device: the pairing protocol carried through the home relay.

Theory of operation. The existing (primary) device starts a *host* session: a
:class:`dchat_identity.PairingHost` with a short-lived single-use code. The
new device, a fresh node on the same home relay, starts a *joiner* session
with that code. Neither listens to the other: each drains its own rendezvous
mailbox (keys derived from the code, :mod:`._rendezvous`) and puts into the
other's through the durable outbox::

    joiner --hello-->  host          (commitment to the joiner's keys)
    joiner <--keys---  host          (host keys + a fresh attestation challenge)
    joiner --reveal--> host          (joiner keys, MAC under the code, attestation)
           both show the SAS; the user compares and confirms on both devices
    joiner <-welcome-  host          (certificate + sync secret, sealed starter kit)

The host verifies the attestation (fresh, signed by the device key it is about
to certify), publishes a document listing the device and sends the welcome;
the joiner checks it all and becomes a linked device. Either side may abort
(an ``abort`` item tells the other), any failure is terminal, and a session
that outlives its code fails as ``pairing_expired``. The API only starts,
polls, confirms or aborts; the protocol runs in the mailbox task.
"""

from __future__ import annotations

import logging
import os
import platform
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from dchat_core import DchatError, Fields, IdentityId, MailboxId, canonical_decode
from dchat_crypto import DecryptionError, SigningKey, open_sealed, seal
from dchat_identity import (
    ContactCard,
    ForgedRecordError,
    IdentityDocument,
    PairingCodeError,
    PairingHost,
    PairingJoiner,
)
from dchat_identity.lowlevel import DeviceAttestation
from dchat_messaging import SealedEnvelope

from ._errors import NodeStateError
from ._rendezvous import (
    decode_pair_item,
    decode_starter,
    encode_pair_item,
    encode_starter,
    rendezvous_keys,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._devices_service import DeviceService
    from ._user_service import UserService

__all__ = ("PairingService", "error_code")

_KIT_CONTEXT = b"dchat-pair-kit-v1"
_FACTS = {"os": platform.system().lower() or "unknown", "keystore": "software",
          "client": "dchat-node"}  # fmt: skip
_log = logging.getLogger("dchat.pairing")


def error_code(exc: BaseException) -> str:
    """The machine-readable code of a pairing failure."""
    if isinstance(exc, NodeStateError):
        return exc.code
    return {
        "PairingCodeError": "pairing_code",
        "ForgedRecordError": "authentication_failed",
        "MalformedRecordError": "malformed",
        "ExpiredError": "expired",
        "RevokedDeviceError": "revoked_device",
    }.get(type(exc).__name__, type(exc).__name__)


@dataclass(slots=True)
class _Session:
    role: str
    code: str
    expires: float
    inbox: SigningKey
    outbox: SigningKey
    host: PairingHost | None = None
    joiner: PairingJoiner | None = None
    state: str = "waiting"  # waiting -> sas -> confirmed -> done | failed
    qr: str | None = None
    nonce: bytes = b""
    attestation: DeviceAttestation | None = None
    welcome: tuple[bytes, bytes] | None = None
    error: tuple[str, str] | None = None
    device: str | None = None

    def view(self) -> dict[str, Any]:
        sas = None
        if self.state in ("sas", "confirmed"):
            sas = (self.host or self.joiner).sas  # type: ignore[union-attr]
        out: dict[str, Any] = {"role": self.role, "state": self.state, "sas": sas,
                               "expires_at": self.expires, "device": self.device}  # fmt: skip
        if self.role == "host":
            out.update(code=self.code, qr=self.qr)
        out["error"] = (
            None if self.error is None else {"code": self.error[0], "message": self.error[1]}
        )
        return out


class PairingService:
    """At most one pairing session per node, driven by the mailbox task."""

    def __init__(self, user: UserService, devices: DeviceService) -> None:
        self._user, self._devices = user, devices
        self._session: _Session | None = None
        self._lock = trio.Lock()
        self._joined: list[Callable[[], Awaitable[None]]] = []

    def on_joined(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Call ``hook()`` once this node has become a linked device."""
        self._joined.append(hook)

    # -- starting ------------------------------------------------------------

    async def start_host(self, ttl: float) -> dict[str, Any]:
        """Show a code on this (primary) device; the new device joins with it."""
        identity = self._user.identity
        local = await self._devices.local()
        if local.role != "primary":
            raise NodeStateError("not_primary", "only the primary device can link devices")
        now = self._user.now()
        host = PairingHost(
            identity.signing_key, identity.identity_id, now=now, ttl=ttl,
            sync_secret=local.sync_key.secret,
        )  # fmt: skip
        to_host, to_joiner = rendezvous_keys(host.code)
        session = _Session("host", host.code, now + ttl, to_host, to_joiner, host=host)
        session.qr, session.nonce = host.qr_payload(), os.urandom(32)
        await self._replace(session)
        return session.view()

    async def start_join(self, code: str, name: str, timeout: float) -> dict[str, Any]:
        """Join the identity whose primary shows ``code``; this node must be fresh."""
        if self._user.has_identity or await self._devices.load() is not None:
            raise NodeStateError("identity_exists", "this node already belongs to an identity")
        joiner = PairingJoiner(code, device_name=name)
        to_host, to_joiner = rendezvous_keys(code)
        session = _Session(
            "joiner", code, self._user.now() + timeout, to_joiner, to_host, joiner=joiner
        )
        session.device = name
        await self._replace(session)
        await self._put(session, encode_pair_item("hello", m=joiner.hello()))
        return session.view()

    async def _replace(self, session: _Session) -> None:
        async with self._lock:
            if self._session is not None:
                self._user.remove_raw_mailbox(self._session.inbox)
            self._session = session
            self._user.add_raw_mailbox(session.inbox, self._received)

    async def _put(self, session: _Session, item: bytes) -> None:
        mailbox = MailboxId.derive(session.outbox.public_key.to_bytes())
        await self._user.queue_envelope(self._user.home_relay, SealedEnvelope(mailbox, item))

    # -- polling, confirming, aborting ------------------------------------------

    async def status(self) -> dict[str, Any]:
        """The current session's state (expiring it if its time is up)."""
        async with self._lock:
            session = self._current()
            self._expire(session)
            return session.view()

    def _current(self) -> _Session:
        if self._session is None:
            raise NodeStateError("no_pairing", "no pairing in progress: run `dchat device link`")
        return self._session

    def _expire(self, session: _Session) -> None:
        if session.state not in ("done", "failed") and self._user.now() >= session.expires:
            self._fail(session, "pairing_expired", "the pairing code expired (or was wrong)")

    def _fail(self, session: _Session, code: str, message: str) -> None:
        if session.state not in ("done", "failed"):
            session.state, session.error = "failed", (code, message)
            self._user.remove_raw_mailbox(session.inbox)
            _log.info("pairing failed: %s", code)

    async def confirm(self) -> dict[str, Any]:
        """The user saw the same SAS on both screens."""
        async with self._lock:
            session = self._current()
            self._expire(session)
            if session.state != "sas":
                raise NodeStateError(
                    "pairing_state", f"nothing to confirm (pairing is {session.state})"
                )
            try:
                if session.host is not None:
                    await self._welcome(session, session.host)
                else:
                    assert session.joiner is not None
                    session.joiner.confirm()
                    session.state = "confirmed"
                    if session.welcome is not None:
                        await self._finish_join(session, *session.welcome)
            except DchatError as exc:
                self._fail(session, error_code(exc), str(exc) or "authentication failed")
            return session.view()

    async def abort(self, reason: str = "cancelled") -> dict[str, Any]:
        """End the session here and tell the other device (e.g. the SAS differed)."""
        async with self._lock:
            session = self._current()
            if session.state not in ("done", "failed"):
                if session.host is not None:
                    session.host.abort()
                await self._put(session, encode_pair_item("abort", why=reason))
                self._fail(session, "pairing_aborted", f"aborted on this device ({reason})")
            return session.view()

    # -- the protocol, driven by rendezvous items ---------------------------------

    async def _received(self, raw: bytes) -> None:
        async with self._lock:
            session = self._session
            if session is None or session.state in ("done", "failed"):
                return
            try:
                item = decode_pair_item(SealedEnvelope.from_bytes(raw).ciphertext)
                if item.kind == "abort":
                    why = item.fields["why"]
                    self._fail(session, "pairing_aborted", f"the other device aborted ({why})")
                elif session.host is not None:
                    await self._host_step(session, session.host, item.kind, item.fields)
                else:
                    await self._joiner_step(session, item.kind, item.fields)
            except DchatError as exc:
                self._fail(session, error_code(exc), str(exc) or "authentication failed")
                await self._put(session, encode_pair_item("abort", why="failed"))

    async def _host_step(
        self, session: _Session, host: PairingHost, kind: str, fields: dict[str, Any]
    ) -> None:
        now = self._user.now()
        if kind == "hello" and session.state == "waiting":
            reply = host.receive_hello(fields["m"], now=now)
            await self._put(session, encode_pair_item("keys", m=reply, nonce=session.nonce))
        elif kind == "reveal" and session.state == "waiting":
            host.receive_reveal(fields["m"], now=now)
            attestation = DeviceAttestation.from_bytes(fields["att"])
            attestation.verify(nonce=session.nonce, now=now)
            session.attestation, session.state = attestation, "sas"
        else:
            raise PairingCodeError(f"unexpected pairing message {kind!r}")

    async def _welcome(self, session: _Session, host: PairingHost) -> None:
        message = host.confirm(now=self._user.now())
        cert, attestation = host.certificate, session.attestation
        assert cert is not None
        assert attestation is not None
        if attestation.device_key != cert.device_key or attestation.subject != cert.subject:
            raise ForgedRecordError
        doc = await self._devices.add_device(cert, attestation.facts)
        local = await self._devices.local()
        starter = encode_starter(self._user.card.to_bytes(), doc.to_bytes(), local.sync_key.epoch)
        kit = seal(cert.exchange_key, starter, context=_KIT_CONTEXT)
        await self._put(session, encode_pair_item("welcome", m=message, kit=kit))
        session.state, session.device = "done", cert.name
        self._user.remove_raw_mailbox(session.inbox)
        _log.info("device linked")

    async def _joiner_step(self, session: _Session, kind: str, fields: dict[str, Any]) -> None:
        joiner = session.joiner
        assert joiner is not None
        if kind == "keys" and session.state == "waiting":
            reveal = joiner.receive_keys(fields["m"])
            subject = _subject_of(fields["m"])
            attestation = DeviceAttestation.create(
                joiner.device_key, subject, _FACTS, nonce=fields["nonce"], now=self._user.now()
            )
            await self._put(
                session, encode_pair_item("reveal", m=reveal, att=attestation.to_bytes())
            )
            session.state = "sas"
        elif kind == "welcome" and session.state in ("sas", "confirmed") and not session.welcome:
            session.welcome = (fields["m"], fields["kit"])
            if session.state == "confirmed":
                await self._finish_join(session, *session.welcome)
        else:
            raise PairingCodeError(f"unexpected pairing message {kind!r}")

    async def _finish_join(self, session: _Session, message: bytes, kit: bytes) -> None:
        joiner = session.joiner
        assert joiner is not None
        paired = joiner.receive_welcome(message)
        try:
            starter = open_sealed(joiner.exchange_key, kit, context=_KIT_CONTEXT)
        except DecryptionError:
            raise ForgedRecordError from None
        card_bytes, doc_bytes, epoch = decode_starter(starter)
        card, doc = ContactCard.from_bytes(card_bytes), IdentityDocument.from_bytes(doc_bytes)
        cert = paired.certificate
        if card.identity_id != cert.subject or doc.subject != cert.subject:
            raise ForgedRecordError
        if card.identity_key != doc.identity_key or paired.sync_secret is None:
            raise ForgedRecordError
        await self._devices.adopt(
            cert=cert, device_key=paired.device_key, exchange_key=paired.exchange_key,
            secret=paired.sync_secret, epoch=epoch, card=card, document=doc,
        )  # fmt: skip
        session.state = "done"
        self._user.remove_raw_mailbox(session.inbox)
        for hook in self._joined:
            await hook()


def _subject_of(message: bytes) -> IdentityId:
    """The identity id in the host's keys message (already checked by the joiner)."""
    fields = Fields(
        canonical_decode(message), "pairing message", frozenset({"v", "t", "eph", "key", "id"})
    )
    return IdentityId(fields.get_bytes("id", size=32))
