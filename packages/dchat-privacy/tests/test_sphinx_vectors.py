"""BOLT 4 conformance vectors from ``<vectors>/sphinx_bolt04`` (see its SOURCE.txt).

* ``onion-test.json``: the 1366-byte onion built byte for byte from the session
  key, associated data and five hops; each hop's private key peels it in turn
  and reads its own payload; the last hop sees the final marker.
* ``onion-error-test.json``: each hop's shared secret and ``ammag``/``um`` key,
  and the 292-byte failure packet hop 4 returns, as the origin receives it.
* ``04-onion-routing_test_vector_section.md``: the current (1024-byte) failure
  trace, every intermediate "error packet for node i". Its attribution data
  (attributable failures) is not implemented and not checked.

* ``route-blinding-test.json``: the blinded path built from two segments
  (blinded ids, sealed data, first path keys) and each hop's unblinding (its
  data, blinded private key and next path key).

The ``blinded-payment-onion-test.json`` and ``blinded-onion-message-onion-test.json``
vectors do not apply: they check Lightning's payment and onion-message TLV
payloads, which dchat does not use.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pytest

from dchat_privacy import OnionPrivateKey, OnionPublicKey
from dchat_privacy.lowlevel import (
    PACKET_SIZE,
    BlindedHop,
    SharedSecret,
    blind_path,
    build_failure,
    build_onion,
    peel_onion,
    read_failure,
    unblind_hop,
    wrap_failure,
)

if TYPE_CHECKING:
    from pathlib import Path

    from dchat_privacy.lowlevel import OnionCircuit


def _load(vectors: Path, name: str) -> Any:
    path = vectors / "sphinx_bolt04" / name
    if not path.is_file():
        pytest.skip(f"BOLT 4 vector {path} not found")
    return (
        path.read_text(encoding="utf-8") if name.endswith(".md") else json.loads(path.read_text())
    )


def _strip_length(framed: bytes) -> bytes:
    """The vectors' payloads carry their BigSize length; the API takes the bare payload."""
    if framed[0] < 0xFD:
        length, start = framed[0], 1
    else:
        assert framed[0] == 0xFD
        length, start = int.from_bytes(framed[1:3], "big"), 3
    assert start + length == len(framed)
    return framed[start:]


def _onion_route(case: dict[str, Any]) -> list[tuple[OnionPublicKey, bytes]]:
    return [
        (OnionPublicKey.from_bytes(bytes.fromhex(hop["pubkey"])), bytes.fromhex(hop["payload"]))
        for hop in case["generate"]["hops"]
    ]


def _circuit(vectors: Path) -> OnionCircuit:
    case = _load(vectors, "onion-test.json")
    route = [(key, _strip_length(payload)) for key, payload in _onion_route(case)]
    session = OnionPrivateKey.from_bytes(bytes.fromhex(case["generate"]["session_key"]))
    return build_onion(route, session_key=session)[1]


def test_the_onion_is_built_byte_for_byte(vectors: Path) -> None:
    case = _load(vectors, "onion-test.json")
    route = [(key, _strip_length(payload)) for key, payload in _onion_route(case)]
    session = OnionPrivateKey.from_bytes(bytes.fromhex(case["generate"]["session_key"]))
    ad = bytes.fromhex(case["generate"]["associated_data"])
    packet, _ = build_onion(route, session_key=session, associated_data=ad)
    assert len(packet) == PACKET_SIZE
    assert packet.hex() == case["onion"]


def test_each_hop_peels_its_payload_and_the_last_sees_the_end(vectors: Path) -> None:
    case = _load(vectors, "onion-test.json")
    framed = [payload for _, payload in _onion_route(case)]
    ad = bytes.fromhex(case["generate"]["associated_data"])
    packet: bytes | None = bytes.fromhex(case["onion"])
    for index, private in enumerate(case["decode"]):
        assert packet is not None
        key = OnionPrivateKey.from_bytes(bytes.fromhex(private))
        assert key.public_key.to_bytes().hex() == case["generate"]["hops"][index]["pubkey"]
        peeled = peel_onion(packet, key, associated_data=ad)
        assert peeled.payload == _strip_length(framed[index])
        assert peeled.is_final == (index == len(case["decode"]) - 1)
        packet = peeled.next_packet
    assert packet is None
    assert len(case["decode"]) == 5


def test_shared_secrets_and_failure_keys_match(vectors: Path) -> None:
    case = _load(vectors, "onion-error-test.json")
    circuit = _circuit(vectors)
    hops = case["generate"]["hops"]
    assert len(hops) == len(circuit.shared_secrets) == 5
    for hop, secret in zip(hops, circuit.shared_secrets, strict=True):
        assert secret == _secret_from_hex(hop["hop_shared_secret"])
        assert secret.key(b"ammag").hex() == hop["ammag_key"]
        if "um_key" in hop:
            assert secret.key(b"um").hex() == hop["um_key"]


def _secret_from_hex(text: str) -> SharedSecret:
    return SharedSecret(bytes.fromhex(text))


def test_the_legacy_failure_packet_is_built_and_read(vectors: Path) -> None:
    case = _load(vectors, "onion-error-test.json")
    circuit = _circuit(vectors)
    failure = bytes.fromhex(case["generate"]["failure_message"])
    packet = build_failure(circuit.shared_secrets[4], failure)
    for secret in reversed(circuit.shared_secrets[:4]):
        packet = wrap_failure(secret, packet)
    assert packet.hex() == case["errorpacket"]
    assert len(packet) == 292
    assert read_failure(circuit, packet) == (4, failure)


def _trace(text: str, label: str) -> list[bytes]:
    return [bytes.fromhex(m) for m in re.findall(re.escape(label) + r"[ =:]+([0-9a-f]+)", text)]


def test_the_1024_byte_failure_trace_matches_at_every_node(vectors: Path) -> None:
    text = _load(vectors, "04-onion-routing_test_vector_section.md")
    circuit = _circuit(vectors)
    payload = _trace(text, "\tpayload =")[0]
    failure = payload[2 : 2 + int.from_bytes(payload[:2], "big")]
    packets = [_trace(text, f"error packet for node {i}:")[0] for i in range(5)]
    packet = build_failure(circuit.shared_secrets[4], failure, body_size=1024)
    assert packet == packets[4]
    for node in (3, 2, 1, 0):
        packet = wrap_failure(circuit.shared_secrets[node], packet)
        assert packet == packets[node]
    assert read_failure(circuit, packet) == (4, failure)


def _segments(hops: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The generated route joins two blinded paths; each starts at a hop with a session key."""
    segments: list[list[dict[str, Any]]] = []
    for hop in hops:
        if "session_key" in hop:
            segments.append([])
        segments[-1].append(hop)
    return segments


def test_route_blinding_generates_the_published_path(vectors: Path) -> None:
    case = _load(vectors, "route-blinding-test.json")
    published: list[BlindedHop] = []
    for segment in _segments(case["generate"]["hops"]):
        path = blind_path(
            [(_public(hop["node_id"]), bytes.fromhex(hop["encoded_tlvs"])) for hop in segment],
            session_key=OnionPrivateKey.from_bytes(bytes.fromhex(segment[0]["session_key"])),
        )
        assert path.first_path_key == _public(segment[0]["path_key"])
        for hop, blinded in zip(segment, path.hops, strict=True):
            assert blinded.blinded_node_id == _public(hop["blinded_node_id"])
            assert blinded.encrypted_data.hex() == hop["encrypted_data"]
        published += path.hops
    route = case["route"]
    assert [h.blinded_node_id.to_bytes().hex() for h in published] == [
        h["blinded_node_id"] for h in route["hops"]
    ]
    assert [h.encrypted_data.hex() for h in published] == [
        h["encrypted_data"] for h in route["hops"]
    ]
    assert route["first_node_id"] == case["generate"]["hops"][0]["node_id"]
    assert route["first_path_key"] == case["generate"]["hops"][0]["path_key"]


def test_each_blinded_hop_unblinds(vectors: Path) -> None:
    case = _load(vectors, "route-blinding-test.json")
    route_hops = case["route"]["hops"]
    hops = case["unblind"]["hops"]
    assert len(hops) == len(route_hops) == 4
    for hop, published in zip(hops, route_hops, strict=True):
        opened = unblind_hop(
            OnionPrivateKey.from_bytes(bytes.fromhex(hop["node_privkey"])),
            _public(hop["path_key"]),
            bytes.fromhex(published["encrypted_data"]),
        )
        assert opened.data.hex() == hop["decrypted_data"]
        assert opened.blinded_key.to_bytes().hex() == hop["blinded_privkey"]
        assert opened.blinded_key.public_key == _public(published["blinded_node_id"])
        assert opened.next_path_key == _public(hop["next_path_key"])


def _public(text: str) -> OnionPublicKey:
    return OnionPublicKey.from_bytes(bytes.fromhex(text))
