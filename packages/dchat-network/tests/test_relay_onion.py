"""Onion deposits: key records, peeling over three relays, refusals, routes (sans-IO)."""

from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import NodeId, RelayAddress, canonical_encode
from dchat_crypto import SigningKey
from dchat_network import RelayProtocolError
from dchat_network.lowlevel import (
    MAX_ONION_ENVELOPE,
    ONION_PACKET_SIZE,
    OnionDeposit,
    OnionHop,
    OnionKeyError,
    OnionKeyRecord,
    OnionKeys,
    OnionRefusedError,
    OnionRouteError,
    Reassembly,
    auth_token,
    build_onion_put,
    choose_onion_route,
    decode_relay_message,
    split_envelope,
)

PERIOD = 3600
NOW = 1_000_000 * PERIOD + 10.0


class Relay:
    """One relay's node key, address and onion keys."""

    def __init__(self, port: int) -> None:
        self.node_key = SigningKey.generate()
        self.node = NodeId.derive(self.node_key.public_key.to_bytes())
        self.address = RelayAddress(f"10.0.0.{port % 250}", port, self.node)
        self.keys = OnionKeys(self.node_key, now=NOW, period=PERIOD)

    def record(self, now: float = NOW) -> OnionKeyRecord:
        return OnionKeyRecord.verify(self.keys.record(now), node=self.node, now=now)


@pytest.fixture
def relays() -> list[Relay]:
    return [Relay(port) for port in (7001, 7002, 7003)]


def _route(relays: list[Relay], now: float = NOW) -> list[tuple[RelayAddress, OnionKeyRecord]]:
    return [(r.address, r.record(now)) for r in relays]


def test_an_onion_is_peeled_hop_by_hop_and_deposits_at_the_last(relays: list[Relay]) -> None:
    mailbox, envelope, auth = bytes(range(32)), b"sealed envelope" * 20, auth_token(bytes(16))
    packet = build_onion_put(_route(relays), mailbox, envelope, auth)
    seen = [packet]
    for relay, nxt in zip(relays, [*relays[1:], None], strict=True):
        assert len(packet) == ONION_PACKET_SIZE  # the same size at every hop
        step = relay.keys.peel(packet, NOW)
        if nxt is None:
            assert step == OnionDeposit(mailbox, envelope, auth)
        else:
            assert isinstance(step, OnionHop)
            assert step.to == nxt.address  # pinned to the next relay's node id
            packet = step.packet
            seen.append(packet)
    assert len(set(seen)) == 3  # no two hops see the same bytes
    assert not any(envelope in p or mailbox in p for p in seen)


def test_a_replayed_onion_is_refused_and_the_relay_goes_on(relays: list[Relay]) -> None:
    first = relays[0]
    packet = build_onion_put(_route(relays), bytes(32), b"x")
    first.keys.peel(packet, NOW)
    with pytest.raises(OnionRefusedError) as refused:
        first.keys.peel(packet, NOW + 1)
    assert refused.value.code == "replayed"
    other = build_onion_put(_route(relays), bytes(32), b"y")
    assert isinstance(first.keys.peel(other, NOW + 2), OnionHop)


def test_the_previous_epochs_key_still_peels_then_not(relays: list[Relay]) -> None:
    old = build_onion_put(_route(relays), bytes(32), b"old")
    older = build_onion_put(_route(relays), bytes(32), b"older")
    first = relays[0]
    epoch = first.record().epoch
    assert first.record(NOW + PERIOD).epoch == epoch + 1  # rotated
    assert isinstance(first.keys.peel(old, NOW + PERIOD), OnionHop)
    with pytest.raises(OnionRefusedError) as refused:
        first.keys.peel(older, NOW + 2 * PERIOD)
    assert refused.value.code == "bad_onion"


def test_key_records_verify_only_for_their_node_and_epoch(relays: list[Relay]) -> None:
    a, b = relays[0], relays[1]
    data = a.keys.record(NOW)
    record = OnionKeyRecord.verify(data, node=a.node, now=NOW)
    assert record.node == a.node
    assert record.period == PERIOD
    with pytest.raises(OnionKeyError):
        OnionKeyRecord.verify(data, node=b.node, now=NOW)
    with pytest.raises(OnionKeyError):
        OnionKeyRecord.verify(data, node=None, now=NOW, link_key=b"\x00" * 32)
    with pytest.raises(OnionKeyError):
        OnionKeyRecord.verify(data, node=a.node, now=NOW + 3 * PERIOD)
    tampered = bytearray(data)
    tampered[-70] ^= 1
    with pytest.raises(OnionKeyError):
        OnionKeyRecord.verify(bytes(tampered), node=None, now=NOW)
    forged = OnionKeyRecord.sign(b.node_key, record.onion_key, epoch=record.epoch, period=PERIOD)
    with pytest.raises(OnionKeyError):  # b signs a's key: not a's record
        OnionKeyRecord.verify(forged.to_bytes(), node=a.node, now=NOW)


def test_a_hop_payload_without_a_pinned_next_relay_is_a_bad_onion(relays: list[Relay]) -> None:
    from dchat_privacy import OnionPrivateKey, build_message

    r = relays[0].record()
    for payload in (
        canonical_encode({"to": "10.0.0.1:7"}),  # not pinned
        canonical_encode({"to": 7}),
        canonical_encode({"mb": b"short"}),
        b"\xff\x00",
    ):
        key = OnionPrivateKey.generate()
        packet, _ = build_message([(r.onion_key, payload)], b"e", session_key=key)
        with pytest.raises(OnionRefusedError) as refused:
            relays[0].keys.peel(packet, NOW)
        assert refused.value.code == "bad_onion"


def test_an_envelope_over_one_body_is_refused_before_sending(relays: list[Relay]) -> None:
    build_onion_put(_route(relays), bytes(32), bytes(MAX_ONION_ENVELOPE))
    with pytest.raises(OnionRouteError):
        build_onion_put(_route(relays), bytes(32), bytes(MAX_ONION_ENVELOPE + 1))


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=ONION_PACKET_SIZE + 8), st.integers(0, ONION_PACKET_SIZE))
def test_hostile_packets_are_typed_refusals(data: bytes, cut: int) -> None:
    keys = OnionKeys(SigningKey.generate(), now=NOW, period=PERIOD)
    for packet in (data, (data * (ONION_PACKET_SIZE // max(1, len(data)) + 1))[:ONION_PACKET_SIZE]):
        with pytest.raises(OnionRefusedError):
            keys.peel(packet, NOW)
    assert keys.refused >= 1
    assert keys.peeled == 0


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(["okey", "okey_is", "onion", "onion_done"]),
    st.dictionaries(
        st.sampled_from(["rid", "pkt", "rec", "res", "x"]),
        st.one_of(st.integers(-5, 2**63), st.binary(max_size=6000), st.text(max_size=20)),
    ),
)
def test_hostile_onion_messages_decode_or_raise_a_typed_error(kind: str, fields: dict) -> None:
    with contextlib.suppress(RelayProtocolError):
        decode_relay_message(canonical_encode({"t": kind, **fields}))


def test_routes_take_distinct_groups_and_end_at_the_mailbox_relay() -> None:
    def at(host: str, port: int) -> RelayAddress:
        return RelayAddress(host, port, NodeId.derive(SigningKey.generate().public_key.to_bytes()))

    last = at("10.0.0.9", 1)
    same_host = [at("10.0.0.1", p) for p in range(2, 6)]
    others = [at("10.0.0.2", 7), at("10.0.0.3", 8)]
    for seed in range(20):
        route = choose_onion_route([*same_host, *others], last, random.Random(seed))
        assert route[-1] == last
        assert len(route) == 3
        assert len({r.host for r in route}) == 3  # distinct hosts while there are
    route = choose_onion_route(same_host, last, random.Random(1))  # one host: still distinct
    assert len(set(route)) == 3
    with pytest.raises(OnionRouteError):
        choose_onion_route([others[0], last], last, random.Random(1))


def test_a_long_envelope_goes_in_pieces_put_together_at_the_mailbox_relay(
    relays: list[Relay],
) -> None:
    envelope = bytes(range(256)) * 40  # 10,240 bytes: three onions
    pieces = split_envelope(envelope, b"k" * 16)
    assert [f for _, f in pieces] == [(b"k" * 16, i, 3) for i in range(3)]
    last = relays[-1]
    book = Reassembly()
    deposits = []
    for piece, fragment in reversed(pieces):  # any order
        packet = build_onion_put(_route(relays)[-1:], bytes(32), piece, fragment=fragment)
        step = last.keys.peel(packet, NOW)
        assert isinstance(step, OnionDeposit)
        assert step.fragment == fragment
        if fragment[1]:  # a copy of a piece adds nothing
            assert book.add(step, NOW) is None
        deposits.append(book.add(step, NOW))
    assert deposits[:2] == [None, None]
    assert deposits[2] == OnionDeposit(bytes(32), envelope, None)
    assert len(book) == 0
    with pytest.raises(OnionRouteError):
        split_envelope(bytes(MAX_ONION_ENVELOPE * 24 + 1), b"k" * 16)


def test_pieces_that_disagree_expire_or_overflow_are_refused() -> None:
    book = Reassembly(max_bytes=100)
    first = OnionDeposit(bytes(32), b"a" * 60, None, (b"i" * 16, 0, 2))
    assert book.add(first, NOW) is None
    for other in (
        OnionDeposit(b"\x01" * 32, b"b", None, (b"i" * 16, 1, 2)),  # another mailbox
        OnionDeposit(bytes(32), b"b", None, (b"i" * 16, 1, 3)),  # another count
    ):
        with pytest.raises(OnionRefusedError) as refused:
            book.add(other, NOW)
        assert refused.value.code == "bad_onion"
    with pytest.raises(OnionRefusedError) as full:
        book.add(OnionDeposit(bytes(32), b"c" * 60, None, (b"j" * 16, 0, 2)), NOW)
    assert full.value.code == "busy"
    late = OnionDeposit(bytes(32), b"d" * 60, None, (b"j" * 16, 0, 2))
    assert book.add(late, NOW + 121) is None  # the first one expired: room again
    assert len(book) == 1


def test_a_reply_blocks_route_peels_to_a_whole_body_deposit(relays: list[Relay]) -> None:
    from dchat_network.lowlevel import build_reply_gift
    from dchat_privacy import write_reply
    from dchat_privacy.lowlevel import BODY_SIZE

    gift, keys = build_reply_gift(_route(relays), bytes(range(32)))
    assert gift.first_relay == relays[0].address
    assert gift.until == (NOW // PERIOD + 1) * PERIOD
    message = write_reply(gift.block, b"answer")
    for relay in relays:
        step = relay.keys.peel(message, NOW)
        if isinstance(step, OnionHop):
            message = step.packet
    assert isinstance(step, OnionDeposit)
    assert step.reply_id == keys.reply_id
    assert step.mailbox == bytes(range(32))
    assert len(step.envelope) == BODY_SIZE
    assert step.fragment is None
    with pytest.raises(OnionRouteError):
        build_reply_gift(_route(relays)[:1], bytes(32))


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.booleans(), st.integers(-9, 9), st.binary(max_size=4)), st.booleans())
def test_malformed_reply_deposits_are_bad_onions(rp: object, frag: bool) -> None:
    from dchat_privacy import OnionPrivateKey, build_message

    keys = OnionKeys(SigningKey.generate(), now=NOW, period=PERIOD)
    record = OnionKeyRecord.verify(keys.record(NOW), node=None, now=NOW)
    deposit: dict[str, object] = {"mb": bytes(32), "rp": rp}
    if frag:
        deposit["frag"] = [bytes(16), 0, 2]
    payload = canonical_encode(deposit)
    packet, _ = build_message(
        [(record.onion_key, payload)], b"e", session_key=OnionPrivateKey.generate()
    )
    if rp is True and not frag:
        step = keys.peel(packet, NOW)
        assert isinstance(step, OnionDeposit)
        assert step.reply_id is not None
        return
    with pytest.raises(OnionRefusedError) as refused:
        keys.peel(packet, NOW)
    assert refused.value.code == "bad_onion"
