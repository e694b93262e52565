"""A wallet's payment channels: the off-chain state machine of each, and its encoding.

Theory of operation. For each channel the book keeps the opening terms (an
:class:`ChannelOffer`), a status (``offered``, ``open``, ``closing``, ``closed``), the
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

Every check happens before anything changes: a refused offer, consent or
update (a forged or missing signature, a replayed or older ``seq``, balances
that do not add up or that take funds from this wallet, a payment larger than
this side holds, a state after a final one) is a :class:`ChannelError` and
leaves the book as it was.

The book does no I/O. :meth:`ChannelBook.to_bytes` is the canonical map
(``docs/protocol.md``, section 16) a wallet keeps; the node encrypts it under
the wallet's passphrase (``WALLET.channels``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DchatError, DecodeLimits, Fields, canonical_decode, canonical_encode
from dchat_crypto import BadSignatureError, VerifyKey

from ._channel_messages import ChannelConsent, ChannelOffer, ChannelUpdate, decode_channel_obj
from ._channels import ChannelState
from ._errors import ChannelError

if TYPE_CHECKING:
    from dchat_crypto import SigningKey

__all__ = ("MAX_CHANNELS", "ChannelBook", "ChannelRecord")

MAX_CHANNELS: Final = 1024
_LIMITS: Final = DecodeLimits(max_size=4 << 20, max_depth=5, max_items=8 * MAX_CHANNELS)


@dataclass
class ChannelRecord:
    """One channel as this wallet knows it."""

    offer: ChannelOffer
    status: str
    consent: bytes | None = None
    latest: ChannelUpdate | None = None
    full: ChannelUpdate | None = None

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
            decode_channel_obj(f.raw(k)) if f.raw(k) is not None else None
            for k in ("offer", "latest", "full")
        )
        if not isinstance(offer, ChannelOffer) or not all(
            u is None or isinstance(u, ChannelUpdate) for u in (latest, full)
        ):
            raise ChannelError("channel record holds the wrong message types")
        consent = None if f.raw("consent") is None else f.get_bytes("consent", size=64)
        status = f.get_str("status", max_len=16)
        return cls(offer, status, consent, latest, full)  # type: ignore[arg-type]


def _verify(key: bytes, sig: bytes | None, message: bytes, who: str) -> None:
    if sig is None:
        raise ChannelError(f"the state lacks {who}'s signature")
    try:
        VerifyKey(key).verify(sig, message)
    except (BadSignatureError, DchatError):
        raise ChannelError(f"{who}'s signature does not verify") from None


class ChannelBook:
    """The channels of one wallet key.

    Args:
        key: The wallet's account key (it signs consents and states).
    """

    def __init__(self, key: SigningKey) -> None:
        self._key = key
        self.me = key.public_key.to_bytes()
        self.channels: dict[bytes, ChannelRecord] = {}

    @classmethod
    def from_bytes(cls, data: bytes, key: SigningKey) -> ChannelBook:
        """The book :meth:`to_bytes` gave, for the same key.

        Raises:
            ChannelError: Not a channel book, another key's, or corrupt.
        """
        book = cls(key)
        try:
            f = Fields(
                canonical_decode(data, _LIMITS),
                "channels",
                frozenset({"v", "kind", "owner", "channels"}),
            )
            if f.get_int("v") != 1 or f.get_str("kind", max_len=16) != "channels":
                raise ChannelError("not a channel book")
            if f.get_bytes("owner", size=32) != book.me:
                raise ChannelError("the channel book belongs to another wallet")
            for raw in f.get_list("channels", max_len=MAX_CHANNELS):
                record = ChannelRecord.from_obj(raw)
                book.channels[record.chan] = record
        except ChannelError:
            raise
        except DchatError as exc:
            raise ChannelError(f"the channel book is corrupt: {exc}") from None
        return book

    def to_bytes(self) -> bytes:
        """The canonical encoding of the book (what a wallet keeps, encrypted)."""
        content = {
            "v": 1,
            "kind": "channels",
            "owner": self.me,
            "channels": [r.to_obj() for r in self.channels.values()],
        }
        return canonical_encode(content)

    def get(self, chan: bytes) -> ChannelRecord:
        """The record of ``chan``.

        Raises:
            ChannelError: No such channel in this wallet.
        """
        record = self.channels.get(chan)
        if record is None:
            raise ChannelError("no such channel in this wallet")
        return record

    def _add_offered(self, offer: ChannelOffer) -> None:
        known = self.channels.get(offer.chan)
        if known is not None:
            # The same terms again (the id is their hash): keep what this wallet
            # holds; an offer replayed for a running channel must not reset it.
            if known.status != "offered":
                raise ChannelError(f"the channel is {known.status} already")
            return
        if len(self.channels) >= MAX_CHANNELS:
            raise ChannelError(f"a wallet keeps at most {MAX_CHANNELS} channels")
        self.channels[offer.chan] = ChannelRecord(offer, "offered")

    def _peer(self, record: ChannelRecord) -> bytes:
        return record.offer.b if record.offer.a == self.me else record.offer.a

    # -- opening -------------------------------------------------------------------

    def offer(
        self, chain: str, peer: bytes, deposit: int, peer_deposit: int, nonce: int
    ) -> ChannelOffer:
        """Propose a channel to ``peer``, opened at this wallet's ``nonce``."""
        offer = ChannelOffer(chain, self.me, peer, deposit, peer_deposit, nonce)
        if peer == self.me or deposit + peer_deposit == 0:
            raise ChannelError("a channel needs another party and a deposit")
        self._add_offered(offer)
        return offer

    def consent(self, offer: ChannelOffer) -> ChannelConsent:
        """As the peer, agree to ``offer`` (which must name this wallet as ``b``).

        Raises:
            ChannelError: Not addressed here, or a channel with these terms runs already.
        """
        if offer.b != self.me:
            raise ChannelError("this offer is not addressed to this wallet")
        self._add_offered(offer)
        return ChannelConsent(offer.chan, self._key.sign(offer.terms()))

    def take_consent(self, consent: ChannelConsent) -> ChannelRecord:
        """As the opener, check and keep the peer's consent to an offer made here.

        Raises:
            ChannelError: No offer of this wallet awaits it, or the signature is not the peer's.
        """
        record = self.get(consent.chan)
        if record.offer.a != self.me or record.status != "offered":
            raise ChannelError("no open offer of this wallet for that channel")
        _verify(record.offer.b, consent.sig, record.offer.terms(), "the peer")
        record.consent = consent.sig
        return record

    # -- payments ------------------------------------------------------------------

    def pay(self, chan: bytes, amount: int, *, final: bool = False) -> ChannelUpdate:
        """Sign the next state, ``amount`` moved from this wallet to the peer.

        Raises:
            ChannelError: Unknown or not open channel, a final state signed
                already, or ``amount`` negative or more than this side holds.
        """
        if amount < 0:
            raise ChannelError("a payment cannot be negative")
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
        update = ChannelUpdate(state, sig, None) if mine_is_a else ChannelUpdate(state, None, sig)
        record.latest = update
        return update

    def accept(self, update: ChannelUpdate, *, keep: bool = True) -> ChannelUpdate:
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
