"""Onion deposits (issue 18, item 2), sans-IO: relay keys, peeling, routes (protocol §39).

Theory of operation. A sender in onion mode does not hand an envelope to the
mailbox relay itself: it wraps ``(mailbox, authorization, envelope)`` in a
Sphinx message (:func:`dchat_privacy.build_message`, BOLT 4 header and a
fixed 4096-byte body) routed over three relays, the last of which is the
mailbox relay, and gives it to the first. Each relay peels one layer with its
onion key (:class:`OnionKeys`) and learns only the next hop, or, at the last
hop, the mailbox to deposit into. So the mailbox relay sees the envelope
arrive from another relay, never from the sender's address; the first relay
sees the sender's address but not where the onion goes.

Onion keys. Each relay draws a fresh secp256k1 onion key per epoch
(``period`` seconds, from the Unix epoch; an hour by default, so the replay
cache of 250,000 tags per epoch holds about 70 onions a second), kept in
memory only: a restart
draws a new one, so the replay cache, also in memory, never meets a packet
for a key it forgot. The previous epoch's key still peels (onions built just
before a rotation), then both are gone. A sender learns a key from its
:class:`OnionKeyRecord`, signed with the relay's node key, the key its links
prove and users pin (its :class:`~dchat_core.NodeId` is in the chain's relay
directory and in ``NODEID@HOST:PORT`` relay addresses); the record also names
the node, so a forwarded onion's next hop is dialled pinned to it.

Hop payloads (canonical CBOR maps inside the BOLT 4 hop payloads)::

    forward  {"to": "NODEID@HOST:PORT"}            the next relay, pinned
    deposit  {"mb": mailbox(32), ?"auth": bytes,    the last hop: where to put
              ?"frag": [id(16), index, count],      the body's data (the envelope,
              ?"rp": true}                          or piece ``index`` of ``count``;
                                                    with ``rp``: a reply block's
                                                    route, the body kept whole, §45)

The deposit is then served exactly as a ``put`` of that envelope into that
mailbox with that authorization (put tokens, proof of work, quotas, the
replay window), so the put rules stay the mailbox relay's. An envelope longer
than one body (4092 bytes) travels in up to :data:`MAX_FRAGMENTS` onions, each
on its own route, that the mailbox relay puts together (:class:`Reassembly`,
bounded in bytes and time) before the put.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dchat_core import (
    DecodeError,
    DecodeLimits,
    Fields,
    InvalidRelayAddressError,
    NodeId,
    RelayAddress,
    canonical_decode,
    canonical_encode,
)
from dchat_crypto import BadSignatureError, VerifyKey
from dchat_privacy import OnionPrivateKey, OnionPublicKey, OnionRelay, SphinxError, build_message
from dchat_privacy.lowlevel import (
    BODY_SIZE,
    DEFAULT_REPLAY_ENTRIES,
    REPLY_BLOCK_SIZE,
    Deliver,
    ReplayCacheFullError,
    ReplayedPacketError,
    ReplyBlock,
    read_body,
)

from ._errors import OnionKeyError, OnionRefusedError, OnionRouteError
from ._put_auth import MAX_REDEMPTION, check_auth

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Iterator, Sequence

    from dchat_crypto import SigningKey

__all__ = (
    "DEFAULT_ONION_PERIOD",
    "MAX_ONION_ENVELOPE",
    "ONION_HOPS",
    "OnionDeposit",
    "OnionFetch",
    "OnionHop",
    "OnionKeyRecord",
    "OnionKeys",
    "Reassembly",
    "build_onion_put",
    "choose_onion_route",
)

DEFAULT_ONION_PERIOD: Final = 3600.0
ONION_HOPS: Final = 3
MAX_ONION_ENVELOPE: Final = BODY_SIZE - 4
"""The largest envelope one onion carries (the body's padding takes 4 bytes)."""
MAX_FRAGMENTS: Final = 24
"""The most onions one envelope is split into (24 bodies hold a 96 KiB envelope)."""
FRAGMENT_TTL: Final = 120.0
"""Seconds a mailbox relay keeps the pieces of an envelope it has not all of."""
_RECORD_DOMAIN: Final = b"dchat onion key v1\x00"
_LIMITS: Final = DecodeLimits(max_size=1024, max_depth=2, max_items=16)


@dataclass(frozen=True, slots=True)
class OnionKeyRecord:
    """A relay's onion key for one epoch, signed with its node key.

    Attributes:
        node_key: The relay's node key (Ed25519, 32 bytes): its ``NodeId`` is pinned.
        onion_key: The epoch's secp256k1 onion key.
        epoch: The epoch number (``floor(time / period)``).
        period: Seconds per epoch.
        signature: The node key's signature over the rest.
    """

    node_key: bytes
    onion_key: OnionPublicKey
    epoch: int
    period: int
    signature: bytes

    @property
    def node(self) -> NodeId:
        """The relay's node id."""
        return NodeId.derive(self.node_key)

    @property
    def usable_until(self) -> float:
        """A sender uses the key until its epoch ends (the relay peels it one epoch more)."""
        return float((self.epoch + 1) * self.period)

    def _body(self) -> dict[str, object]:
        return {
            "v": 1,
            "node": self.node_key,
            "k": self.onion_key.to_bytes(),
            "e": self.epoch,
            "p": self.period,
        }

    @classmethod
    def sign(
        cls, node_key: SigningKey, onion_key: OnionPublicKey, *, epoch: int, period: int
    ) -> OnionKeyRecord:
        """The record of ``onion_key`` for ``epoch``, signed with ``node_key``."""
        unsigned = cls(node_key.public_key.to_bytes(), onion_key, epoch, period, b"")
        signature = node_key.sign(_RECORD_DOMAIN + canonical_encode(unsigned._body()))
        return cls(unsigned.node_key, onion_key, epoch, period, signature)

    def to_bytes(self) -> bytes:
        return canonical_encode({**self._body(), "sig": self.signature})

    @classmethod
    def verify(
        cls, data: bytes, *, node: NodeId | None, now: float, link_key: bytes | None = None
    ) -> OnionKeyRecord:
        """Parse and check a record from a relay.

        Args:
            data: The record.
            node: The pinned node id of the relay (None: not pinned).
            now: The current time; the record's epoch must not have ended.
            link_key: The node key the relay's link proved (the record must name it).

        Raises:
            OnionKeyError: malformed, badly signed, for another node, or expired.
        """
        try:
            f = Fields(canonical_decode(data, _LIMITS), "onion key record", frozenset(_FIELDS))
            if f.get_int("v", hi=255) != 1:
                raise OnionKeyError("unknown onion key record version")
            node_key = f.get_bytes("node", size=32)
            record = cls(
                node_key,
                OnionPublicKey.from_bytes(f.get_bytes("k", size=OnionPublicKey.SIZE)),
                f.get_int("e", hi=2**40),
                f.get_int("p", lo=1, hi=2**31),
                f.get_bytes("sig", size=64),
            )
            VerifyKey.from_bytes(node_key).verify(
                record.signature, _RECORD_DOMAIN + canonical_encode(record._body())
            )
        except (DecodeError, SphinxError, BadSignatureError, ValueError) as exc:
            if isinstance(exc, OnionKeyError):
                raise
            raise OnionKeyError("malformed or badly signed onion key record") from None
        if (node is not None and record.node != node) or (
            link_key is not None and link_key != node_key
        ):
            raise OnionKeyError("onion key record of another relay")
        if now >= record.usable_until + record.period or now < record.epoch * record.period - 600:
            raise OnionKeyError("onion key record out of its epoch")
        return record


_FIELDS: Final = ("v", "node", "k", "e", "p", "sig")


@dataclass(frozen=True, slots=True)
class OnionHop:
    """Send ``packet`` on to the relay at ``to`` (pinned to its node id)."""

    to: RelayAddress
    packet: bytes


@dataclass(frozen=True, slots=True)
class OnionDeposit:
    """The last hop: put ``envelope`` into ``mailbox`` with ``auth``, as a ``put`` would."""

    mailbox: bytes
    envelope: bytes
    auth: bytes | None
    fragment: tuple[bytes, int, int] | None = None
    """``(id, index, count)`` when ``envelope`` is one piece of a longer envelope."""
    reply_id: bytes | None = None
    """Set when the onion came under a reply block (§45): ``envelope`` is then the
    raw 4096-byte body, which the relay files as a reply envelope with this id."""


@dataclass(frozen=True, slots=True)
class OnionFetch:
    """The last hop of a fetch onion (§46): answer ``mailbox``'s prekey bundle through ``block``."""

    mailbox: bytes
    block: ReplyBlock


class Reassembly:
    """A mailbox relay's pieces of envelopes that came in several onions (sans-IO).

    Pieces are kept by their random 16-byte id for :data:`FRAGMENT_TTL`
    seconds, at most ``max_bytes`` in all (a new piece past it is refused
    ``busy``); a piece that disagrees with the first of its id (another
    mailbox, count or authorization) is ``bad_onion``.
    """

    def __init__(self, max_bytes: int = 16 * 1024 * 1024) -> None:
        self._max = max_bytes
        self._held = 0
        # id -> (first seen, (mailbox, auth, count) of its first piece, pieces by index)
        self._pending: dict[bytes, tuple[float, tuple[object, ...], dict[int, bytes]]] = {}

    def _expire(self, now: float) -> None:
        for key in [k for k, (at, _, _) in self._pending.items() if now - at > FRAGMENT_TTL]:
            self._held -= sum(len(p) for p in self._pending.pop(key)[2].values())

    def add(self, piece: OnionDeposit, now: float) -> OnionDeposit | None:
        """Keep ``piece``; the whole deposit once every piece of it is here, else None.

        Raises:
            OnionRefusedError: ``bad_onion`` (disagrees with its id's first
                piece), ``busy`` (no room).
        """
        assert piece.fragment is not None
        key, index, count = piece.fragment
        self._expire(now)
        shape = (piece.mailbox, piece.auth, count)
        _, first, pieces = self._pending.setdefault(key, (now, shape, {}))
        if first != shape:
            raise OnionRefusedError("bad_onion")
        if index not in pieces:
            if self._held + len(piece.envelope) > self._max:
                if not pieces:
                    del self._pending[key]
                raise OnionRefusedError("busy")
            pieces[index] = piece.envelope
            self._held += len(piece.envelope)
        if len(pieces) < count:
            return None
        del self._pending[key]
        self._held -= sum(len(p) for p in pieces.values())
        whole = b"".join(pieces[i] for i in range(count))
        return OnionDeposit(piece.mailbox, whole, piece.auth)

    def __len__(self) -> int:
        return len(self._pending)


class OnionKeys:
    """A relay's onion keys, one per epoch, and its replay cache (sans-IO).

    Args:
        node_key: Signs the key records.
        now: The current time (the first epoch's key is drawn for it).
        period: Seconds per epoch (whole seconds).
        max_entries: The replay cache's size per epoch.
        generate: Draws an onion key (a parameter for tests).
    """

    def __init__(
        self,
        node_key: SigningKey,
        *,
        now: float,
        period: float = DEFAULT_ONION_PERIOD,
        max_entries: int = DEFAULT_REPLAY_ENTRIES,
        generate: Callable[[], OnionPrivateKey] = OnionPrivateKey.generate,
    ) -> None:
        self._node_key = node_key
        self._period = max(1, math.ceil(period))
        self._generate = generate
        epoch = self._epoch(now)
        key = generate()
        self._relay = OnionRelay(key, epoch=epoch, max_entries=max_entries)
        self._record = self._sign(key, epoch)
        self.peeled = 0
        """Onions peeled (forwarded or deposited)."""
        self.refused = 0
        """Onions refused (bad, replayed, cache full)."""

    def _epoch(self, now: float) -> int:
        return max(0, int(now // self._period))

    def _sign(self, key: OnionPrivateKey, epoch: int) -> bytes:
        record = OnionKeyRecord.sign(
            self._node_key, key.public_key, epoch=epoch, period=self._period
        )
        return record.to_bytes()

    def _advance(self, now: float) -> None:
        epoch = self._epoch(now)
        if epoch > self._relay.epoch:
            key = self._generate()
            self._relay.rotate(key, epoch=epoch)
            self._record = self._sign(key, epoch)

    @property
    def epoch(self) -> int:
        """The current key's epoch."""
        return self._relay.epoch

    def record(self, now: float) -> bytes:
        """The current epoch's signed key record (rotating first if an epoch began)."""
        self._advance(now)
        return self._record

    def peel(self, packet: bytes, now: float) -> OnionHop | OnionDeposit | OnionFetch:
        """Peel one layer of ``packet``: where it goes next, or what to deposit.

        Raises:
            OnionRefusedError: ``bad_onion`` (wrong size, does not authenticate
                under the current or previous key, or a malformed hop payload),
                ``replayed`` (seen in this key epoch), ``busy`` (cache full).
        """
        self._advance(now)
        with self._refusing():
            step = self._relay.process(packet)
            result: OnionHop | OnionDeposit | OnionFetch
            if isinstance(step, Deliver) and _is_fetch(step.payload):
                result = _read_fetch(step.payload, read_body(step.body))
            elif isinstance(step, Deliver):
                mailbox, auth, fragment, reply = _read_deposit(step.payload)
                if reply:  # a reply's body is sealed for the block's owner: kept whole
                    result = OnionDeposit(mailbox, step.body, auth, None, step.reply_id)
                else:
                    result = OnionDeposit(mailbox, read_body(step.body), auth, fragment)
            else:
                result = OnionHop(_read_forward(step.payload), step.message)
        self.peeled += 1
        return result

    @contextlib.contextmanager
    def _refusing(self) -> Iterator[None]:
        """Count a refused layer and raise it as its :class:`OnionRefusedError` code."""
        try:
            yield
        except ReplayedPacketError:
            self.refused += 1
            raise OnionRefusedError("replayed") from None
        except ReplayCacheFullError:
            self.refused += 1
            raise OnionRefusedError("busy") from None
        except (SphinxError, DecodeError, InvalidRelayAddressError):
            self.refused += 1
            raise OnionRefusedError("bad_onion") from None

    def peel_reply(self, message: bytes, now: float) -> bytes:
        """Peel one layer of a fetch's reply on its way back (§46): what to answer.

        A relay that forwarded a fetch onion peels the answer it got back: its
        reply-block layer names no next hop (``{"back": 1}``), the answer goes
        to whoever handed it the onion. The result is the next relay's message,
        or, for the reply block's last hop (the sender's first relay),
        ``reply id (16) || body (4096)`` for the sender to open.

        Raises:
            OnionRefusedError: as :meth:`peel` (``bad_onion``, ``replayed``, ``busy``).
        """
        self._advance(now)
        with self._refusing():
            step = self._relay.process(message)
            if Fields(canonical_decode(step.payload, _LIMITS), "reply hop", frozenset({"back"})
                      ).get_int("back", hi=1) != 1:  # fmt: skip
                raise DecodeError("a reply hop says back")
        self.peeled += 1
        return step.reply_id + step.body if isinstance(step, Deliver) else step.message


def _is_fetch(payload: bytes) -> bool:
    value = canonical_decode(payload, _LIMITS)
    return isinstance(value, dict) and "fetch" in value


def _read_fetch(payload: bytes, body: bytes) -> OnionFetch:
    f = Fields(canonical_decode(payload, _LIMITS), "onion fetch", frozenset({"fetch", "what"}))
    if f.get_str("what", max_len=16) != "prekeys":
        raise DecodeError("an onion fetch asks for prekeys")
    if len(body) != REPLY_BLOCK_SIZE:
        raise DecodeError("an onion fetch carries one reply block")
    return OnionFetch(f.get_bytes("fetch", size=32), ReplyBlock.from_bytes(body))


def _read_forward(payload: bytes) -> RelayAddress:
    f = Fields(canonical_decode(payload, _LIMITS), "onion hop", frozenset({"to"}))
    address = RelayAddress.parse(f.get_str("to", max_len=300))
    if address.node is None:
        raise DecodeError("an onion's next hop is pinned to its node id")
    return address


def _read_deposit(
    payload: bytes,
) -> tuple[bytes, bytes | None, tuple[bytes, int, int] | None, bool]:
    keys = frozenset({"mb", "auth", "frag", "rp"})
    f = Fields(canonical_decode(payload, _LIMITS), "onion deposit", keys)
    auth = f.get_bytes("auth", max_size=1 + MAX_REDEMPTION) if f.has("auth") else None
    if auth is not None and not check_auth(auth):
        raise DecodeError("malformed put authorization in an onion")
    fragment = _read_fragment(f.raw("frag")) if f.has("frag") else None
    reply = f.has("rp")
    if reply and (f.raw("rp") is not True or fragment is not None):
        raise DecodeError("a reply deposit is marked rp: true and is never in pieces")
    return f.get_bytes("mb", size=32), auth, fragment, reply


def _read_fragment(value: object) -> tuple[bytes, int, int]:
    if not (isinstance(value, list) and len(value) == 3):
        raise DecodeError("frag must be [id, index, count]")
    key, index, count = value
    if not (isinstance(key, bytes) and len(key) == 16):
        raise DecodeError("a fragment id is 16 bytes")
    if not (type(count) is int and 2 <= count <= MAX_FRAGMENTS):
        raise DecodeError(f"a fragmented envelope has 2 to {MAX_FRAGMENTS} pieces")
    if not (type(index) is int and 0 <= index < count):
        raise DecodeError("fragment index out of range")
    return key, index, count


def deposit_hops(
    route: Sequence[tuple[RelayAddress, OnionKeyRecord]], deposit: dict[str, object]
) -> list[tuple[OnionPublicKey, bytes]]:
    """The hop payloads of ``route``: each names the next relay, the last says ``deposit``."""
    hops: list[tuple[OnionPublicKey, bytes]] = []
    for (_, record), (nxt, nxt_record) in itertools.pairwise(route):
        to = RelayAddress(nxt.host, nxt.port, nxt_record.node)
        hops.append((record.onion_key, canonical_encode({"to": str(to)})))
    hops.append((route[-1][1].onion_key, canonical_encode(deposit)))
    return hops


def build_onion_put(
    route: Sequence[tuple[RelayAddress, OnionKeyRecord]],
    mailbox: bytes,
    envelope: bytes,
    auth: bytes | None = None,
    *,
    session_key: OnionPrivateKey | None = None,
    fragment: tuple[bytes, int, int] | None = None,
) -> bytes:
    """The onion that deposits ``envelope`` into ``mailbox`` at the last relay of ``route``.

    ``route``: each hop's address and verified key record, the first hop
    first, the mailbox relay last. Returns the packet for the first hop.
    ``fragment``: ``(id, index, count)`` when ``envelope`` is one piece of a
    longer one (:func:`split_envelope`).

    Raises:
        OnionRouteError: an empty route, or an envelope over :data:`MAX_ONION_ENVELOPE`.
    """
    if not route or len(envelope) > MAX_ONION_ENVELOPE:
        raise OnionRouteError(f"an onion carries 1+ hops and at most {MAX_ONION_ENVELOPE} bytes")
    deposit: dict[str, object] = {"mb": mailbox}
    if auth is not None:
        deposit["auth"] = auth
    if fragment is not None:
        deposit["frag"] = list(fragment)
    hops = deposit_hops(route, deposit)
    key = session_key or OnionPrivateKey.generate()
    packet, _circuit = build_message(hops, envelope, session_key=key)
    return packet


def choose_onion_route(
    candidates: Sequence[RelayAddress],
    last: RelayAddress,
    rng: random.Random,
    *,
    hops: int = ONION_HOPS,
    group_of: Callable[[RelayAddress], str] | None = None,
) -> list[RelayAddress]:
    """``hops`` relays ending with ``last`` (the mailbox relay), the others from ``candidates``.

    The relays are distinct and, where the candidates allow, each in a group
    of its own (``group_of``: an operator or region label, e.g. from the
    directory's operator groups; default the host, so two relays on one
    machine are not both picked while others exist). Random among the choices.

    Raises:
        OnionRouteError: fewer than ``hops - 1`` candidates besides ``last``.
    """
    group = group_of or (lambda address: address.host)
    same = {last.hostport}
    pool = [c for c in dict.fromkeys(candidates) if c.hostport not in same]
    if len(pool) < hops - 1:
        raise OnionRouteError(f"onion routing needs {hops - 1} relays besides the mailbox relay")
    rng.shuffle(pool)
    chosen: list[RelayAddress] = []
    used = {group(last)}
    for relay in pool:  # distinct groups first
        if len(chosen) < hops - 1 and group(relay) not in used:
            chosen.append(relay)
            used.add(group(relay))
    for relay in pool:  # then any distinct relay, if the groups ran out
        if len(chosen) < hops - 1 and relay not in chosen:
            chosen.append(relay)
    return [*chosen, last]


def split_envelope(envelope: bytes, key: bytes) -> list[tuple[bytes, tuple[bytes, int, int]]]:
    """``envelope`` in pieces of at most :data:`MAX_ONION_ENVELOPE` bytes, each with its
    ``(key, index, count)``; a single piece (no fragment) when it fits one onion.

    Raises:
        OnionRouteError: it needs more than :data:`MAX_FRAGMENTS` pieces, or ``key``
            is not 16 bytes.
    """
    size = MAX_ONION_ENVELOPE
    count = max(1, -(-len(envelope) // size))
    if count > MAX_FRAGMENTS or len(key) != 16:
        raise OnionRouteError(f"an envelope goes in at most {MAX_FRAGMENTS} onions")
    return [(envelope[i * size : (i + 1) * size], (key, i, count)) for i in range(count)]
