"""Relay addresses: the strict parser, its round trip, and the lenient split of old cards."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_core import InvalidRelayAddressError, NodeId, RelayAddress

NODE = NodeId.derive(b"\x01" * 32)


def test_parse_reads_host_port_and_an_optional_node() -> None:
    assert RelayAddress.parse("relay.example.org:7400") == RelayAddress("relay.example.org", 7400)
    pinned = RelayAddress.parse(f"{NODE}@127.0.0.1:9")
    assert pinned == RelayAddress("127.0.0.1", 9, NODE)
    assert str(pinned) == f"{NODE}@127.0.0.1:9"
    assert pinned.hostport == "127.0.0.1:9"
    v6 = RelayAddress.parse("[::1]:7400")
    assert (v6.host, v6.port, str(v6)) == ("::1", 7400, "[::1]:7400")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "host",
        "host:",
        ":7400",
        "host:0",
        "host:65536",
        "host:-1",
        "host:7x",
        "::1:7400",
        "a b:1",
        "dcnd1xyz@host:1",
        "@host:1",
        "x" * 251 + ":7400",
        "h\x00st:1",
    ],
)
def test_parse_refuses_what_is_not_an_address(text: str) -> None:
    with pytest.raises(InvalidRelayAddressError):
        RelayAddress.parse(text)


@given(
    host=st.from_regex(r"[a-z0-9][a-z0-9.-]{0,40}", fullmatch=True),
    port=st.integers(1, 65535),
    pinned=st.booleans(),
)
def test_text_round_trips(host: str, port: int, pinned: bool) -> None:
    address = RelayAddress(host, port, NODE if pinned else None)
    assert RelayAddress.parse(str(address)) == address
    assert RelayAddress.split(str(address)) == (address.node, address.hostport)


@given(st.text(max_size=80))
def test_parse_is_total(text: str) -> None:
    try:
        address = RelayAddress.parse(text)
    except InvalidRelayAddressError:
        return
    assert RelayAddress.parse(str(address)) == address


def test_split_leaves_texts_without_a_valid_node_prefix_alone() -> None:
    assert RelayAddress.split("user@host:1") == (None, "user@host:1")
    assert RelayAddress.split("dcnd1zz@host:1") == (None, "dcnd1zz@host:1")
    assert RelayAddress.split(f"{NODE}@anything") == (NODE, "anything")
    assert RelayAddress.join(NODE, "anything") == f"{NODE}@anything"
    assert RelayAddress.join(None, "r") == "r"
