"""Fixtures for everyone's tests: seeded keys and identities, link pairs, clocks.

* :func:`make_signing_key`, :func:`make_identity`, :func:`make_card`: keys and
  identities drawn from a ``random.Random`` (or fresh if none is given), so a
  test can make the same identity twice.
* :func:`link_pair`: two real :class:`dchat_network.LinkConnection` ends wired
  in memory, handshake done; :meth:`LinkPair.pump` moves bytes until both are
  quiet. The protocol-test pattern of h11's ``tests/helpers.py``.
* :func:`pump_link`: the same for any two :class:`dchat_network.LinkConnection`
  ends (mid-handshake too), leaving their events queued for the test to read.
  Both pumps can deliver the bytes in given chunk sizes, so a test can split
  the stream at every point a real network might.
* :class:`AutojumpClock`: trio's autojump ``MockClock`` together with a
  :class:`dchat_core.Clock` reading the same virtual time, so trio shells and
  the sans-IO objects they drive agree on the time.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio
import trio.testing

from dchat_core import NodeId
from dchat_crypto import PrivateKey, SigningKey
from dchat_identity import ContactCard, Identity
from dchat_network import DEFAULT_MAX_MESSAGE
from dchat_network.lowlevel import LinkConnection, LinkEvent, MessageReceived

from ._errors import SimulationError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

__all__ = (
    "AutojumpClock",
    "LinkPair",
    "autojump_clock",
    "link_pair",
    "make_card",
    "make_identity",
    "make_signing_key",
    "pump_link",
)


def _rng(rng: random.Random | None) -> random.Random:
    return rng if rng is not None else random.Random()


def make_signing_key(rng: random.Random | None = None) -> SigningKey:
    """An Ed25519 key from ``rng`` (a fresh random one without it)."""
    return SigningKey.from_bytes(rng.randbytes(32)) if rng else SigningKey.generate()


def make_identity(rng: random.Random | None = None) -> Identity:
    """An identity whose three keys come from ``rng`` (fresh random without it)."""
    if rng is None:
        return Identity.generate()
    return Identity(
        SigningKey.from_bytes(rng.randbytes(32)),
        PrivateKey.from_bytes(rng.randbytes(32)),
        SigningKey.from_bytes(rng.randbytes(32)),
    )


def make_card(
    identity: Identity,
    name: str = "test",
    *,
    relay: str = "127.0.0.1:7400",
    relay_node: NodeId | None = None,
) -> ContactCard:
    """A signed contact card for ``identity``."""
    return ContactCard.issue(identity, name=name, relay=relay, relay_node=relay_node)


@dataclass(slots=True)
class LinkPair:
    """Both ends of a link, connected in memory."""

    initiator: LinkConnection
    responder: LinkConnection
    initiator_key: SigningKey
    responder_key: SigningKey

    def pump(
        self, limit: int = 1000, *, chunks: Sequence[int] | None = None
    ) -> tuple[list[LinkEvent], list[LinkEvent]]:
        """Move bytes both ways until neither side has any; the events each side saw.

        Args:
            limit: Most rounds (one move each way) before giving up.
            chunks: Sizes (cycled) in which bytes are delivered; whole buffers
                if omitted.

        Raises:
            SimulationError: the two sides kept talking for ``limit`` rounds.
        """
        seen: tuple[list[LinkEvent], list[LinkEvent]] = ([], [])

        def drain() -> None:
            for conn, events in ((self.responder, seen[1]), (self.initiator, seen[0])):
                while (event := conn.next_event()) is not None:
                    events.append(event)

        _pump(self.initiator, self.responder, chunks, limit, drain)
        return seen

    def send(self, data: bytes, *, from_initiator: bool = True) -> bytes:
        """Send one message across and return what the other side received."""
        src = self.initiator if from_initiator else self.responder
        src.send_message(data)
        events = self.pump()[1 if from_initiator else 0]
        received = [e.data for e in events if isinstance(e, MessageReceived)]
        if len(received) != 1:
            raise SimulationError(f"expected one message, the peer saw {events!r}")
        return received[0]


def _pump(
    a: LinkConnection,
    b: LinkConnection,
    chunks: Sequence[int] | None,
    limit: int,
    after_round: Callable[[], object],
) -> None:
    """Move bytes a to b, then b to a, calling ``after_round``, until a round moves none."""
    sizes: Iterator[int] | None = itertools.cycle(chunks) if chunks else None
    if chunks and min(chunks) < 1:
        raise SimulationError("chunk sizes must be at least 1")
    for _ in range(limit):
        moved = False
        for src, dst in ((a, b), (b, a)):
            data = src.data_to_send()
            moved |= bool(data)
            pos = 0
            while pos < len(data):
                step = next(sizes) if sizes is not None else len(data)
                dst.receive_data(data[pos : pos + step])
                pos += step
        after_round()
        if not moved:
            return
    raise SimulationError("link pair did not go quiet")


def pump_link(
    a: LinkConnection,
    b: LinkConnection,
    *,
    chunks: Sequence[int] | None = None,
    limit: int = 1000,
) -> None:
    """Move bytes both ways between two link ends until neither has any to send.

    Events stay queued on each end (read them with ``next_event``), so a test
    can check exactly what each side saw, handshake included.

    Args:
        a: One end (its bytes move first in each round).
        b: The other end.
        chunks: Sizes (cycled) in which bytes are delivered; whole buffers if
            omitted.
        limit: Most rounds before giving up.

    Raises:
        SimulationError: the two ends kept talking for ``limit`` rounds, or a
            chunk size is below 1.
    """
    _pump(a, b, chunks, limit, lambda: None)


def link_pair(
    *,
    initiator_key: SigningKey | None = None,
    responder_key: SigningKey | None = None,
    pin_responder: bool = True,
    max_message: int | None = None,
    rng: random.Random | None = None,
) -> LinkPair:
    """Two link ends over memory with the handshake completed.

    Args:
        initiator_key: The dialer's node key (drawn from ``rng`` if omitted).
        responder_key: The listener's node key (drawn from ``rng`` if omitted).
        pin_responder: The dialer expects exactly the responder's node id.
        max_message: Passed to both ends if given.
        rng: Source of the keys (including the Noise static keys).
    """
    source = _rng(rng)
    a_key = initiator_key or SigningKey.from_bytes(source.randbytes(32))
    b_key = responder_key or SigningKey.from_bytes(source.randbytes(32))
    pinned = NodeId.derive(b_key.public_key.to_bytes()) if pin_responder else None
    size = DEFAULT_MAX_MESSAGE if max_message is None else max_message
    initiator = LinkConnection(
        initiator=True,
        node_key=a_key,
        expected_peer=pinned,
        max_message=size,
        static=PrivateKey.from_bytes(source.randbytes(32)),
    )
    responder = LinkConnection(
        initiator=False,
        node_key=b_key,
        max_message=size,
        static=PrivateKey.from_bytes(source.randbytes(32)),
    )
    pair = LinkPair(initiator, responder, a_key, b_key)
    pair.pump()
    return pair


class AutojumpClock:
    """trio's ``MockClock(autojump_threshold=0)`` plus a dchat :class:`~dchat_core.Clock` view.

    Virtual time jumps ahead whenever every task is blocked, so sleeps and
    timeouts cost no real time. Run trio on :attr:`trio_clock` (pytest-trio uses
    any ``trio.abc.Clock`` fixture the test requests) and hand this object to
    the code under test as its ``Clock``: ``now()`` is ``epoch`` plus trio's
    virtual time, ``monotonic()`` trio's virtual time. (trio only autojumps its
    own ``MockClock`` object, so this wraps one rather than being one.)

    Args:
        epoch: Wall-clock seconds at virtual time 0.
    """

    def __init__(self, epoch: float = 1_700_000_000.0) -> None:
        self.trio_clock = trio.testing.MockClock(autojump_threshold=0)
        self.epoch = epoch

    def jump(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds``."""
        self.trio_clock.jump(seconds)

    def now(self) -> float:
        """Virtual wall-clock time."""
        return self.epoch + self.trio_clock.current_time()

    def monotonic(self) -> float:
        """Virtual monotonic time."""
        return self.trio_clock.current_time()


def autojump_clock(epoch: float = 1_700_000_000.0) -> AutojumpClock:
    """A fresh :class:`AutojumpClock` (return it from a pytest fixture)."""
    return AutojumpClock(epoch)
