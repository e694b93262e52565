"""The BOLT 4 packet refuses what it must: tampering, wrong keys, bad framing, random bytes."""

from __future__ import annotations

import hmac
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_privacy import InvalidPacketError, OnionPrivateKey, OnionPublicKey, SphinxError
from dchat_privacy._sphinx import chacha20_xor, decode_bigsize, encode_bigsize, route_secrets
from dchat_privacy.lowlevel import (
    HOP_PAYLOADS_SIZE,
    MAX_HOPS,
    PACKET_SIZE,
    MalformedPacketError,
    SphinxUsageError,
    blind_path,
    build_failure,
    build_onion,
    peel_onion,
    read_failure,
    unblind_hop,
    wrap_failure,
)

AD = b"associated"


def _keys(seed: int, count: int) -> list[OnionPrivateKey]:
    rng = random.Random(seed)
    return [OnionPrivateKey.from_bytes(rng.randbytes(32)) for _ in range(count)]


def _onion(hops: int = 3) -> tuple[bytes, list[OnionPrivateKey]]:
    keys = _keys(1, hops)
    route = [(k.public_key, f"hop {i}".encode()) for i, k in enumerate(keys)]
    packet, _ = build_onion(route, session_key=_keys(2, 1)[0], associated_data=AD)
    return packet, keys


def test_a_route_peels_in_order_with_a_fixed_size() -> None:
    packet, keys = _onion()
    for index, key in enumerate(keys):
        assert len(packet) == PACKET_SIZE
        peeled = peel_onion(packet, key, associated_data=AD)
        assert peeled.payload == f"hop {index}".encode()
        if peeled.next_packet is None:
            assert index == 2
            break
        packet = peeled.next_packet


def test_packet_size_does_not_depend_on_route_or_payload() -> None:
    sizes = set()
    for hops, size in [(1, 1), (3, 50), (5, 200), (MAX_HOPS, 20)]:
        route = [(k.public_key, bytes(size)) for k in _keys(hops, hops)]
        sizes.add(len(build_onion(route, session_key=OnionPrivateKey.generate())[0]))
    assert sizes == {PACKET_SIZE}


@pytest.mark.parametrize("position", [40, 500, 1333, 1334, 1365])
def test_a_flipped_byte_is_refused(position: int) -> None:
    packet, keys = _onion()
    tampered = bytearray(packet)
    tampered[position] ^= 1
    with pytest.raises(InvalidPacketError):
        peel_onion(bytes(tampered), keys[0], associated_data=AD)


def test_a_flipped_ephemeral_key_is_refused() -> None:
    packet, keys = _onion()
    tampered = bytearray(packet)
    tampered[5] ^= 1
    with pytest.raises((InvalidPacketError, MalformedPacketError)):
        peel_onion(bytes(tampered), keys[0], associated_data=AD)


def test_wrong_key_or_associated_data_is_one_opaque_error() -> None:
    packet, keys = _onion()
    with pytest.raises(InvalidPacketError) as wrong_key:
        peel_onion(packet, keys[1], associated_data=AD)
    with pytest.raises(InvalidPacketError) as wrong_ad:
        peel_onion(packet, keys[0], associated_data=b"other")
    assert str(wrong_key.value) == str(wrong_ad.value)


def test_size_version_and_point_are_checked_first() -> None:
    packet, keys = _onion()
    with pytest.raises(MalformedPacketError):
        peel_onion(packet[:-1], keys[0])
    with pytest.raises(MalformedPacketError):
        peel_onion(b"\x01" + packet[1:], keys[0])
    with pytest.raises(MalformedPacketError):
        peel_onion(packet[:1] + b"\x04" + packet[2:], keys[0])
    secret = peel_onion(packet, keys[0], associated_data=AD).shared_secret
    with pytest.raises(MalformedPacketError):  # a precomputed secret skips no check
        peel_onion(packet[:-1], keys[0], shared_secret=secret)


def test_route_and_payload_limits_are_usage_errors() -> None:
    keys = _keys(3, MAX_HOPS + 1)
    session = OnionPrivateKey.generate()
    with pytest.raises(SphinxUsageError):
        build_onion([], session_key=session)
    with pytest.raises(SphinxUsageError):
        build_onion([(k.public_key, b"x") for k in keys], session_key=session)
    with pytest.raises(SphinxUsageError):
        build_onion([(keys[0].public_key, b"")], session_key=session)
    with pytest.raises(SphinxUsageError):
        build_onion([(keys[0].public_key, bytes(HOP_PAYLOADS_SIZE - 32))], session_key=session)
    largest = HOP_PAYLOADS_SIZE - 32 - 3
    packet, _ = build_onion([(keys[0].public_key, bytes(largest))], session_key=session)
    assert peel_onion(packet, keys[0]).payload == bytes(largest)


def test_keys_parse_strictly_and_hide_secrets() -> None:
    with pytest.raises(SphinxUsageError):
        OnionPublicKey.from_bytes(b"\x02" + bytes(32))  # x = 0 is not on the curve
    with pytest.raises(SphinxUsageError):
        OnionPrivateKey.from_bytes(bytes(32))
    key = OnionPrivateKey.generate()
    assert key.to_bytes().hex() not in repr(key)
    assert OnionPublicKey.from_bytes(key.public_key.to_bytes()) == key.public_key


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=PACKET_SIZE + 2))
def test_random_bytes_give_only_typed_errors(data: bytes) -> None:
    key = _keys(4, 1)[0]
    with pytest.raises(SphinxError):
        peel_onion(data, key)


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=PACKET_SIZE - 34, max_size=PACKET_SIZE - 34))
def test_random_packets_on_a_real_point_give_only_typed_errors(rest: bytes) -> None:
    key = _keys(5, 1)[0]
    with pytest.raises(SphinxError):
        peel_onion(b"\x00" + key.public_key.to_bytes() + rest, key)


def test_a_failure_from_the_middle_names_its_hop() -> None:
    keys = _keys(6, 3)
    route = [(k.public_key, b"p") for k in keys]
    packet, circuit = build_onion(route, session_key=OnionPrivateKey.generate())
    secret = peel_onion(peel_onion(packet, keys[0]).next_packet or b"", keys[1]).shared_secret
    reply = wrap_failure(circuit.shared_secrets[0], build_failure(secret, b"no route"))
    assert read_failure(circuit, reply) == (1, b"no route")
    tampered = bytearray(reply)
    tampered[100] ^= 1
    with pytest.raises(InvalidPacketError):
        read_failure(circuit, bytes(tampered))


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=600))
def test_random_failure_packets_give_only_typed_errors(data: bytes) -> None:
    keys = _keys(7, 2)
    _, circuit = build_onion([(k.public_key, b"p") for k in keys], session_key=keys[0])
    with pytest.raises(SphinxError):
        read_failure(circuit, data)


def test_a_blinded_path_opens_only_for_its_nodes_in_order() -> None:
    nodes = _keys(8, 3)
    path = blind_path(
        [(n.public_key, f"data {i}".encode()) for i, n in enumerate(nodes)],
        session_key=_keys(9, 1)[0],
    )
    assert path.first_node_id == nodes[0].public_key
    assert {h.blinded_node_id for h in path.hops}.isdisjoint({n.public_key for n in nodes})
    path_key = path.first_path_key
    for index, (node, hop) in enumerate(zip(nodes, path.hops, strict=True)):
        with pytest.raises(InvalidPacketError):
            unblind_hop(nodes[(index + 1) % 3], path_key, hop.encrypted_data)
        tampered = bytes([hop.encrypted_data[0] ^ 1]) + hop.encrypted_data[1:]
        with pytest.raises(InvalidPacketError):
            unblind_hop(node, path_key, tampered)
        opened = unblind_hop(node, path_key, hop.encrypted_data)
        assert opened.data == f"data {index}".encode()
        assert opened.blinded_key.public_key == hop.blinded_node_id
        path_key = opened.next_path_key


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=1400))
def test_random_blinded_data_gives_only_typed_errors(data: bytes) -> None:
    node, path = _keys(10, 2)
    with pytest.raises(SphinxError):
        unblind_hop(node, path.public_key, data)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=40))
def test_random_public_keys_give_only_typed_errors(data: bytes) -> None:
    try:
        key = OnionPublicKey.from_bytes(data)
    except SphinxUsageError:
        return
    assert key.to_bytes() == data


def _authentic_packet(key: OnionPrivateKey, plain: bytes) -> bytes:
    """A one-hop packet whose MAC holds but whose decrypted hop payloads are ``plain``."""
    session = _keys(11, 1)[0]
    first, (secret,) = route_secrets([key.public_key], session)
    header = chacha20_xor(secret.key(b"rho"), plain)
    mac = hmac.digest(secret.key(b"mu"), header, "sha256")
    return b"\x00" + first + header + mac


@pytest.mark.parametrize(
    "prefix",
    [
        b"\x00",  # empty payload
        b"\xfd\x00\x10",  # 16 written in three bytes: not minimal
        b"\xfd\x05\x00",  # 1280 bytes + 32 + 3 run past 1300
        b"\xfe\x00\x01\x00\x00",  # not minimal and too long
        b"\xff" + bytes(8),
    ],
)
def test_an_authentic_packet_with_bad_framing_is_malformed(prefix: bytes) -> None:
    key = _keys(12, 1)[0]
    packet = _authentic_packet(key, prefix + bytes(HOP_PAYLOADS_SIZE - len(prefix)))
    with pytest.raises(MalformedPacketError):
        peel_onion(packet, key)


@given(st.binary(max_size=12), st.integers(min_value=0, max_value=12))
def test_bigsize_reading_is_total_and_round_trips(data: bytes, offset: int) -> None:
    try:
        value, end = decode_bigsize(data, offset)
    except MalformedPacketError:
        return
    assert encode_bigsize(value) == data[offset:end]
