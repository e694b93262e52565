"""The sans-IO link protocol: two LinkConnections talking over an in-memory pipe."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dchat_core import NodeId, canonical_encode
from dchat_crypto import HandshakeState, PrivateKey, SigningKey
from dchat_crypto.hazmat import NoiseTransport
from dchat_network import (
    DEFAULT_MAX_MESSAGE,
    HandshakeFailedError,
    LinkProtocolError,
    RelayBusyError,
)
from dchat_network.lowlevel import (
    FrameTooLargeError,
    HandshakeComplete,
    LinkClosed,
    LinkConnection,
    LinkState,
    LinkStateError,
    MessageReceived,
    refusal_frame,
)
from dchat_testing import pump_link

PROTOCOL = "Noise_XX_25519_ChaChaPoly_BLAKE2s"
PROLOGUE = b"dchat-link-v1"
BIND_DOMAIN = b"dchat-link-static-v1\x00"
CHUNK = NoiseTransport.MAX_PLAINTEXT  # 65519
SIZES = (0, 1, CHUNK, CHUNK + 1, 200_000, DEFAULT_MAX_MESSAGE)

# Keys are slow-ish to make; the tests only need a few distinct identities.
ALICE, BOB, MALLORY = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()


def node_id(key: SigningKey) -> NodeId:
    return NodeId.derive(key.public_key.to_bytes())


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed * 1_000_003 + size).randbytes(size)


def events(conn: LinkConnection) -> list[object]:
    out: list[object] = []
    while (event := conn.next_event()) is not None:
        out.append(event)
    return out


def frame(message: bytes) -> bytes:
    return len(message).to_bytes(2, "big") + message


def open_pair(
    *, client_max: int = DEFAULT_MAX_MESSAGE, server_max: int = DEFAULT_MAX_MESSAGE
) -> tuple[LinkConnection, LinkConnection]:
    client = LinkConnection(initiator=True, node_key=ALICE, max_message=client_max)
    server = LinkConnection(initiator=False, node_key=BOB, max_message=server_max)
    pump_link(client, server)
    assert isinstance(client.next_event(), HandshakeComplete)
    assert isinstance(server.next_event(), HandshakeComplete)
    return client, server


def assert_dead(conn: LinkConnection) -> None:
    """After a protocol error the object refuses every further use."""
    assert conn.state is LinkState.ERROR
    with pytest.raises(LinkStateError):
        conn.receive_data(b"\x00")
    with pytest.raises(LinkStateError):
        conn.receive_data(b"")
    with pytest.raises(LinkStateError):
        conn.send_message(b"x")
    conn.close()
    assert conn.state is LinkState.ERROR


# -- handshake -----------------------------------------------------------------


def test_handshake_proves_each_side_to_the_other() -> None:
    client = LinkConnection(initiator=True, node_key=ALICE, expected_peer=node_id(BOB))
    server = LinkConnection(initiator=False, node_key=BOB, expected_peer=node_id(ALICE))
    assert client.state is server.state is LinkState.HANDSHAKE
    pump_link(client, server)
    assert events(client) == [HandshakeComplete(BOB.public_key, node_id(BOB))]
    assert events(server) == [HandshakeComplete(ALICE.public_key, node_id(ALICE))]
    assert client.state is server.state is LinkState.OPEN


def test_handshake_messages_are_u16_framed_and_message_1_is_bare() -> None:
    client = LinkConnection(initiator=True, node_key=ALICE)
    first = client.data_to_send()
    # Message 1 of XX is only the ephemeral key: 32 bytes, no payload.
    assert first[:2] == (32).to_bytes(2, "big")
    assert len(first) == 34


def test_handshake_works_delivered_one_byte_at_a_time() -> None:
    client = LinkConnection(initiator=True, node_key=ALICE)
    server = LinkConnection(initiator=False, node_key=BOB)
    pump_link(client, server, chunks=[1])
    assert [type(e) for e in events(client)] == [HandshakeComplete]
    assert [type(e) for e in events(server)] == [HandshakeComplete]


def test_static_key_can_be_long_lived() -> None:
    static = PrivateKey.generate()
    for _ in range(2):
        client = LinkConnection(initiator=True, node_key=ALICE, static=static)
        server = LinkConnection(initiator=False, node_key=BOB)
        pump_link(client, server)
        assert events(server) == [HandshakeComplete(ALICE.public_key, node_id(ALICE))]


# -- messages --------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_messages_round_trip_both_ways(size: int) -> None:
    client, server = open_pair()
    client.send_message(payload(size, 1))
    server.send_message(payload(size, 2))
    pump_link(client, server)
    assert events(server) == [MessageReceived(payload(size, 1))]
    assert events(client) == [MessageReceived(payload(size, 2))]


@pytest.mark.parametrize("size", SIZES)
def test_messages_round_trip_one_byte_at_a_time(size: int) -> None:
    client, server = open_pair()
    client.send_message(payload(size, 1))
    server.send_message(payload(size, 2))
    pump_link(client, server, chunks=[1])
    assert events(server) == [MessageReceived(payload(size, 1))]
    assert events(client) == [MessageReceived(payload(size, 2))]


def test_message_of_exactly_max_message_passes_and_one_more_does_not() -> None:
    client, server = open_pair(client_max=1000, server_max=1000)
    client.send_message(payload(1000))
    pump_link(client, server)
    assert events(server) == [MessageReceived(payload(1000))]
    with pytest.raises(FrameTooLargeError):
        client.send_message(payload(1001))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.sampled_from(SIZES) | st.integers(0, 3000), min_size=1, max_size=4),
    chunks=st.lists(st.integers(1, 70_000), min_size=1, max_size=8),
)
def test_messages_round_trip_in_random_chunkings(sizes: list[int], chunks: list[int]) -> None:
    client, server = open_pair()
    for i, size in enumerate(sizes):
        client.send_message(payload(size, i))
        server.send_message(payload(size, i + 100))
    pump_link(client, server, chunks=chunks)
    assert events(server) == [MessageReceived(payload(s, i)) for i, s in enumerate(sizes)]
    assert events(client) == [MessageReceived(payload(s, i + 100)) for i, s in enumerate(sizes)]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=20), st.data())
def test_handshake_and_messages_survive_any_split_points(
    messages: list[bytes], data: st.DataObject
) -> None:
    client = LinkConnection(initiator=True, node_key=ALICE)
    server = LinkConnection(initiator=False, node_key=BOB)
    pump_link(client, server, chunks=data.draw(st.lists(st.integers(1, 200), min_size=1)))
    assert [type(e) for e in events(server)] == [HandshakeComplete]
    for m in messages:
        client.send_message(m)
    stream = client.data_to_send()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    for lo, hi in itertools.pairwise([0, *cuts, len(stream)]):
        if hi > lo:
            server.receive_data(stream[lo:hi])
    assert events(server) == [MessageReceived(m) for m in messages]


def test_peer_close_between_messages_is_a_clean_close() -> None:
    client, server = open_pair()
    client.send_message(b"last words")
    pump_link(client, server)
    server.receive_data(b"")
    assert events(server) == [MessageReceived(b"last words"), LinkClosed()]
    assert server.state is LinkState.CLOSED
    with pytest.raises(LinkStateError):
        server.send_message(b"too late")


def test_local_close_stops_sending() -> None:
    client, _server = open_pair()
    client.close()
    assert client.state is LinkState.CLOSED
    with pytest.raises(LinkStateError):
        client.send_message(b"x")


# -- caller mistakes -------------------------------------------------------------------


def test_send_before_open_is_a_state_error() -> None:
    client = LinkConnection(initiator=True, node_key=ALICE)
    first = client.data_to_send()
    with pytest.raises(LinkStateError):
        client.send_message(b"early")
    assert client.data_to_send() == b""
    assert client.state is LinkState.HANDSHAKE
    # The failed call did not disturb the handshake.
    server = LinkConnection(initiator=False, node_key=BOB)
    server.receive_data(first)
    pump_link(client, server)
    assert [type(e) for e in events(client)] == [HandshakeComplete]


def test_oversize_local_send_queues_nothing_and_keeps_the_link() -> None:
    client, server = open_pair(client_max=5000, server_max=5000)
    with pytest.raises(FrameTooLargeError):
        client.send_message(payload(5001))
    assert client.data_to_send() == b""
    assert client.state is LinkState.OPEN
    client.send_message(b"still fine")
    pump_link(client, server)
    assert events(server) == [MessageReceived(b"still fine")]


# -- misbehaving peers --------------------------------------------------------------------


def handshake_at(step: int) -> tuple[LinkConnection, bytes]:
    """The side due to read handshake message ``step + 1``, and that message's genuine bytes."""
    client = LinkConnection(initiator=True, node_key=ALICE)
    server = LinkConnection(initiator=False, node_key=BOB)
    msg1 = client.data_to_send()
    if step == 0:
        return server, msg1
    server.receive_data(msg1)
    msg2 = server.data_to_send()
    if step == 1:
        return client, msg2
    client.receive_data(msg2)
    return server, client.data_to_send()


def feed(conn: LinkConnection, *chunks: bytes) -> None:
    for chunk in chunks:
        conn.receive_data(chunk)


def feed_until_error(conn: LinkConnection, data: bytes) -> LinkProtocolError:
    """Feed ``data`` then EOF; the link must fail on the way."""
    with pytest.raises(LinkProtocolError) as info:
        feed(conn, data, b"")
    return info.value


@settings(max_examples=150, deadline=None)
@given(step=st.integers(0, 2), garbage=st.binary(max_size=200), framed=st.booleans())
@example(step=0, garbage=bytes(32), framed=True)  # low-order ephemeral key
@example(step=1, garbage=bytes(96), framed=True)
@example(step=2, garbage=bytes(64), framed=True)
def test_garbage_at_any_handshake_step_fails_the_handshake(
    step: int, garbage: bytes, framed: bool
) -> None:
    conn, _ = handshake_at(step)
    error = feed_until_error(conn, frame(garbage) if framed else garbage)
    assert isinstance(error, HandshakeFailedError)
    assert not any(isinstance(e, HandshakeComplete) for e in events(conn))
    assert_dead(conn)


@pytest.mark.parametrize("step", [0, 1, 2])
@pytest.mark.parametrize("keep", [0, 1, 2, 20])
def test_truncated_handshake_then_eof_fails(step: int, keep: int) -> None:
    victim, wire = handshake_at(step)
    if keep:
        victim.receive_data(wire[:keep])
    with pytest.raises(HandshakeFailedError):
        victim.receive_data(b"")
    assert_dead(victim)


@pytest.mark.parametrize("keep", [1, 2, 3, 50])
def test_truncated_message_then_eof_fails(keep: int) -> None:
    client, server = open_pair()
    client.send_message(payload(100))
    server.receive_data(client.data_to_send()[:keep])
    with pytest.raises(LinkProtocolError):
        server.receive_data(b"")
    assert events(server) == []
    assert_dead(server)


def test_eof_between_two_noise_messages_of_one_message_fails() -> None:
    client, server = open_pair()
    client.send_message(payload(CHUNK + 10))
    wire = client.data_to_send()
    first = 2 + int.from_bytes(wire[:2], "big")
    server.receive_data(wire[:first])  # a whole Noise message, half an app message
    with pytest.raises(LinkProtocolError):
        server.receive_data(b"")
    assert_dead(server)


class RawPeer:
    """A hand-driven peer speaking the documented wire format, for forging messages."""

    def __init__(self, *, initiator: bool) -> None:
        self.static = PrivateKey.generate()
        self.hs = HandshakeState(
            PROTOCOL, initiator=initiator, prologue=PROLOGUE, static=self.static
        )

    def proof(self, named: SigningKey, signer: SigningKey) -> bytes:
        sig = signer.sign(BIND_DOMAIN + self.static.public_key.to_bytes())
        return canonical_encode({"v": 1, "key": named.public_key.to_bytes(), "sig": sig})

    def write(self, body: bytes) -> bytes:
        return frame(self.hs.write_message(body))

    def read(self, wire: bytes) -> bytes:
        size = int.from_bytes(wire[:2], "big")
        assert len(wire) == 2 + size
        return self.hs.read_message(wire[2:])


def test_raw_peer_speaks_the_documented_format() -> None:
    """Sanity check for the forging helper: a correct proof is accepted."""
    raw = RawPeer(initiator=False)
    client = LinkConnection(initiator=True, node_key=ALICE, expected_peer=node_id(BOB))
    assert raw.read(client.data_to_send()) == b""
    client.receive_data(raw.write(raw.proof(BOB, BOB)))
    assert events(client) == [HandshakeComplete(BOB.public_key, node_id(BOB))]
    raw.read(client.data_to_send())
    assert raw.hs.is_complete


def test_payload_in_message_1_is_rejected() -> None:
    raw = RawPeer(initiator=True)
    server = LinkConnection(initiator=False, node_key=BOB)
    with pytest.raises(HandshakeFailedError):
        server.receive_data(raw.write(b"hello"))
    assert server.data_to_send() == b""
    assert_dead(server)


@pytest.mark.parametrize("side", ["responder", "initiator"])
def test_proof_signed_by_another_key_than_it_names_is_rejected(side: str) -> None:
    raw = RawPeer(initiator=side == "initiator")
    victim = LinkConnection(initiator=side == "responder", node_key=ALICE)
    if side == "initiator":
        victim.receive_data(raw.write(b""))
    raw.read(victim.data_to_send())
    forged_wire = raw.write(raw.proof(named=BOB, signer=MALLORY))
    with pytest.raises(HandshakeFailedError):
        victim.receive_data(forged_wire)
    assert events(victim) == []
    assert_dead(victim)


def test_proof_over_another_static_key_is_rejected() -> None:
    """A genuine signature by BOB, but over a static key the peer does not hold."""
    raw = RawPeer(initiator=False)
    victim = LinkConnection(initiator=True, node_key=ALICE)
    raw.read(victim.data_to_send())
    other_static = PrivateKey.generate().public_key.to_bytes()
    sig = BOB.sign(BIND_DOMAIN + other_static)
    proof = canonical_encode({"v": 1, "key": BOB.public_key.to_bytes(), "sig": sig})
    with pytest.raises(HandshakeFailedError):
        victim.receive_data(raw.write(proof))
    assert_dead(victim)


@pytest.mark.parametrize(
    "proof",
    [
        b"",
        b"\xa0",
        canonical_encode({"v": 2, "key": bytes(32), "sig": bytes(64)}),
        canonical_encode({"v": 1, "key": bytes(31), "sig": bytes(64)}),
        canonical_encode({"v": 1, "key": bytes(32), "sig": bytes(64), "x": 0}),
        canonical_encode([1, 2, 3]),
    ],
)
def test_malformed_proofs_are_rejected(proof: bytes) -> None:
    raw = RawPeer(initiator=False)
    victim = LinkConnection(initiator=True, node_key=ALICE)
    raw.read(victim.data_to_send())
    with pytest.raises(HandshakeFailedError):
        victim.receive_data(raw.write(proof))
    assert_dead(victim)


@pytest.mark.parametrize("step", [1, 2])
def test_bit_flip_in_a_handshake_message_is_rejected(step: int) -> None:
    client = LinkConnection(initiator=True, node_key=ALICE)
    server = LinkConnection(initiator=False, node_key=BOB)
    server.receive_data(client.data_to_send())
    msg2 = server.data_to_send()
    if step == 1:
        victim, wire = client, bytearray(msg2)
    else:
        client.receive_data(msg2)
        victim, wire = server, bytearray(client.data_to_send())
    wire[-20] ^= 0x01  # inside the encrypted identity proof
    with pytest.raises(HandshakeFailedError):
        victim.receive_data(bytes(wire))
    assert_dead(victim)


@pytest.mark.parametrize("dialer_checks", [True, False])
def test_expected_peer_mismatch_fails(dialer_checks: bool) -> None:
    wrong = node_id(MALLORY)
    client = LinkConnection(
        initiator=True, node_key=ALICE, expected_peer=wrong if dialer_checks else None
    )
    server = LinkConnection(
        initiator=False, node_key=BOB, expected_peer=None if dialer_checks else wrong
    )
    victim = client if dialer_checks else server
    with pytest.raises(HandshakeFailedError):
        pump_link(client, server)
    assert not any(isinstance(e, HandshakeComplete) for e in events(victim))
    assert_dead(victim)
    if dialer_checks:  # the dialer never sent its own proof to the wrong node
        assert client.data_to_send() == b""


def test_peer_announcing_a_message_above_max_message_fails() -> None:
    client, server = open_pair(client_max=10_000, server_max=1000)
    client.send_message(payload(1001))
    with pytest.raises(FrameTooLargeError):
        pump_link(client, server)
    assert events(server) == []
    assert_dead(server)


def test_oversize_announcement_fails_before_the_body_arrives() -> None:
    client, server = open_pair(client_max=DEFAULT_MAX_MESSAGE, server_max=1000)
    client.send_message(payload(500_000))
    wire = client.data_to_send()
    with pytest.raises(FrameTooLargeError):
        # The first Noise frame carries the header; the other 400 KiB never arrive.
        server.receive_data(wire[: 2 + NoiseTransport.MAX_MESSAGE])
    assert_dead(server)


@pytest.mark.parametrize("where", [2, 10, -1])
def test_tampered_transport_message_fails(where: int) -> None:
    client, server = open_pair()
    client.send_message(b"authentic")
    wire = bytearray(client.data_to_send())
    wire[where] ^= 0x80
    with pytest.raises(LinkProtocolError):
        server.receive_data(bytes(wire))
    assert events(server) == []
    assert_dead(server)


def test_replayed_transport_message_fails() -> None:
    client, server = open_pair()
    client.send_message(b"once")
    wire = client.data_to_send()
    server.receive_data(wire)
    assert events(server) == [MessageReceived(b"once")]
    with pytest.raises(LinkProtocolError):
        server.receive_data(wire)
    assert_dead(server)


@settings(max_examples=100, deadline=None)
@given(garbage=st.binary(min_size=1, max_size=300), framed=st.booleans())
def test_garbage_after_the_handshake_fails_the_link(garbage: bytes, framed: bool) -> None:
    _client, server = open_pair()
    feed_until_error(server, frame(garbage) if framed else garbage)
    assert not any(isinstance(e, MessageReceived) for e in events(server))
    assert_dead(server)


# -- refusing a connection before the handshake ------------------------------------------


def test_a_refusal_frame_raises_busy_at_the_dialer_with_its_reason_and_wait() -> None:
    dialer = LinkConnection(initiator=True, node_key=SigningKey.generate())
    dialer.data_to_send()  # message 1, which the listener reads and does not answer
    with pytest.raises(RelayBusyError) as caught:
        dialer.receive_data(refusal_frame("source_connections", 1500))
    assert (caught.value.reason, caught.value.retry_after) == ("source_connections", 1.5)
    assert dialer.state is LinkState.ERROR  # terminal: nothing more is read or sent


def test_a_refusal_frame_is_shorter_than_any_handshake_message_two() -> None:
    frame = refusal_frame("a" + "_" * 31, 3_600_000)  # the longest refusal there is
    responder = LinkConnection(initiator=False, node_key=SigningKey.generate())
    dialer = LinkConnection(initiator=True, node_key=SigningKey.generate())
    responder.receive_data(dialer.data_to_send())
    message_two = responder.data_to_send()
    assert len(frame) - 2 <= 64 < 96 <= len(message_two) - 2


@pytest.mark.parametrize(
    ("reason", "retry"), [("", 1), ("Busy", 1), ("x" * 33, 1), ("busy", 0), ("busy", 3_600_001)]
)
def test_a_listener_cannot_write_a_malformed_refusal(reason: str, retry: int) -> None:
    with pytest.raises(ValueError, match=r"refusal reason|retry must be"):
        refusal_frame(reason, retry)


@given(st.binary(max_size=64))
@settings(max_examples=300)
def test_any_short_first_answer_is_a_typed_busy_or_a_failed_handshake(body: bytes) -> None:
    dialer = LinkConnection(initiator=True, node_key=SigningKey.generate())
    dialer.data_to_send()
    with pytest.raises((RelayBusyError, HandshakeFailedError)):
        dialer.receive_data(len(body).to_bytes(2, "big") + body)
    assert dialer.state is LinkState.ERROR


def test_a_responder_never_takes_a_short_frame_for_a_refusal() -> None:
    # Only a dialer waiting for message 2 reads refusals: a listener given one
    # as message 1 fails the handshake as for any other garbage.
    responder = LinkConnection(initiator=False, node_key=SigningKey.generate())
    with pytest.raises(HandshakeFailedError):
        responder.receive_data(refusal_frame("connections", 10))
