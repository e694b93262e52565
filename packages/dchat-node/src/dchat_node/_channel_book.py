"""A wallet's payment channels: the off-chain states, kept in an encrypted file.

Theory of operation. For each channel the book keeps the opening terms (an
:class:`Offer`), a status (``offered``, ``open``, ``closing``, ``closed``), the
peer's consent signature (opener only), and two states:

* ``latest``: the highest-``seq`` state this wallet signed. Payments build on
  it, so a payer never signs two states with one ``seq``.
* ``full``: the highest-``seq`` state *both* parties signed: the one this
  wallet can publish in a unilateral close or a dispute.

A payer signs ``latest + 1`` with ``amount`` moved to the peer and hands it over
(:meth:`ChannelBook.pay`). The receiver's :meth:`ChannelBook.accept` checks the
peer's signature, that the ``seq`` is new and that its own balance did not
shrink (the receiver never countersigns a payment *from* itself), countersigns
and stores it; handing the countersigned copy back lets the payer store it as
``full`` too. A final state (cooperative close) is accepted by the same rule.

The file (``WALLET.channels``) is an ``encrypt_with_passphrase`` blob under the
wallet's passphrase and the wallet file's own Argon2id cost, around one
canonical map (``docs/protocol.md``, section 16), written atomically (0600).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from dchat_chain.lowlevel import ChannelState
from dchat_core import DchatError, DecodeLimits, Fields, canonical_decode, canonical_encode
from dchat_crypto import (
    BadSignatureError,
    DecryptionError,
    KdfParams,
    KeystoreFormatError,
    VerifyKey,
    decrypt_with_passphrase,
    encrypt_with_passphrase,
)

from ._channel_messages import Consent, Offer, Update, decode_obj
from ._errors import ChannelError, ConfigError
from ._validator_keys import write_private

if TYPE_CHECKING:
    from pathlib import Path

    from dchat_crypto import SigningKey

__all__ = ("ChannelBook", "ChannelRecord")

MAX_CHANNELS: Final = 1024
_LIMITS: Final = DecodeLimits(max_size=4 << 20, max_depth=5, max_items=8 * MAX_CHANNELS)
_KDF_HEADER: Final = struct.Struct(">4sBIIB")  # the keystore header (docs/protocol.md §8)


@dataclass
class ChannelRecord:
    """One channel as this wallet knows it."""

    offer: Offer
    status: str
    consent: bytes | None = None
    latest: Update | None = None
    full: Update | None = None

    @property
    def chan(self) -> bytes:
        """The channel id."""
        return self.offer.chan

    def balances(self) -> tuple[int, int]:
        """``(a, b)`` in the latest state this wallet signed (deposits before any)."""
        if self.latest is None:
            return self.offer.da, self.offer.db
        return self.latest.state.balance_a, self.latest.state.balance_b

    def seq(self) -> int:
        """The latest signed ``seq`` (0: the opening deposits)."""
        return 0 if self.latest is None else self.latest.state.seq

    def to_obj(self) -> dict[str, Any]:
        """The canonical map stored in the file."""
        return {
            "offer": self.offer.to_obj(),
            "status": self.status,
            "consent": self.consent,
            "latest": None if self.latest is None else self.latest.to_obj(),
            "full": None if self.full is None else self.full.to_obj(),
        }

    @classmethod
    def from_obj(cls, obj: Any) -> ChannelRecord:
        """Read a stored record (raises ``DecodeError``/``ChannelError`` on corruption)."""
        f = Fields(obj, "channel", frozenset({"offer", "status", "consent", "latest", "full"}))
        offer, latest, full = (
            decode_obj(f.raw(k)) if f.raw(k) is not None else None
            for k in ("offer", "latest", "full")
        )
        if not isinstance(offer, Offer) or not all(
            u is None or isinstance(u, Update) for u in (latest, full)
        ):
            raise ChannelError("channel record holds the wrong message types")
        consent = None if f.raw("consent") is None else f.get_bytes("consent", size=64)
        status = f.get_str("status", max_len=16)
        return cls(offer, status, consent, latest, full)  # type: ignore[arg-type]


def _kdf_of(blob: bytes) -> KdfParams:
    """The Argon2id cost recorded in a keystore blob's header."""
    try:
        _, _, memory, iterations, lanes = _KDF_HEADER.unpack_from(blob)
        return KdfParams(memory_kib=memory, iterations=iterations, lanes=lanes)
    except (struct.error, KeystoreFormatError):
        return KdfParams.DEFAULT


def _verify(key: bytes, sig: bytes | None, message: bytes, who: str) -> None:
    if sig is None:
        raise ChannelError(f"the state lacks {who}'s signature")
    try:
        VerifyKey(key).verify(sig, message)
    except (BadSignatureError, DchatError):
        raise ChannelError(f"{who}'s signature does not verify") from None


class ChannelBook:
    """The channels of one wallet key, persisted encrypted next to the wallet.

    Args:
        path: The channel file (created on first save).
        key: The wallet's account key.
        passphrase: The wallet's passphrase (also encrypts this file).
        kdf: Argon2id cost for a new file (an existing file keeps its own).
    """

    def __init__(self, path: Path, key: SigningKey, passphrase: bytes, kdf: KdfParams) -> None:
        self.path, self._key, self._passphrase, self._kdf = path, key, passphrase, kdf
        self.me = key.public_key.to_bytes()
        self.channels: dict[bytes, ChannelRecord] = {}

    @classmethod
    def load(cls, path: Path, key: SigningKey, passphrase: bytes, wallet: Path) -> ChannelBook:
        """Open ``path`` (empty if missing), with the wallet file's KDF cost for a new one.

        Raises:
            ConfigError: Unreadable, wrong passphrase, another wallet's, or corrupt.
        """
        try:
            kdf = _kdf_of(wallet.read_bytes())
            blob = path.read_bytes() if path.exists() else None
        except OSError as exc:
            raise ConfigError(f"cannot read {path.name}: {exc.strerror}") from None
        book = cls(path, key, passphrase, kdf if blob is None else _kdf_of(blob))
        if blob is not None:
            book._read(blob)
        return book

    def _read(self, blob: bytes) -> None:
        try:
            plain = decrypt_with_passphrase(blob, self._passphrase)
        except (DecryptionError, KeystoreFormatError):
            raise ConfigError(f"cannot unlock {self.path.name}: wrong passphrase?") from None
        try:
            f = Fields(
                canonical_decode(plain, _LIMITS),
                "channels",
                frozenset({"v", "kind", "owner", "channels"}),
            )
            if f.get_int("v") != 1 or f.get_str("kind", max_len=16) != "channels":
                raise ChannelError("not a channel file")
            if f.get_bytes("owner", size=32) != self.me:
                raise ConfigError(f"{self.path.name} belongs to another wallet")
            for raw in f.get_list("channels", max_len=MAX_CHANNELS):
                record = ChannelRecord.from_obj(raw)
                self.channels[record.chan] = record
        except ConfigError:
            raise
        except DchatError as exc:
            raise ConfigError(f"{self.path.name} is corrupt: {exc}") from None

    def save(self) -> None:
        """Encrypt and write the book atomically."""
        content = {
            "v": 1,
            "kind": "channels",
            "owner": self.me,
            "channels": [r.to_obj() for r in self.channels.values()],
        }
        blob = encrypt_with_passphrase(
            canonical_encode(content), self._passphrase, params=self._kdf
        )
        write_private(self.path, blob)

    def get(self, chan: bytes) -> ChannelRecord:
        """The record of ``chan``.

        Raises:
            ChannelError: No such channel in this wallet.
        """
        record = self.channels.get(chan)
        if record is None:
            raise ChannelError("no such channel in this wallet")
        return record

    def _add(self, record: ChannelRecord) -> None:
        if record.chan not in self.channels and len(self.channels) >= MAX_CHANNELS:
            raise ChannelError(f"a wallet keeps at most {MAX_CHANNELS} channels")
        self.channels[record.chan] = record

    def _peer(self, record: ChannelRecord) -> bytes:
        return record.offer.b if record.offer.a == self.me else record.offer.a

    # -- opening -------------------------------------------------------------------

    def offer(self, chain: str, peer: bytes, deposit: int, peer_deposit: int, nonce: int) -> Offer:
        """Propose a channel to ``peer``, opened at this wallet's ``nonce``."""
        offer = Offer(chain, self.me, peer, deposit, peer_deposit, nonce)
        if peer == self.me or deposit + peer_deposit == 0:
            raise ChannelError("a channel needs another party and a deposit")
        self._add(ChannelRecord(offer, "offered"))
        return offer

    def consent(self, offer: Offer) -> Consent:
        """As the peer, agree to ``offer`` (which must name this wallet as ``b``)."""
        if offer.b != self.me:
            raise ChannelError("this offer is not addressed to this wallet")
        self._add(ChannelRecord(offer, "offered"))
        return Consent(offer.chan, self._key.sign(offer.terms()))

    def take_consent(self, consent: Consent) -> ChannelRecord:
        """As the opener, check and keep the peer's consent to an offer made here."""
        record = self.get(consent.chan)
        if record.offer.a != self.me or record.status != "offered":
            raise ChannelError("no open offer of this wallet for that channel")
        _verify(record.offer.b, consent.sig, record.offer.terms(), "the peer")
        record.consent = consent.sig
        return record

    # -- payments ------------------------------------------------------------------

    def pay(self, chan: bytes, amount: int, *, final: bool = False) -> Update:
        """Sign the next state, ``amount`` moved from this wallet to the peer."""
        record = self.get(chan)
        if record.status != "open":
            raise ChannelError(f"the channel is {record.status}, not open")
        if record.latest is not None and record.latest.state.final:
            raise ChannelError("a final state was signed: the channel is closing")
        ba, bb = record.balances()
        mine_is_a = record.offer.a == self.me
        if amount > (ba if mine_is_a else bb):
            raise ChannelError("the channel does not hold that much on this side")
        ba, bb = (ba - amount, bb + amount) if mine_is_a else (ba + amount, bb - amount)
        state = ChannelState(chan, record.seq() + 1, ba, bb, final)
        sig = state.sign(self._key)
        update = Update(state, sig, None) if mine_is_a else Update(state, None, sig)
        record.latest = update
        return update

    def accept(self, update: Update, *, keep: bool = True) -> Update:
        """Verify a state from the peer, countersign it if new, keep it; returns it signed by both.

        With ``keep`` False only the checks run (the book is unchanged).

        Raises:
            ChannelError: Unknown channel, bad signature, wrong total, a replayed or
                older ``seq``, or a state that takes funds from this wallet.
        """
        record = ChannelRecord.from_obj(self.get(update.state.channel).to_obj())  # a copy
        if record.status not in ("open", "closing"):
            raise ChannelError(f"the channel is {record.status}")
        state, offer = update.state, record.offer
        if state.balance_a + state.balance_b != offer.da + offer.db:
            raise ChannelError("the balances do not add up to the deposits")
        mine_is_a = offer.a == self.me
        message = state.signing_bytes()
        _verify(
            self._peer(record), update.sig_b if mine_is_a else update.sig_a, message, "the peer"
        )
        own = update.sig_a if mine_is_a else update.sig_b
        if own is not None:
            # Signed here before (only pay and accept sign): the peer countersigned it.
            _verify(self.me, own, message, "this wallet")
        else:
            self._check_new(record, state, mine_is_a)
            own = state.sign(self._key)
            update = replace(update, sig_a=own) if mine_is_a else replace(update, sig_b=own)
            record.latest = update
        if record.full is None or state.seq > record.full.state.seq:
            record.full = update
        if record.latest is None or state.seq > record.latest.state.seq:
            record.latest = update
        if keep:
            self.channels[record.chan] = record
        return update

    def _check_new(self, record: ChannelRecord, state: ChannelState, mine_is_a: bool) -> None:
        if state.seq <= record.seq():
            raise ChannelError(f"seq {state.seq} is not newer than {record.seq()}: a replay")
        if record.latest is not None and record.latest.state.final:
            raise ChannelError("a final state was signed already")
        ba, bb = record.balances()
        if (state.balance_a < ba) if mine_is_a else (state.balance_b < bb):
            raise ChannelError("the state takes funds from this wallet")
