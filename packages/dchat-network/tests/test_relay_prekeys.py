"""Relay-hosted prekey bundles: pk_put, pk_count and pk_get against the sans-IO server."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import canonical_encode
from dchat_network import RelayClient, RelayError, RelayMessage, RelayProtocolError, RelayServer
from dchat_network.lowlevel import (
    MAX_PREKEY_BUNDLE,
    MAX_PREKEY_PUT,
    MAX_PREKEYS_HELD,
    RelayPrekeyBundle,
    RelayPrekeysHeld,
)
from dchat_testing import MemoryPrekeyStore

ALICE, BOB = b"A" * 32, b"B" * 32
NOW = 1_000_000.0


def otks(tag: bytes, ids: Sequence[int]) -> list[tuple[int, bytes]]:
    """One-time bundles as the relay sees them: opaque bytes keyed by prekey id."""
    return [(i, b"otk-%s-%d" % (tag, i)) for i in ids]


def server_with_store() -> tuple[RelayServer, MemoryPrekeyStore]:
    store = MemoryPrekeyStore()
    return RelayServer(MemoryMailboxes(), lambda _: None, prekeys=store), store


class MemoryMailboxes:
    """A mailbox store that fails the test if the server touches it."""

    def put(self, mailbox: bytes, envelope: bytes, received_at: float) -> tuple[bytes, bool]:
        raise AssertionError("not used")

    def fetch(self, mailbox: bytes, limit: int = 100) -> Sequence[object]:
        raise AssertionError("not used")

    def ack(self, mailbox: bytes, entry_ids: Sequence[bytes]) -> int:
        raise AssertionError("not used")

    def total_bytes(self, mailbox: bytes) -> int:
        raise AssertionError("not used")


def ask(server: RelayServer, peer: bytes, client: RelayClient, request: bytes) -> RelayMessage:
    return client.receive(server.handle(peer, request, NOW + 1).data)


def refused(server: RelayServer, peer: bytes, request: bytes) -> str:
    reply = server.handle(peer, request, NOW + 1)
    assert reply.close
    assert isinstance(reply.message, RelayError)
    return reply.message.code


def publish(
    server: RelayServer, one_time: list[tuple[int, bytes]], *, replace: bool, last: bytes = b"last"
) -> int:
    client = RelayClient()
    held = ask(server, BOB, client, client.put_prekeys(BOB, last, one_time, replace=replace))
    assert isinstance(held, RelayPrekeysHeld)
    return held.count


def get(server: RelayServer) -> bytes:
    client = RelayClient()
    reply = ask(server, ALICE, client, client.get_prekeys(BOB))
    assert isinstance(reply, RelayPrekeyBundle)
    return reply.bundle


def count(server: RelayServer) -> int:
    client = RelayClient()
    reply = ask(server, BOB, client, client.count_prekeys(BOB))
    assert isinstance(reply, RelayPrekeysHeld)
    return reply.count


def test_anyone_gets_each_one_time_bundle_once_then_the_last_resort() -> None:
    server, _ = server_with_store()
    published = otks(b"a", [7, 2**32 - 1, 0])
    assert publish(server, published, replace=False) == 3
    assert count(server) == 3
    served = [get(server) for _ in range(3)]
    assert served == [blob for _, blob in sorted(published)]  # lowest id first
    assert count(server) == 0
    assert [get(server) for _ in range(2)] == [b"last", b"last"]


def test_bundles_are_opaque_any_bytes_are_hosted_verbatim() -> None:
    # Nothing the relay could parse: the blobs are not CBOR, let alone bundles.
    server, _ = server_with_store()
    last, big = b"\xff" * MAX_PREKEY_BUNDLE, bytes(range(256)) * 8
    assert publish(server, [(0, b"\x00"), (1, big)], replace=True, last=last) == 2
    assert [get(server) for _ in range(3)] == [b"\x00", big, last]


def test_get_before_anything_was_published_is_no_prekeys() -> None:
    server, _ = server_with_store()
    assert refused(server, ALICE, RelayClient().get_prekeys(BOB)) == "no_prekeys"


@pytest.mark.parametrize("kind", ["put", "count"])
def test_put_and_count_are_only_for_the_own_mailbox(kind: str) -> None:
    server, store = server_with_store()
    client = RelayClient()
    if kind == "put":
        request = client.put_prekeys(BOB, b"last", otks(b"a", [1]), replace=True)
    else:
        request = client.count_prekeys(BOB)
    assert refused(server, ALICE, request) == "forbidden"
    assert store.contents() == ({}, {})


@pytest.mark.parametrize("kind", ["put", "count", "get"])
def test_a_relay_without_a_prekey_store_says_unsupported(kind: str) -> None:
    server = RelayServer(MemoryMailboxes(), lambda _: None)
    client = RelayClient()
    request = {
        "put": lambda: client.put_prekeys(BOB, b"last", [], replace=True),
        "count": lambda: client.count_prekeys(BOB),
        "get": lambda: client.get_prekeys(BOB),
    }[kind]()
    assert refused(server, BOB, request) == "unsupported"


_TOO_BIG = bytes(MAX_PREKEY_BUNDLE + 1)
BAD_SETS: dict[str, tuple[bytes, list[tuple[int, bytes]]]] = {
    "empty last": (b"", otks(b"a", [1])),
    "last too large": (_TOO_BIG, otks(b"a", [1])),
    "empty one-time bundle": (b"last", [*otks(b"a", [1]), (2, b"")]),
    "one-time bundle too large": (b"last", [*otks(b"a", [1]), (2, _TOO_BIG)]),
    "repeated prekey id": (b"last", [*otks(b"a", [1, 2]), (1, b"other")]),
    "repeated prekey id, same bundle": (b"last", otks(b"a", [3, 3])),
    "negative prekey id": (b"last", otks(b"a", [-1])),
    "prekey id above 2**32-1": (b"last", otks(b"a", [2**32])),
    "prekey id of 64 bits": (b"last", otks(b"a", [1, 2**64 - 1])),
}


@pytest.mark.parametrize("case", sorted(BAD_SETS))
def test_malformed_sets_are_refused_and_store_nothing(case: str) -> None:
    server, store = server_with_store()
    publish(server, otks(b"p", [1, 2]), replace=True, last=b"previous")
    before = store.contents()
    last, one_time = BAD_SETS[case]
    for replace in (False, True):
        request = RelayClient().put_prekeys(BOB, last, one_time, replace=replace)
        assert refused(server, BOB, request) == "bad_prekeys"
    assert store.contents() == before


def test_the_bounds_themselves_are_accepted() -> None:
    server, _ = server_with_store()
    edge = [(0, b"x"), (2**32 - 1, bytes(MAX_PREKEY_BUNDLE))]
    assert publish(server, edge, replace=True, last=bytes(MAX_PREKEY_BUNDLE)) == 2
    assert [get(server) for _ in range(3)] == [b"x", *[bytes(MAX_PREKEY_BUNDLE)] * 2]


def test_put_without_replace_adds_one_time_bundles_and_replaces_the_last_resort() -> None:
    server, _ = server_with_store()
    assert publish(server, otks(b"1", [1, 2]), replace=False, last=b"last-1") == 2
    assert get(server) == b"otk-1-1"
    new = otks(b"2", [3, 4])
    assert publish(server, new, replace=False, last=b"last-2") == 3
    assert publish(server, new, replace=False, last=b"last-2") == 3  # a retried put adds nothing
    assert [get(server) for _ in range(4)] == [b"otk-1-2", b"otk-2-3", b"otk-2-4", b"last-2"]


def test_a_held_id_keeps_its_first_bundle() -> None:
    server, _ = server_with_store()
    publish(server, otks(b"1", [1]), replace=False)
    assert publish(server, otks(b"2", [1, 2]), replace=False) == 2
    assert [get(server) for _ in range(2)] == [b"otk-1-1", b"otk-2-2"]


def test_put_with_replace_drops_every_held_bundle() -> None:
    server, _ = server_with_store()
    publish(server, otks(b"1", [1, 2, 3]), replace=True, last=b"last-1")
    assert publish(server, otks(b"2", [9]), replace=True, last=b"last-2") == 1
    assert [get(server) for _ in range(2)] == [b"otk-2-9", b"last-2"]
    assert publish(server, [], replace=True, last=b"last-3") == 0
    assert get(server) == b"last-3"


def test_at_most_max_prekeys_held_one_time_bundles() -> None:
    server, store = server_with_store()
    batches = [otks(b"q", range(n * MAX_PREKEY_PUT, (n + 1) * MAX_PREKEY_PUT)) for n in range(4)]
    assert publish(server, batches[0], replace=False) == MAX_PREKEY_PUT
    assert publish(server, batches[1], replace=False) == MAX_PREKEYS_HELD
    request = RelayClient().put_prekeys(BOB, b"last", batches[2][:1], replace=False)
    assert refused(server, BOB, request) == "prekey_quota"
    assert store.count_prekeys(BOB) == MAX_PREKEYS_HELD
    # A rotation replaces everything, so it always fits.
    assert publish(server, batches[3], replace=True) == MAX_PREKEY_PUT


def test_many_senders_never_get_the_same_one_time_bundle() -> None:
    server, _ = server_with_store()
    published = otks(b"a", range(10))
    publish(server, published, replace=True)
    served = [get(server) for _ in range(15)]
    assert sorted(served[:10]) == sorted(blob for _, blob in published)
    assert served[10:] == [b"last"] * 5


_BLOBS = st.binary(max_size=8) | st.sampled_from([bytes(MAX_PREKEY_BUNDLE), _TOO_BIG])
_IDS = st.integers(0, 5) | st.integers(-(2**64), 2**64 - 1)


def _well_formed(last: bytes, one_time: list[tuple[int, bytes]]) -> bool:
    blobs = [last, *(blob for _, blob in one_time)]
    ids = [i for i, _ in one_time]
    return (
        all(0 < len(b) <= MAX_PREKEY_BUNDLE for b in blobs)
        and all(0 <= i < 2**32 for i in ids)
        and len(set(ids)) == len(ids)
    )


@settings(max_examples=200, deadline=None)
@given(_BLOBS, st.lists(st.tuples(_IDS, _BLOBS), max_size=6), st.booleans())
def test_any_put_is_stored_exactly_when_well_formed_and_never_raises(
    last: bytes, one_time: list[tuple[int, bytes]], replace: bool
) -> None:
    server, store = server_with_store()
    reply = server.handle(BOB, RelayClient().put_prekeys(BOB, last, one_time, replace=replace), NOW)
    if _well_formed(last, one_time):
        assert reply.message == RelayPrekeysHeld(1, len(one_time))
        assert store.contents()[0] == {BOB: last}
    else:
        assert isinstance(reply.message, RelayError)
        assert reply.message.code == "bad_prekeys"
        assert reply.close
        assert store.contents()[0] == {}


def test_client_matches_prekey_replies_to_requests() -> None:
    client = RelayClient()
    client.get_prekeys(BOB)
    with pytest.raises(RelayProtocolError):
        client.receive(canonical_encode({"t": "pk_held", "rid": 1, "n": 0}))  # wrong type
    client.count_prekeys(BOB)
    with pytest.raises(RelayProtocolError):
        client.receive(canonical_encode({"t": "pk_held", "rid": 1, "n": 0}))  # wrong rid
    client.put_prekeys(BOB, b"last", [], replace=False)
    assert client.receive(canonical_encode({"t": "pk_held", "rid": 3, "n": 0})) == (
        RelayPrekeysHeld(3, 0)
    )
    client.get_prekeys(BOB)
    assert client.receive(canonical_encode({"t": "pk_bundle", "rid": 4, "bundle": b"b"})) == (
        RelayPrekeyBundle(4, b"b")
    )
