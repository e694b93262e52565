"""``dchat wallet channel ...``: payment channels from the command line.

Opening takes one round trip: the opener's ``open --peer`` prints an offer,
the peer's ``accept OFFER`` prints its consent, and the opener's
``open --consent CONSENT`` submits ``channel_open``. Paying is off chain:
``pay`` prints a signed update for the peer, whose ``accept`` countersigns it
and prints the copy to hand back (the payer ``accept``s that too). ``close``
settles cooperatively with a final state both signed; ``close --unilateral``
publishes the latest state both signed (or an older one given with
``--state``) and starts the dispute window; ``dispute`` answers a stale close
with a newer state; ``settle`` pays out after the window.

States live in ``WALLET.channels``, encrypted with the wallet passphrase (see
``dchat_chain.lowlevel.ChannelFile``; the rules are its ``ChannelBook``'s).
Every text from the peer is decoded with bounds and checked before anything is
signed or stored.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from dchat_chain.lowlevel import (
    ChannelConsent,
    ChannelFile,
    ChannelOffer,
    ChannelUpdate,
    decode_channel_text,
    encode_channel_text,
)
from dchat_core import DchatError, DecodeLimits, canonical_decode

from ..validator._keys import load_wallet
from ._chain import (
    GenesisFile,
    LightDir,
    NodeDir,
    PassFile,
    WalletFile,
    _Api,
    _passphrase,
    _send,
    _signed_with,
)
from ._common import fail as _fail
from ._common import key_bytes

if TYPE_CHECKING:
    from pathlib import Path

    from dchat_chain.lowlevel import ChannelRecord

__all__ = ("channel_app",)

_out = Console()
_RECORD_LIMITS = DecodeLimits(max_size=4096, max_depth=2, max_items=32)


def _say(text: str) -> None:
    _out.print(text, highlight=False, soft_wrap=True)


channel_app = typer.Typer(help="Two-party payment channels (off-chain payments).")

ChanId = Annotated[str, typer.Argument(help="The channel id (hex).")]
Text = Annotated[str, typer.Argument(help="A dchat-chan: text from the peer.")]
Fee = Annotated[int, typer.Option(min=0)]


class _Session:
    """A command's wallet key, channel book and node API."""

    def __init__(
        self,
        node: Path,
        wallet: Path,
        passphrase_file: Path | None,
        genesis: Path | None = None,
        light_dir: Path | None = None,
    ) -> None:
        secret = _passphrase(passphrase_file)
        try:
            self.key = load_wallet(wallet, secret)
            path = wallet.with_name(wallet.name + ".channels")
            self.file, self.book = ChannelFile.load(path, self.key, secret, wallet)
        except DchatError as exc:
            raise _fail(str(exc)) from None
        self.api = _Api(node, genesis, light_dir, wallet)

    def record(self, chan_hex: str) -> ChannelRecord:
        try:
            chan = bytes.fromhex(chan_hex)
            return self.book.get(chan)
        except ValueError:
            raise _fail("CHANNEL must be 64 hex digits") from None
        except DchatError as exc:
            raise _fail(str(exc)) from None

    def on_chain(self, chan: bytes) -> dict[str, Any] | None:
        """The channel's certified record, verified by the light client (None: no channel)."""
        _, value = self.api.proven(f"/v1/chain/channels/{chan.hex()}", b"chan/" + chan)
        return None if value is None else _channel_record(value)

    def refresh(self, record: ChannelRecord) -> dict[str, Any] | None:
        """Bring the record's status in line with the chain; returns the chain record."""
        found = self.on_chain(record.chan)
        if found is not None:
            record.status = found["status"]
        elif record.status in ("open", "closing"):
            record.status = "closed"
        return found

    def submit(self, kind: str, body: dict[str, Any], fee: int) -> None:
        status = _send(self.api, _signed_with(self.api, self.key, kind, body, fee), True)
        if status is None or status["code"] != 0:
            raise _fail("the transaction failed on chain")

    def save(self) -> None:
        self.file.save(self.book)


def _channel_record(value: bytes) -> dict[str, Any]:
    """The fields the commands use from a proven ``chan/<id>`` value (docs/protocol.md)."""
    try:
        raw = canonical_decode(value, _RECORD_LIMITS)
        record = {"status": "open" if raw["st"] == 0 else "closing", "seq": int(raw["seq"])}
        record["until"] = raw.get("until")
    except (DchatError, KeyError, TypeError, ValueError, AttributeError):
        raise _fail("refused the node's answer: a malformed channel record") from None
    return record


def _guard_book(action: Any) -> Any:
    try:
        return action()
    except DchatError as exc:
        raise _fail(str(exc)) from None


@channel_app.command("open")
def open_channel(
    node: NodeDir,
    wallet: WalletFile,
    peer: Annotated[str | None, typer.Option(help="The peer's account key (hex).")] = None,
    deposit: Annotated[int, typer.Option(min=0, help="This wallet's deposit.")] = 0,
    peer_deposit: Annotated[int, typer.Option(min=0, help="The peer's deposit.")] = 0,
    consent: Annotated[str | None, typer.Option(help="The peer's consent text.")] = None,
    fee: Fee = 1,
    passphrase_file: PassFile = None,
    genesis: GenesisFile = None,
    light_dir: LightDir = None,
) -> None:
    """Offer a channel to --peer (prints the offer), or open it with the peer's --consent."""
    s = _Session(node, wallet, passphrase_file, genesis, light_dir)
    if consent is None:
        if peer is None:
            raise _fail("give --peer (to make an offer) or --consent (to open)")
        peer_key = key_bytes(peer, "--peer")
        chain = s.api.chain_id
        nonce = s.api.call("GET", f"/v1/chain/accounts/{s.key.public_key.to_bytes().hex()}")
        offer = _guard_book(
            lambda: s.book.offer(chain, peer_key, deposit, peer_deposit, nonce["next_nonce"])
        )
        s.save()
        _say(
            f"channel {offer.chan.hex()}: give this offer to the peer",
        )
        _say(encode_channel_text(offer))
        return
    message = _guard_book(lambda: decode_channel_text(consent))
    if not isinstance(message, ChannelConsent):
        raise _fail("--consent must be the peer's consent text")
    record = _guard_book(lambda: s.book.take_consent(message))
    s.save()
    offer = record.offer
    body = {"peer": offer.b, "deposit": offer.da, "peer_deposit": offer.db, "peer_sig": message.sig}
    tx = _signed_with(s.api, s.key, "channel_open", body, fee)
    if tx.nonce != offer.n:
        raise _fail(
            f"the offer was made at nonce {offer.n}, the wallet is at {tx.nonce}: offer again"
        )
    status = _send(s.api, tx, True)
    if status is None or status["code"] != 0:
        raise _fail("the channel was not opened")
    s.refresh(record)
    s.save()
    _say(f"channel {record.chan.hex()} is {record.status}")


@channel_app.command("accept")
def accept(
    node: NodeDir,
    wallet: WalletFile,
    text: Text,
    passphrase_file: PassFile = None,
    genesis: GenesisFile = None,
    light_dir: LightDir = None,
) -> None:
    """Take a text from the peer: consent to an offer, or verify and countersign an update."""
    s = _Session(node, wallet, passphrase_file, genesis, light_dir)
    message = _guard_book(lambda: decode_channel_text(text))
    if isinstance(message, ChannelOffer):
        if message.chain != s.api.chain_id:
            raise _fail("the offer is for another chain")
        answer = _guard_book(lambda: s.book.consent(message))
        s.save()
        _say(f"channel {message.chan.hex()}: give this consent to the opener")
        _say(encode_channel_text(answer))
        return
    if not isinstance(message, ChannelUpdate):
        raise _fail("expected an offer or an update")
    record = _guard_book(lambda: s.book.get(message.state.channel))
    s.refresh(record)
    signed = _guard_book(lambda: s.book.accept(message))
    s.save()
    state = signed.state
    _say(
        f"accepted seq {state.seq}: a {state.balance_a}, b {state.balance_b}"
        f"{' (final)' if state.final else ''}; the countersigned copy for the peer:"
    )
    _say(encode_channel_text(signed))


@channel_app.command("show")
def show(
    node: NodeDir,
    wallet: WalletFile,
    text: Text,
    passphrase_file: PassFile = None,
    genesis: GenesisFile = None,
    light_dir: LightDir = None,
) -> None:
    """Decode and check a text from the peer without storing or signing anything."""
    s = _Session(node, wallet, passphrase_file, genesis, light_dir)
    message = _guard_book(lambda: decode_channel_text(text))
    if isinstance(message, ChannelOffer):
        shown: dict[str, Any] = {"type": "offer", "channel": message.chan.hex()}
        shown |= {"a": message.a.hex(), "b": message.b.hex(), "deposit_a": message.da}
        shown |= {"deposit_b": message.db, "to_me": message.b == s.book.me}
    elif isinstance(message, ChannelConsent):
        shown = {"type": "consent", "channel": message.chan.hex()}
    else:
        _guard_book(lambda: s.book.accept(message, keep=False))
        st = message.state
        shown = {"type": "update", "channel": st.channel.hex(), "seq": st.seq}
        shown |= {"balance_a": st.balance_a, "balance_b": st.balance_b, "final": st.final}
        shown |= {"acceptable": True}
    _out.print_json(json.dumps(shown))


@channel_app.command("pay")
def pay(
    node: NodeDir,
    wallet: WalletFile,
    chan: ChanId,
    amount: Annotated[int, typer.Argument(min=1)],
    passphrase_file: PassFile = None,
    genesis: GenesisFile = None,
    light_dir: LightDir = None,
) -> None:
    """Sign a payment of AMOUNT to the peer; prints the update to give them."""
    s = _Session(node, wallet, passphrase_file, genesis, light_dir)
    record = s.record(chan)
    s.refresh(record)
    update = _guard_book(lambda: s.book.pay(record.chan, amount))
    s.save()
    st = update.state
    _say(f"seq {st.seq}: a {st.balance_a}, b {st.balance_b}; give this to the peer:")
    _say(encode_channel_text(update))


@channel_app.command("close")
def close(
    node: NodeDir,
    wallet: WalletFile,
    chan: ChanId,
    unilateral: Annotated[bool, typer.Option(help="Close alone (dispute window).")] = False,
    state: Annotated[
        str | None, typer.Option(help="With --unilateral: publish this signed update.")
    ] = None,
    fee: Fee = 1,
    passphrase_file: PassFile = None,
    genesis: GenesisFile = None,
    light_dir: LightDir = None,
) -> None:
    """Close cooperatively (a final state both signed), or --unilateral."""
    s = _Session(node, wallet, passphrase_file, genesis, light_dir)
    record = s.record(chan)
    s.refresh(record)
    if record.status != "open":
        raise _fail(f"the channel is {record.status}, not open")
    if unilateral:
        published = record.full
        if state is not None:
            given = _guard_book(lambda: decode_channel_text(state))
            if not isinstance(given, ChannelUpdate) or given.state.channel != record.chan:
                raise _fail("--state must be a signed update of this channel")
            published = given
        body = {
            "chan": record.chan,
            "state": None if published is None else _guard_book(published.tx_state),
        }
        s.submit("channel_close", body, fee)
        found = s.refresh(record)
        s.save()
        until = None if found is None else found["until"]
        _say(f"closing; the peer may dispute until height {until}")
        return
    if record.full is not None and record.full.state.final:
        s.submit("channel_coop_close", {"chan": record.chan, "state": record.full.tx_state()}, fee)
        s.refresh(record)
        s.save()
        _say(f"channel {record.chan.hex()} is {record.status}")
        return
    final = _guard_book(lambda: s.book.pay(record.chan, 0, final=True))
    s.save()
    _say("final state signed; the peer runs `accept` on it, then `close`:")
    _say(encode_channel_text(final))


@channel_app.command("dispute")
def dispute(
    node: NodeDir,
    wallet: WalletFile,
    chan: ChanId,
    fee: Fee = 1,
    passphrase_file: PassFile = None,
    genesis: GenesisFile = None,
    light_dir: LightDir = None,
) -> None:
    """Answer the peer's close of a stale state with the newer one both signed."""
    s = _Session(node, wallet, passphrase_file, genesis, light_dir)
    record = s.record(chan)
    found = s.refresh(record)
    if found is None or found["status"] != "closing":
        raise _fail("the channel is not closing")
    if record.full is None or record.full.state.seq <= found["seq"]:
        raise _fail("this wallet holds no newer state than the published one")
    s.submit("channel_dispute", {"chan": record.chan, "state": record.full.tx_state()}, fee)
    s.refresh(record)
    s.save()
    _say(f"disputed: channel {record.chan.hex()} is {record.status}")


@channel_app.command("settle")
def settle(
    node: NodeDir,
    wallet: WalletFile,
    chan: ChanId,
    fee: Fee = 1,
    passphrase_file: PassFile = None,
    genesis: GenesisFile = None,
    light_dir: LightDir = None,
) -> None:
    """Pay out a unilateral close after its dispute window."""
    s = _Session(node, wallet, passphrase_file, genesis, light_dir)
    record = s.record(chan)
    s.submit("channel_settle", {"chan": record.chan}, fee)
    s.refresh(record)
    s.save()
    _say(f"channel {record.chan.hex()} is {record.status}")


@channel_app.command("list")
def list_channels(
    node: NodeDir,
    wallet: WalletFile,
    passphrase_file: PassFile = None,
    genesis: GenesisFile = None,
    light_dir: LightDir = None,
) -> None:
    """This wallet's channels: status, latest seq and balances (status from the chain)."""
    s = _Session(node, wallet, passphrase_file, genesis, light_dir)
    rows = []
    for record in s.book.channels.values():
        s.refresh(record)
        ba, bb = record.balances()
        peer = record.offer.b if record.offer.a == s.book.me else record.offer.a
        rows.append(
            {
                "channel": record.chan.hex(),
                "peer": peer.hex(),
                "role": "a" if record.offer.a == s.book.me else "b",
                "status": record.status,
                "seq": record.seq(),
                "balance_a": ba,
                "balance_b": bb,
                "signed_by_both": 0 if record.full is None else record.full.state.seq,
            }
        )
    s.save()
    _out.print_json(json.dumps(rows))
