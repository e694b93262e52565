"""Prekey fetches through onions, answered through reply blocks (protocol §46, sans-IO)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import NodeId, RelayAddress
from dchat_crypto import SigningKey
from dchat_network.lowlevel import (
    FETCH_ANSWER_SIZE,
    MAX_FETCHED,
    ONION_PACKET_SIZE,
    OnionFetch,
    OnionFetchError,
    OnionHop,
    OnionKeyRecord,
    OnionKeys,
    OnionRefusedError,
    OnionRouteError,
    answer_fetch,
    build_onion_fetch,
    open_fetch_reply,
)
from dchat_privacy import ReplyBook

PERIOD = 3600
NOW = 1_000_000 * PERIOD + 10.0
MAILBOX = bytes(range(32))


class Relay:
    def __init__(self, port: int) -> None:
        self.node_key = SigningKey.generate()
        self.node = NodeId.derive(self.node_key.public_key.to_bytes())
        self.address = RelayAddress(f"10.0.0.{port % 250}", port, self.node)
        self.keys = OnionKeys(self.node_key, now=NOW, period=PERIOD)

    def record(self) -> OnionKeyRecord:
        return OnionKeyRecord.verify(self.keys.record(NOW), node=self.node, now=NOW)


@pytest.fixture
def relays() -> list[Relay]:
    return [Relay(port) for port in (7001, 7002, 7003)]


def _fetch(relays: list[Relay], book: ReplyBook) -> bytes:
    return build_onion_fetch([(r.address, r.record()) for r in relays], MAILBOX, book)


def _forward(relays: list[Relay], packet: bytes) -> tuple[OnionFetch, list[bytes]]:
    """Peel the fetch over the route; the packets each hop saw."""
    seen = [packet]
    for relay in relays[:-1]:
        hop = relay.keys.peel(seen[-1], NOW)
        assert isinstance(hop, OnionHop)
        seen.append(hop.packet)
    step = relays[-1].keys.peel(seen[-1], NOW)
    assert isinstance(step, OnionFetch)
    return step, seen


def _back(relays: list[Relay], answer: bytes) -> list[bytes]:
    """The answer as each forwarding relay peels and hands it back, last to first."""
    answers = [answer]
    for relay in reversed(relays[:-1]):
        answers.append(relay.keys.peel_reply(answers[-1], NOW))
    return answers


def test_a_fetch_reaches_the_mailbox_relay_and_its_answer_opens_once(relays: list[Relay]) -> None:
    book = ReplyBook()
    packet = _fetch(relays, book)
    assert len(packet) == ONION_PACKET_SIZE
    step, seen = _forward(relays, packet)
    assert step.mailbox == MAILBOX
    bundle = b"prekey bundle" * 30
    answers = _back(relays, answer_fetch(step.block, bundle))
    assert [len(a) for a in answers] == [ONION_PACKET_SIZE, ONION_PACKET_SIZE, FETCH_ANSWER_SIZE]
    # No two relays see the same bytes: each layer changes them on the way back.
    assert len({a[-4096:] for a in answers}) == 3
    assert not {a[-4096:] for a in answers} & {p[-4096:] for p in seen}
    assert open_fetch_reply(book, answers[-1]) == bundle
    with pytest.raises(OnionFetchError) as replay:  # the block is used up
        open_fetch_reply(book, answers[-1])
    assert replay.value.code == "replayed"


def test_the_answer_size_does_not_depend_on_the_bundle(relays: list[Relay]) -> None:
    sizes = set()
    for bundle in (None, b"", b"x" * MAX_FETCHED, b"x" * (MAX_FETCHED + 1)):
        book = ReplyBook()
        step, _ = _forward(relays, _fetch(relays, book))
        answers = _back(relays, answer_fetch(step.block, bundle))
        sizes.add(tuple(len(a) for a in answers))
        if bundle is None or len(bundle) > MAX_FETCHED:
            with pytest.raises(OnionFetchError) as why:
                open_fetch_reply(book, answers[-1])
            assert why.value.code == ("none" if bundle is None else "too_big")
    assert len(sizes) == 1


def test_replayed_fetches_and_replies_are_refused(relays: list[Relay]) -> None:
    book = ReplyBook()
    packet = _fetch(relays, book)
    step, _ = _forward(relays, packet)
    with pytest.raises(OnionRefusedError) as again:
        relays[0].keys.peel(packet, NOW)
    assert again.value.code == "replayed"
    answer = answer_fetch(step.block, b"bundle")
    _back(relays, answer)
    with pytest.raises(OnionRefusedError) as reply_again:  # the block's header, used twice
        relays[1].keys.peel_reply(answer_fetch(step.block, b"other"), NOW)
    assert reply_again.value.code == "replayed"


def test_a_reply_is_not_peeled_as_an_onion_nor_an_onion_as_a_reply(relays: list[Relay]) -> None:
    book = ReplyBook()
    step, _ = _forward(relays, _fetch(relays, book))
    with pytest.raises(OnionRefusedError) as as_onion:  # a back layer names no next hop
        relays[1].keys.peel(answer_fetch(step.block, b"b"), NOW)
    assert as_onion.value.code == "bad_onion"
    with pytest.raises(OnionRefusedError) as as_reply:
        relays[0].keys.peel_reply(_fetch(relays, ReplyBook()), NOW)
    assert as_reply.value.code == "bad_onion"


@settings(max_examples=40, deadline=None)
@given(st.integers(0, FETCH_ANSWER_SIZE - 1), st.integers(1, 255), st.booleans())
def test_a_tampered_or_cut_answer_is_a_typed_refusal(at: int, flip: int, cut: bool) -> None:
    relays = [Relay(port) for port in (7001, 7002, 7003)]
    book = ReplyBook()
    step, _ = _forward(relays, _fetch(relays, book))
    answer = _back(relays, answer_fetch(step.block, b"bundle"))[-1]
    bad = answer[:at] if cut else answer[:at] + bytes([answer[at] ^ flip]) + answer[at + 1 :]
    with pytest.raises(OnionFetchError) as why:
        open_fetch_reply(book, bad)
    assert why.value.code == "bad_reply"
    assert open_fetch_reply(book, answer) == b"bundle"  # a forgery does not burn the block


def test_bad_requests_are_refused(relays: list[Relay]) -> None:
    with pytest.raises(OnionRouteError):
        build_onion_fetch([(relays[0].address, relays[0].record())], MAILBOX, ReplyBook())
    route = [(r.address, r.record()) for r in relays]
    with pytest.raises(OnionRouteError):
        build_onion_fetch(route, b"short", ReplyBook())
