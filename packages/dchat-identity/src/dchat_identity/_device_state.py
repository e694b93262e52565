"""One device's own state, and the rules for the identity's device list.

A device is either the identity's **primary** (it holds the identity key and
signs documents) or a **linked** device (paired: it holds only its own device
keys, a certificate in the identity document, the identity's card and the
sync secret). :class:`LocalDevice` is that private state, with a strict
at-rest encoding; the functions here are the rules the node applies when it
certifies the primary, adopts a pairing, revokes a device or lists them:

- the primary certifies its own identity keys (name ``primary``), so its
  contact card already says how to reach it;
- revoking a device drops its certificate, adds a signed
  :class:`DeviceRevocation` and moves sync to a new epoch with a *fresh
  random* secret (not :meth:`SyncKey.next_epoch`, which the revoked device
  could compute); the primary cannot revoke itself;
- a device keeps the previous epoch's key beside the current one, so items
  sealed just before a rekey still open.

Sans-IO: time and randomness are parameters; storing and publishing is the
caller's business.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from dchat_core import DecodeError, DecodeLimits, canonical_encode
from dchat_crypto import PrivateKey, SigningKey

from ._chain import DocumentChain
from ._devices import DeviceCertificate, DeviceRevocation
from ._errors import IdentityArgumentError, IdentityStateError, MalformedRecordError
from ._records import Rng, decode_fields, default_rng
from ._sync import SyncKey

if TYPE_CHECKING:
    from dchat_crypto import VerifyKey

    from ._identity import Identity
    from ._pairing_session import JoinedDevice

__all__ = ("LocalDevice", "Revocation", "device_rows", "find_devices", "plan_revocation")

_LIMITS = DecodeLimits(max_size=256 * 1024, max_depth=4, max_items=4096)
_FIELDS = frozenset({"v", "role", "dev", "dh", "name", "keys", "card", "facts"})
_ROLES = frozenset({"primary", "linked"})


@dataclass(frozen=True, slots=True, repr=False)
class LocalDevice:
    """This device's private state (never logged: ``repr`` shows no secret)."""

    role: str  # "primary" or "linked"
    device_key: SigningKey
    exchange_key: PrivateKey
    name: str
    keys: tuple[SyncKey, ...]  # oldest first; the last is the current epoch
    card: bytes = b""  # a linked device's copy of the identity's card
    facts: dict[str, dict[str, str]] = field(default_factory=dict)  # attested, by device hex

    def __repr__(self) -> str:
        return f"LocalDevice({self.role}, {self.name!r})"

    @property
    def sync_key(self) -> SyncKey:
        """The sync key of the current epoch."""
        return self.keys[-1]

    @property
    def linked(self) -> bool:
        """Whether this is a linked (not the primary) device."""
        return self.role == "linked"

    @classmethod
    def certify_primary(
        cls, identity: Identity, *, now: float, rng: Rng = default_rng
    ) -> tuple[LocalDevice, DeviceCertificate]:
        """The primary's state and the certificate of its own keys, to publish."""
        device, exchange = identity.signing_key, identity.encryption_key
        cert = DeviceCertificate.issue(
            device, identity.identity_id, device.public_key, exchange.public_key,
            name="primary", now=now,
        )  # fmt: skip
        return cls("primary", device, exchange, "primary", (SyncKey(rng(32)),)), cert

    @classmethod
    def adopt(cls, joined: JoinedDevice, *, now: float) -> tuple[LocalDevice, DocumentChain]:
        """A linked device's state and chain after pairing (the document must list it).

        Raises:
            RevokedDeviceError: the document does not list the new certificate.
            DocumentChainError, ExpiredError: the document itself is not acceptable.
        """
        chain = DocumentChain(joined.document, now=now)
        chain.check_device(joined.certificate.device_key)
        local = cls(
            "linked", joined.device_key, joined.exchange_key, joined.certificate.name,
            (SyncKey(joined.sync_secret, joined.epoch),), joined.card.to_bytes(),
        )  # fmt: skip
        return local, chain

    def with_facts(self, device: VerifyKey, facts: dict[str, str]) -> LocalDevice:
        """Remember what ``device`` attested about itself."""
        return replace(self, facts={**self.facts, device.to_bytes().hex(): dict(facts)})

    def with_sync_key(self, key: SyncKey) -> LocalDevice:
        """Move to ``key``'s epoch if it is newer, keeping the current key as the previous."""
        if key.epoch <= self.sync_key.epoch:
            return self
        return replace(self, keys=(*self.keys[-1:], key))

    def to_bytes(self) -> bytes:
        """Canonical encoding (secrets included: store it sealed)."""
        return canonical_encode(
            {
                "v": 1,
                "role": self.role,
                "dev": self.device_key.to_bytes(),
                "dh": self.exchange_key.to_bytes(),
                "name": self.name,
                "keys": [[k.epoch, k.secret] for k in self.keys],
                "card": self.card,
                "facts": self.facts,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> LocalDevice:
        """Strictly decode :meth:`to_bytes` output (``MalformedRecordError`` otherwise)."""
        f = decode_fields(data, "device state", _FIELDS, _LIMITS)
        try:
            keys = tuple(SyncKey(secret, epoch) for epoch, secret in f.get_list("keys"))
            facts = f.raw("facts")
            role = f.get_str("role", max_len=16)
            if not keys or not isinstance(facts, dict) or f.get_int("v") != 1:
                raise MalformedRecordError("malformed device state")
            if role not in _ROLES:
                raise MalformedRecordError("malformed device state")
            return cls(
                role,
                SigningKey.from_bytes(f.get_bytes("dev", size=32)),
                PrivateKey.from_bytes(f.get_bytes("dh", size=32)),
                f.get_str("name", max_len=64),
                keys,
                f.get_bytes("card", max_size=2048),
                facts,
            )
        except (DecodeError, ValueError, TypeError, IdentityArgumentError):
            raise MalformedRecordError("malformed device state") from None


def find_devices(devices: tuple[DeviceCertificate, ...], which: str) -> list[DeviceCertificate]:
    """The certificates ``which`` names: by name, or by a key prefix of 8+ hex digits."""
    text = which.strip().lower()
    return [
        c for c in devices
        if c.name == which or (len(text) >= 8 and c.device_key.to_bytes().hex().startswith(text))
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Revocation:
    """What revoking one device changes: the next document's lists and this device's keys."""

    devices: tuple[DeviceCertificate, ...]
    revoked: tuple[DeviceRevocation, ...]
    local: LocalDevice  # moved to a fresh sync epoch


def plan_revocation(
    identity_key: SigningKey,
    chain: DocumentChain,
    local: LocalDevice,
    cert: DeviceCertificate,
    *,
    now: float,
    rng: Rng = default_rng,
) -> Revocation:
    """Revoke ``cert`` from the next version of ``chain``'s document.

    Raises:
        IdentityStateError: ``cert`` is this (primary) device's own.
    """
    if cert.device_key == local.device_key.public_key:
        raise IdentityStateError("the primary device cannot revoke itself")
    revocation = DeviceRevocation.issue(
        identity_key, chain.subject, cert.device_key, seq=chain.head.seq + 1, now=now
    )
    devices = tuple(c for c in chain.head.devices if c.device_key != cert.device_key)
    fresh = SyncKey(rng(32), local.sync_key.epoch + 1)
    moved = replace(local, keys=(*local.keys[-1:], fresh))
    return Revocation(devices, (*chain.head.revoked, revocation), moved)


def device_rows(chain: DocumentChain, local: LocalDevice | None) -> list[dict[str, Any]]:
    """Every device the head document lists or revoked, for display."""
    me = None if local is None else local.device_key.public_key
    facts = {} if local is None else local.facts
    rows = []
    for cert in chain.head.devices:
        hexkey = cert.device_key.to_bytes().hex()
        rows.append(
            {"key": hexkey, "name": cert.name, "status": "active", "issued_ms": cert.issued_ms,
             "this_device": cert.device_key == me, "attested": facts.get(hexkey)}
        )  # fmt: skip
    for entry in chain.head.revoked:
        rows.append(
            {"key": entry.device_key.to_bytes().hex(), "name": None, "status": "revoked",
             "revoked_in": entry.seq, "this_device": entry.device_key == me}
        )  # fmt: skip
    return rows
