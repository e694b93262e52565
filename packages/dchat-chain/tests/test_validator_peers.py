"""Validator peers' configured addresses: ``NODEID@HOST:PORT``, parsed strictly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_chain.lowlevel import PeerAddress, PeerAddressError, parse_peer
from dchat_core import NodeId
from dchat_crypto import SigningKey

NODE = NodeId.derive(SigningKey.from_bytes(bytes(range(32))).public_key.to_bytes())


def test_a_peer_parses_into_its_pinned_id_host_and_port() -> None:
    assert parse_peer(f"{NODE}@127.0.0.1:7400") == PeerAddress(NODE, "127.0.0.1", 7400)
    assert parse_peer(f"{NODE}@[::1]:7400") == PeerAddress(NODE, "::1", 7400)


@given(
    host=st.sampled_from(["127.0.0.1", "example.org", "validator-3"]), port=st.integers(0, 65535)
)
def test_str_reads_back(host: str, port: int) -> None:
    peer = PeerAddress(NODE, host, port)
    assert parse_peer(str(peer)) == peer


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("127.0.0.1:7400", "a peer is NODEID@HOST:PORT"),
        ("dcnd1nonsense@127.0.0.1:7400", "not a node id"),
        (f"{NODE}@127.0.0.1", "not a HOST:PORT address"),
        (f"{NODE}@:7400", "not a HOST:PORT address"),
        (f"{NODE}@127.0.0.1:65536", "not a HOST:PORT address"),
        (f"{NODE}@127.0.0.1:-1", "not a HOST:PORT address"),
    ],
)
def test_anything_else_is_refused_with_what_was_wrong(text: str, reason: str) -> None:
    with pytest.raises(PeerAddressError, match=reason):
        parse_peer(text)
    assert issubclass(PeerAddressError, ValueError)
