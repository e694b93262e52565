"""Linking a new device: pairing code or QR payload, X25519, and a short authentication string.

Theory of operation (sans-IO; the caller carries the four messages)::

    host (has the identity key)                     joiner (the new device)
    PairingHost(...) shows code / QR payload  ~~~>  PairingJoiner(code or QR)
                                              <---  1 hello:  commit = H(joiner's keys)
    checks code unexpired, marks it used
                                              --->  2 keys:   host eph, identity key, id
                                              <---  3 reveal: joiner eph, device keys,
                                                              MAC(code) over transcript
    checks commitment and MAC
    both screens show the same 6-digit SAS = HKDF(X25519(eph_h, eph_j), transcript hash)
    user compares, then host.confirm()        --->  4 welcome: AEAD(cert, sync secret)
                                                    joiner.confirm(); receive_welcome()

The joiner commits to its keys before it sees the host's, so a man in the
middle must fix both of its keys before learning the other side's, and cannot
search for keys that make the two SAS values collide; with different shared
secrets on each side the SAS differs except with probability 1e-6. The code
authorises the request (single-use, expiring), and with a QR payload the joiner
also pins the host's identity key. State machine: any failure is terminal.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from enum import Enum
from typing import Any

from dchat_core import DecodeLimits, IdentityId, canonical_encode
from dchat_crypto import InvalidKeyError, PrivateKey, PublicKey, SigningKey, VerifyKey
from dchat_crypto.hazmat import hkdf_sha256

from ._aead import seal_box
from ._devices import DeviceCertificate
from ._errors import (
    ForgedRecordError,
    IdentityArgumentError,
    IdentityStateError,
    MalformedRecordError,
    PairingCodeError,
)
from ._records import Rng, check_version, decode_fields, default_rng, strict, to_ms

__all__ = (
    "QR_PREFIX",
    "PairState",
    "PairingHost",
    "PairingKeys",
    "commitment",
    "decode_message",
    "derive_keys",
    "normalise_code",
    "parse_key",
    "transcript_hash",
)

QR_PREFIX = "dchat-pair:"
CODE_LENGTH = 10  # base32 characters: 50 bits
DEFAULT_TTL = 120.0
_LIMITS = DecodeLimits(max_size=4096, max_depth=2, max_items=32)
_COMMIT = b"dchat-pair-commit-v1\x00"
_TRANSCRIPT = b"dchat-pair-transcript-v1\x00"


class PairState(Enum):
    WAITING = "waiting"
    SENT = "sent"
    REVEALED = "revealed"
    CONFIRMED = "confirmed"
    DONE = "done"
    FAILED = "failed"


def normalise_code(code: str) -> str:
    if not isinstance(code, str) or len(code) > 64:
        raise PairingCodeError("not a pairing code")
    text = code.replace("-", "").replace(" ", "").upper()
    if len(text) != CODE_LENGTH or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" for c in text):
        raise PairingCodeError("not a pairing code")
    return text


def commitment(eph: PublicKey, device: VerifyKey, exchange: PublicKey, name: str) -> bytes:
    body = canonical_encode([eph.to_bytes(), device.to_bytes(), exchange.to_bytes(), name])
    return hashlib.sha256(_COMMIT + body).digest()


@dataclass(frozen=True, slots=True)
class PairingKeys:
    sas: str
    mac_key: bytes
    welcome_key: bytes


def derive_keys(shared: bytes, transcript: bytes, code: str) -> PairingKeys:
    sas_bytes = hkdf_sha256(shared, salt=transcript, info=b"dchat-pair-sas-v1", length=8)
    # 64 bits reduced mod 10**6: the bias is below 2**-44.
    sas = f"{int.from_bytes(sas_bytes, 'big') % 1_000_000:06d}"
    mac_key = hkdf_sha256(
        shared, salt=transcript, info=b"dchat-pair-mac-v1" + code.encode(), length=32
    )
    welcome = hkdf_sha256(shared, salt=transcript, info=b"dchat-pair-welcome-v1", length=32)
    return PairingKeys(sas, mac_key, welcome)


def transcript_hash(commit: bytes, host: dict[str, Any], reveal: dict[str, Any]) -> bytes:
    body = canonical_encode([commit, host, {k: v for k, v in reveal.items() if k != "mac"}])
    return hashlib.sha256(_TRANSCRIPT + body).digest()


def decode_message(data: bytes, kind: int, allowed: frozenset[str]) -> dict[str, Any]:
    fields = decode_fields(data, "pairing message", allowed | {"v", "t"}, _LIMITS)
    with strict("pairing message"):
        check_version(fields, "pairing message")
        if fields.get_int("t") != kind:
            raise MalformedRecordError("unexpected pairing message")
        return {key: fields.raw(key) for key in allowed}


def parse_key(value: Any, cls: type[PublicKey] | type[VerifyKey]) -> Any:
    if not isinstance(value, bytes):
        raise MalformedRecordError("malformed pairing message: bad key")
    try:
        return cls.from_bytes(value)
    except InvalidKeyError:
        raise MalformedRecordError("malformed pairing message: bad key") from None


class PairingHost:
    """The side that holds the identity key and certifies the new device.

    Args:
        identity_key: The identity's current signing key.
        subject: The identity's id.
        now: Current time (seconds); the code expires at ``now + ttl``.
        ttl: Lifetime of the code in seconds.
        sync_secret: The devices' shared sync secret, handed to the new device.
        rng: Randomness for the code and the ephemeral key.
    """

    def __init__(
        self,
        identity_key: SigningKey,
        subject: IdentityId,
        *,
        now: float,
        ttl: float = DEFAULT_TTL,
        sync_secret: bytes | None = None,
        rng: Rng = default_rng,
    ) -> None:
        self._identity_key, self._subject = identity_key, subject
        self._code = base64.b32encode(rng(8)).decode("ascii")[:CODE_LENGTH]
        self._eph = PrivateKey.from_bytes(rng(32))
        self._expires_ms = to_ms(now + ttl)
        self._sync_secret, self._rng = sync_secret, rng
        self._state = PairState.WAITING
        self._commit = b""
        self._host_fields: dict[str, Any] = {}
        self._keys: PairingKeys | None = None
        self._reveal: dict[str, Any] = {}
        self.certificate: DeviceCertificate | None = None

    @property
    def code(self) -> str:
        """The code to show, ``XXXXX-XXXXX``."""
        return f"{self._code[:5]}-{self._code[5:]}"

    def qr_payload(self) -> str:
        """Text to render as a QR code: the code plus the identity key to pin."""
        body = canonical_encode(
            {
                "v": 1,
                "id": bytes(self._subject),
                "key": self._identity_key.public_key.to_bytes(),
                "code": self._code,
                "exp": self._expires_ms,
            }
        )
        return QR_PREFIX + base64.urlsafe_b64encode(body).decode("ascii").rstrip("=")

    @property
    def sas(self) -> str:
        """The 6-digit string to compare with the joiner's screen."""
        if self._keys is None:
            raise IdentityStateError("no SAS before the joiner revealed its keys")
        return self._keys.sas

    def _step(self, expected: PairState) -> None:
        if self._state is not expected:
            raise IdentityStateError(f"pairing is {self._state.value}, not {expected.value}")

    def receive_hello(self, data: bytes, *, now: float) -> bytes:
        """Message 1 in, message 2 out. Consumes the code.

        Raises:
            PairingCodeError: the code expired or was already used.
        """
        if self._state is not PairState.WAITING:
            raise PairingCodeError("this pairing code was already used")
        if to_ms(now) >= self._expires_ms:
            self._state = PairState.FAILED
            raise PairingCodeError("this pairing code has expired")
        self._state = PairState.FAILED  # single use, whatever happens next
        commit = decode_message(data, 1, frozenset({"commit"}))["commit"]
        if not isinstance(commit, bytes) or len(commit) != 32:
            raise MalformedRecordError("malformed pairing message: bad commitment")
        self._commit = commit
        self._host_fields = {
            "eph": self._eph.public_key.to_bytes(),
            "key": self._identity_key.public_key.to_bytes(),
            "id": bytes(self._subject),
        }
        self._state = PairState.SENT
        return canonical_encode({"v": 1, "t": 2, **self._host_fields})

    def receive_reveal(self, data: bytes, *, now: float) -> None:
        """Message 3 in; afterwards :attr:`sas` is ready to show.

        Raises:
            PairingCodeError: the code expired meanwhile.
            ForgedRecordError: the keys differ from the commitment or the code is wrong.
        """
        self._step(PairState.SENT)
        self._state = PairState.FAILED
        if to_ms(now) >= self._expires_ms:
            raise PairingCodeError("this pairing code has expired")
        reveal = decode_message(data, 3, frozenset({"eph", "dev", "dh", "name", "mac"}))
        eph, dev = parse_key(reveal["eph"], PublicKey), parse_key(reveal["dev"], VerifyKey)
        dh, name, mac = parse_key(reveal["dh"], PublicKey), reveal["name"], reveal["mac"]
        if not isinstance(name, str) or not isinstance(mac, bytes) or len(name) > 64:
            raise MalformedRecordError("malformed pairing message: bad name or MAC")
        if not hmac.compare_digest(commitment(eph, dev, dh, name), self._commit):
            raise ForgedRecordError
        try:
            shared = self._eph.exchange(eph)
        except InvalidKeyError:
            raise ForgedRecordError from None
        keys = derive_keys(
            shared, transcript_hash(self._commit, self._host_fields, reveal), self._code
        )
        expected = hmac.new(keys.mac_key, b"joiner", hashlib.sha256).digest()
        if not hmac.compare_digest(mac, expected):
            raise ForgedRecordError
        self._keys, self._reveal = keys, reveal
        self._state = PairState.REVEALED

    def confirm(self, *, now: float) -> bytes:
        """The user saw the same SAS on both screens: certify the device, message 4 out.

        :attr:`certificate` is then set; add it to the next identity document.
        """
        self._step(PairState.REVEALED)
        assert self._keys is not None
        try:
            cert = DeviceCertificate.issue(
                self._identity_key,
                self._subject,
                VerifyKey.from_bytes(self._reveal["dev"]),
                PublicKey.from_bytes(self._reveal["dh"]),
                name=self._reveal["name"],
                now=now,
            )
        except IdentityArgumentError:
            self._state = PairState.FAILED
            raise MalformedRecordError("malformed pairing message: bad device name") from None
        body: dict[str, Any] = {"cert": cert.to_bytes()}
        if self._sync_secret is not None:
            body["sync"] = self._sync_secret
        box = seal_box(
            self._keys.welcome_key, canonical_encode(body), label=b"pair-welcome", rng=self._rng
        )
        self.certificate, self._state = cert, PairState.DONE
        return canonical_encode({"v": 1, "t": 4, "box": box})

    def abort(self) -> None:
        """The SAS differed (or the user cancelled): end the pairing for good."""
        self._state = PairState.FAILED
