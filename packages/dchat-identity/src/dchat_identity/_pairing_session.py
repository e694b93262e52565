"""One device's pairing session: rendezvous items in, items to send and events out.

Theory of operation. The existing (primary) device runs a *host* session: a
:class:`PairingHost` with a short-lived single-use code. The new device runs
a *joiner* session with that code. The two never talk directly: each drains
its own rendezvous mailbox (keys from the code, :func:`rendezvous_keys`) and
puts into the other's; this object only sees item bytes and says what to
put::

    joiner --hello-->  host          (commitment to the joiner's keys)
    joiner <--keys---  host          (host keys + a fresh attestation challenge)
    joiner --reveal--> host          (joiner keys, MAC under the code, attestation)
           both show the SAS; the user compares and confirms on both devices
    joiner <-welcome-  host          (certificate + sync secret, sealed starter kit)

Sans-IO: time comes in as ``now``, randomness as ``rng``; nothing awaits.
Steps that need the caller's storage come out as events. The host's
:meth:`PairingSession.confirm` yields :class:`Certify` (publish a document
listing the certificate), and the caller then hands the new document to
:meth:`PairingSession.welcome`, which yields the welcome item. The joiner
yields :class:`JoinedDevice` once the SAS is confirmed *and* the welcome
checked out; the caller adopts it and calls :meth:`PairingSession.joined`.

State table (``state`` + input -> output, next state); any other pair, and
any failed check, is terminal (``failed``) and tells the other side with an
``abort`` item::

    host    waiting   + hello item     -> keys item               waiting
    host    waiting   + reveal item    -> (attestation checked)   sas
    host    sas       + confirm()      -> Certify                 sas
    host    sas       + welcome(...)   -> welcome item            done
    joiner  waiting   + keys item      -> reveal item             sas
    joiner  sas       + welcome item   -> (kept for confirm)      sas
    joiner  sas       + confirm()      -> [JoinedDevice]          confirmed
    joiner  confirmed + welcome item   -> JoinedDevice            confirmed
    joiner  confirmed + joined()       ->                         done
    either  any       + abort item     ->                         failed (pairing_aborted)
    either  any       + abort(reason)  -> abort item              failed (pairing_aborted)
    either  now >= expires (expire)    ->                         failed (pairing_expired)

Failures carry a machine code (:func:`error_code`) and a message for the
user; :meth:`PairingSession.view` is what a UI polls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DchatError, IdentityId
from dchat_crypto import DecryptionError, open_sealed, seal

from ._card import ContactCard
from ._device_wire import (
    decode_pair_item,
    decode_starter,
    encode_pair_item,
    encode_starter,
    rendezvous_keys,
)
from ._devices import DeviceAttestation, DeviceCertificate
from ._document import IdentityDocument
from ._errors import ForgedRecordError, IdentityStateError, PairingCodeError, error_code
from ._pairing import PairingHost, decode_message
from ._pairing_joiner import PairingJoiner
from ._records import Rng, default_rng

if TYPE_CHECKING:
    from dchat_crypto import PrivateKey, SigningKey

__all__ = ("Certify", "JoinedDevice", "PairingOutput", "PairingSession")

KIT_CONTEXT: Final = b"dchat-pair-kit-v1"
_DONE, _FAILED = "done", "failed"


@dataclass(frozen=True, slots=True)
class Certify:
    """Host: publish a document listing ``certificate``, then call ``welcome``."""

    certificate: DeviceCertificate
    facts: dict[str, str]  # what the new device attested about itself


@dataclass(frozen=True, slots=True, repr=False)
class JoinedDevice:
    """Joiner: everything checked; become a linked device of ``document``'s identity."""

    certificate: DeviceCertificate
    device_key: SigningKey
    exchange_key: PrivateKey
    sync_secret: bytes
    epoch: int
    card: ContactCard
    document: IdentityDocument

    def __repr__(self) -> str:
        return f"JoinedDevice({self.certificate.subject}, {self.certificate.name!r})"


@dataclass(frozen=True, slots=True)
class PairingOutput:
    """What one step asks of the caller: items to put in the other side's mailbox, events."""

    send: tuple[bytes, ...] = ()
    certify: Certify | None = None
    joined: JoinedDevice | None = None


class PairingSession:
    """A host or joiner pairing session; build one with :meth:`host` or :meth:`join`.

    Attributes:
        role: ``"host"`` or ``"joiner"``.
        code: The pairing code (as shown or typed).
        expires: When the session fails as ``pairing_expired`` (seconds).
        inbox: Key of the rendezvous mailbox this side drains.
        outbox: Key of the rendezvous mailbox the other side drains.
        state: ``waiting`` -> ``sas`` -> ``confirmed`` (joiner) -> ``done`` | ``failed``.
        error: ``(code, message)`` once failed.
    """

    def __init__(
        self,
        role: str,
        code: str,
        expires: float,
        *,
        host: PairingHost | None = None,
        joiner: PairingJoiner | None = None,
        nonce: bytes = b"",
        facts: dict[str, str] | None = None,
    ) -> None:
        self.role, self.code, self.expires = role, code, expires
        to_host, to_joiner = rendezvous_keys(code)
        self.inbox, self.outbox = (to_joiner, to_host) if host is None else (to_host, to_joiner)
        self.state = "waiting"
        self.error: tuple[str, str] | None = None
        self.device: str | None = None
        self.qr: str | None = None
        self._host, self._joiner = host, joiner
        self._nonce, self._facts = nonce, dict(facts or {})
        self._attestation: DeviceAttestation | None = None
        self._welcome_message: bytes | None = None  # host: message 4, until welcome()
        self._welcome_item: tuple[bytes, bytes] | None = None  # joiner: (message 4, kit)

    @classmethod
    def host(
        cls,
        identity_key: SigningKey,
        subject: IdentityId,
        *,
        sync_secret: bytes,
        now: float,
        ttl: float,
        rng: Rng = default_rng,
    ) -> PairingSession:
        """A session on the primary device, showing a fresh code for ``ttl`` seconds."""
        host = PairingHost(
            identity_key, subject, now=now, ttl=ttl, sync_secret=sync_secret, rng=rng
        )
        session = cls("host", host.code, now + ttl, host=host, nonce=rng(32))
        session.qr = host.qr_payload()
        return session

    @classmethod
    def join(
        cls,
        code: str,
        *,
        device_name: str,
        facts: dict[str, str],
        now: float,
        timeout: float,
        rng: Rng = default_rng,
    ) -> PairingSession:
        """A session on the new device; send :meth:`hello` first.

        Raises:
            PairingCodeError: ``code`` is not a pairing code.
            IdentityArgumentError: a bad device name.
        """
        joiner = PairingJoiner(code, device_name=device_name, rng=rng)
        session = cls("joiner", code, now + timeout, joiner=joiner, facts=facts)
        session.device = device_name
        return session

    def hello(self) -> PairingOutput:
        """Joiner: the first item, committing to this device's keys."""
        if self._joiner is None:
            raise IdentityStateError("only the joiner says hello")
        return PairingOutput(send=(encode_pair_item("hello", m=self._joiner.hello()),))

    @property
    def finished(self) -> bool:
        """Whether the session is over (``done`` or ``failed``): drain its inbox no more."""
        return self.state in (_DONE, _FAILED)

    @property
    def sas(self) -> str | None:
        """The 6-digit string to compare, while there is one to compare."""
        if self.state not in ("sas", "confirmed"):
            return None
        pairing = self._host or self._joiner
        assert pairing is not None
        return pairing.sas

    def view(self) -> dict[str, Any]:
        """What a UI shows: role, state, SAS, expiry, device name, code (host), error."""
        out: dict[str, Any] = {"role": self.role, "state": self.state, "sas": self.sas,
                               "expires_at": self.expires, "device": self.device}  # fmt: skip
        if self.role == "host":
            out.update(code=self.code, qr=self.qr)
        out["error"] = (
            None if self.error is None else {"code": self.error[0], "message": self.error[1]}
        )
        return out

    # -- failing -----------------------------------------------------------------

    def _fail(self, code: str, message: str) -> None:
        if not self.finished:
            self.state, self.error = _FAILED, (code, message)

    def fail(self, exc: DchatError, *, code: str | None = None) -> None:
        """End the session because ``exc`` (e.g. from the caller's own step) was raised.

        ``code`` overrides :func:`error_code` (for the caller's own error types).
        """
        self._fail(code or error_code(exc), str(exc) or "authentication failed")

    def refuse(self, exc: DchatError, *, code: str | None = None) -> PairingOutput:
        """Like :meth:`fail`, and tell the other device (an item could not be used)."""
        self.fail(exc, code=code)
        return PairingOutput(send=(encode_pair_item("abort", why="failed"),))

    def expire(self, *, now: float) -> None:
        """Fail as ``pairing_expired`` if the session outlived its code."""
        if now >= self.expires:
            self._fail("pairing_expired", "the pairing code expired (or was wrong)")

    def abort(self, reason: str = "cancelled") -> PairingOutput:
        """End the session here and tell the other device (e.g. the SAS differed)."""
        if self.finished:
            return PairingOutput()
        if self._host is not None:
            self._host.abort()
        self._fail("pairing_aborted", f"aborted on this device ({reason})")
        return PairingOutput(send=(encode_pair_item("abort", why=reason),))

    # -- items from the other device -------------------------------------------------

    def receive(self, data: bytes, *, now: float) -> PairingOutput:
        """Take one rendezvous item; never raises for what the other side sent."""
        if self.finished:
            return PairingOutput()
        try:
            item = decode_pair_item(data)
            if item.kind == "abort":
                self._fail("pairing_aborted", f"the other device aborted ({item.fields['why']})")
                return PairingOutput()
            if self._host is not None:
                return self._host_step(self._host, item.kind, item.fields, now)
            return self._joiner_step(item.kind, item.fields, now)
        except DchatError as exc:
            return self.refuse(exc)

    def _host_step(
        self, host: PairingHost, kind: str, fields: dict[str, Any], now: float
    ) -> PairingOutput:
        if kind == "hello" and self.state == "waiting":
            reply = host.receive_hello(fields["m"], now=now)
            return PairingOutput(send=(encode_pair_item("keys", m=reply, nonce=self._nonce),))
        if kind == "reveal" and self.state == "waiting":
            host.receive_reveal(fields["m"], now=now)
            attestation = DeviceAttestation.from_bytes(fields["att"])
            attestation.verify(nonce=self._nonce, now=now)
            self._attestation, self.state = attestation, "sas"
            return PairingOutput()
        raise PairingCodeError(f"unexpected pairing message {kind!r}")

    def _joiner_step(self, kind: str, fields: dict[str, Any], now: float) -> PairingOutput:
        joiner = self._joiner
        assert joiner is not None
        if kind == "keys" and self.state == "waiting":
            reveal = joiner.receive_keys(fields["m"])
            subject = _subject_of(fields["m"])
            attestation = DeviceAttestation.create(
                joiner.device_key, subject, self._facts, nonce=fields["nonce"], now=now
            )
            self.state = "sas"
            return PairingOutput(
                send=(encode_pair_item("reveal", m=reveal, att=attestation.to_bytes()),)
            )
        if kind == "welcome" and self.state in ("sas", "confirmed") and not self._welcome_item:
            self._welcome_item = (fields["m"], fields["kit"])
            return self._finish_join() if self.state == "confirmed" else PairingOutput()
        raise PairingCodeError(f"unexpected pairing message {kind!r}")

    # -- the user's confirmation and its consequences ---------------------------------

    def confirm(self, *, now: float) -> PairingOutput:
        """The user saw the same SAS on both screens.

        A failed check ends the session (see :attr:`error`) instead of raising.

        Raises:
            IdentityStateError: there is no SAS to confirm (expired, failed, done, too early).
        """
        self.expire(now=now)
        if self.state != "sas" or self._welcome_message is not None:
            raise IdentityStateError(f"nothing to confirm (pairing is {self.state})")
        try:
            if self._host is not None:
                return self._certify(self._host, now)
            assert self._joiner is not None
            self._joiner.confirm()
            self.state = "confirmed"
            return PairingOutput() if self._welcome_item is None else self._finish_join()
        except DchatError as exc:
            self.fail(exc)
            return PairingOutput()

    def _certify(self, host: PairingHost, now: float) -> PairingOutput:
        message = host.confirm(now=now)
        cert, attestation = host.certificate, self._attestation
        assert cert is not None
        assert attestation is not None
        if attestation.device_key != cert.device_key or attestation.subject != cert.subject:
            raise ForgedRecordError
        self._welcome_message = message
        return PairingOutput(certify=Certify(cert, dict(attestation.facts)))

    def welcome(self, card: bytes, document: bytes, epoch: int) -> PairingOutput:
        """Host: the document listing the new device is published; send the welcome.

        Args:
            card: The identity's contact card (bytes).
            document: The new head document (bytes).
            epoch: The current sync epoch.
        """
        host, message = self._host, self._welcome_message
        if host is None or message is None or self.finished:
            raise IdentityStateError("no certified device to welcome")
        cert = host.certificate
        assert cert is not None
        starter = encode_starter(card, document, epoch)
        kit = seal(cert.exchange_key, starter, context=KIT_CONTEXT)
        self.state, self.device = _DONE, cert.name
        return PairingOutput(send=(encode_pair_item("welcome", m=message, kit=kit),))

    def _finish_join(self) -> PairingOutput:
        joiner, welcome = self._joiner, self._welcome_item
        assert joiner is not None
        assert welcome is not None
        paired = joiner.receive_welcome(welcome[0])
        try:
            starter = open_sealed(joiner.exchange_key, welcome[1], context=KIT_CONTEXT)
        except DecryptionError:
            raise ForgedRecordError from None
        card_bytes, doc_bytes, epoch = decode_starter(starter)
        card, doc = ContactCard.from_bytes(card_bytes), IdentityDocument.from_bytes(doc_bytes)
        cert = paired.certificate
        if card.identity_id != cert.subject or doc.subject != cert.subject:
            raise ForgedRecordError
        if card.identity_key != doc.identity_key or paired.sync_secret is None:
            raise ForgedRecordError
        joined = JoinedDevice(
            cert, paired.device_key, paired.exchange_key, paired.sync_secret, epoch, card, doc
        )
        return PairingOutput(joined=joined)

    def joined(self) -> None:
        """Joiner: the caller adopted the :class:`JoinedDevice`; the session is done."""
        if self.state != "confirmed":
            raise IdentityStateError(f"nothing was joined (pairing is {self.state})")
        self.state = _DONE


def _subject_of(message: bytes) -> IdentityId:
    """The identity id in the host's keys message (already checked by the joiner)."""
    fields = decode_message(message, 2, frozenset({"eph", "key", "id"}))
    return IdentityId(fields["id"])
