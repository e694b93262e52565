"""The new device's side of pairing (see :mod:`._pairing` for the protocol)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

from dchat_core import DecodeLimits, IdentityId, canonical_encode
from dchat_crypto import InvalidKeyError, PrivateKey, PublicKey, SigningKey, VerifyKey

from ._aead import open_box
from ._devices import DeviceCertificate
from ._errors import (
    ForgedRecordError,
    IdentityArgumentError,
    IdentityStateError,
    MalformedRecordError,
    PairingCodeError,
)
from ._pairing import (
    QR_PREFIX,
    PairingKeys,
    PairState,
    commitment,
    decode_message,
    derive_keys,
    normalise_code,
    parse_key,
    transcript_hash,
)
from ._records import Rng, decode_fields, default_rng, strict, to_ms

__all__ = ("PairedDevice", "PairingJoiner")

_QR_FIELDS = frozenset({"v", "id", "key", "code", "exp"})
_QR_LIMITS = DecodeLimits(max_size=4096, max_depth=1, max_items=16)


@dataclass(frozen=True, slots=True, repr=False)
class PairedDevice:
    """What a new device holds once paired: its keys, certificate and the sync secret."""

    certificate: DeviceCertificate
    device_key: SigningKey
    exchange_key: PrivateKey
    sync_secret: bytes | None = field(default=None)

    def __repr__(self) -> str:
        return f"PairedDevice({self.certificate.subject}, {self.certificate.name!r})"


def _parse_qr(payload: str, now: float) -> tuple[str, IdentityId, VerifyKey]:
    if not isinstance(payload, str) or not payload.startswith(QR_PREFIX) or len(payload) > 600:
        raise PairingCodeError("not a dchat pairing QR payload")
    body = payload[len(QR_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise PairingCodeError("not a dchat pairing QR payload") from None
    try:
        fields = decode_fields(raw, "pairing QR payload", _QR_FIELDS, _QR_LIMITS)
    except MalformedRecordError:
        raise PairingCodeError("not a dchat pairing QR payload") from None
    with strict("pairing QR payload"):
        if fields.get_int("v") != 1:
            raise PairingCodeError("unsupported pairing QR payload")
        code = normalise_code(fields.get_str("code", max_len=16))
        subject = IdentityId(fields.get_bytes("id", size=32))
        key = VerifyKey.from_bytes(fields.get_bytes("key", size=32))
        expires = fields.get_int("exp")
    if to_ms(now) >= expires:
        raise PairingCodeError("this pairing code has expired")
    return code, subject, key


class PairingJoiner:
    """The new device: generates its keys and asks the host to certify them.

    Args:
        code: The code shown on the host (``XXXXX-XXXXX``, case and dashes ignored).
        device_name: A name for this device, 1-64 printable characters.
        rng: Randomness for the device keys and the ephemeral key.
        pinned: From a QR payload: the subject and identity key the host must have.
    """

    def __init__(
        self,
        code: str,
        *,
        device_name: str,
        rng: Rng = default_rng,
        pinned: tuple[IdentityId, VerifyKey] | None = None,
    ) -> None:
        self._code = normalise_code(code)
        if not isinstance(device_name, str) or not 0 < len(device_name) <= 64:
            raise IdentityArgumentError("a device name must be 1-64 printable characters")
        if not device_name.isprintable():
            raise IdentityArgumentError("a device name must be 1-64 printable characters")
        self._name, self._pinned = device_name, pinned
        self.device_key = SigningKey.from_bytes(rng(32))
        self.exchange_key = PrivateKey.from_bytes(rng(32))
        self._eph = PrivateKey.from_bytes(rng(32))
        self._state = PairState.WAITING
        self._keys: PairingKeys | None = None
        self._confirmed = False
        self._host: dict[str, Any] = {}

    @classmethod
    def from_qr(
        cls, payload: str, *, device_name: str, now: float, rng: Rng = default_rng
    ) -> PairingJoiner:
        """Start from a scanned QR payload, which also pins the host's identity key.

        Raises:
            PairingCodeError: not a pairing payload, or expired.
        """
        code, subject, key = _parse_qr(payload, now)
        return cls(code, device_name=device_name, rng=rng, pinned=(subject, key))

    @property
    def sas(self) -> str:
        """The 6-digit string to compare with the host's screen."""
        if self._keys is None:
            raise IdentityStateError("no SAS before the host's keys arrived")
        return self._keys.sas

    def _commit(self) -> bytes:
        return commitment(
            self._eph.public_key,
            self.device_key.public_key,
            self.exchange_key.public_key,
            self._name,
        )

    def hello(self) -> bytes:
        """Message 1: the commitment to this device's keys."""
        if self._state is not PairState.WAITING:
            raise IdentityStateError("hello was already sent")
        self._state = PairState.SENT
        return canonical_encode({"v": 1, "t": 1, "commit": self._commit()})

    def receive_keys(self, data: bytes) -> bytes:
        """Message 2 in, message 3 out; afterwards :attr:`sas` is ready to show.

        Raises:
            ForgedRecordError: the host's key is not the one the QR payload pinned.
        """
        if self._state is not PairState.SENT:
            raise IdentityStateError("not waiting for the host's keys")
        self._state = PairState.FAILED
        host = decode_message(data, 2, frozenset({"eph", "key", "id"}))
        eph, key = parse_key(host["eph"], PublicKey), parse_key(host["key"], VerifyKey)
        if not isinstance(host["id"], bytes) or len(host["id"]) != 32:
            raise MalformedRecordError("malformed pairing message: bad id")
        if self._pinned is not None and (
            self._pinned[0] != IdentityId(host["id"]) or self._pinned[1] != key
        ):
            raise ForgedRecordError
        try:
            shared = self._eph.exchange(eph)
        except InvalidKeyError:
            raise ForgedRecordError from None
        reveal: dict[str, Any] = {
            "eph": self._eph.public_key.to_bytes(),
            "dev": self.device_key.public_key.to_bytes(),
            "dh": self.exchange_key.public_key.to_bytes(),
            "name": self._name,
        }
        self._keys = derive_keys(shared, transcript_hash(self._commit(), host, reveal), self._code)
        reveal["mac"] = hmac.new(self._keys.mac_key, b"joiner", hashlib.sha256).digest()
        self._host, self._state = host, PairState.REVEALED
        return canonical_encode({"v": 1, "t": 3, **reveal})

    def confirm(self) -> None:
        """The user saw the same SAS on both screens."""
        if self._state is not PairState.REVEALED:
            raise IdentityStateError("nothing to confirm yet")
        self._state = PairState.CONFIRMED

    def receive_welcome(self, data: bytes) -> PairedDevice:
        """Message 4 in: the certificate (checked) and the sync secret.

        Raises:
            IdentityStateError: the SAS was not confirmed first.
            ForgedRecordError: not from the host this device exchanged keys with,
                or a certificate for another key or identity.
        """
        if self._state is not PairState.CONFIRMED:
            raise IdentityStateError("confirm the SAS before accepting the welcome")
        assert self._keys is not None
        self._state = PairState.FAILED
        box = decode_message(data, 4, frozenset({"box"}))["box"]
        if not isinstance(box, bytes):
            raise MalformedRecordError("malformed pairing message: bad box")
        plain = open_box(self._keys.welcome_key, box, label=b"pair-welcome")
        cert, sync = _welcome(plain)
        cert.verify(VerifyKey.from_bytes(self._host["key"]))
        if (
            cert.device_key != self.device_key.public_key
            or cert.exchange_key != self.exchange_key.public_key
            or bytes(cert.subject) != self._host["id"]
        ):
            raise ForgedRecordError
        self._state = PairState.DONE
        return PairedDevice(cert, self.device_key, self.exchange_key, sync)


def _welcome(plain: bytes) -> tuple[DeviceCertificate, bytes | None]:
    fields = decode_fields(plain, "pairing welcome", frozenset({"cert", "sync"}), _QR_LIMITS)
    with strict("pairing welcome"):
        cert = DeviceCertificate.from_bytes(fields.get_bytes("cert", max_size=2048))
        sync = fields.get_bytes("sync", size=32) if fields.has("sync") else None
    return cert, sync
