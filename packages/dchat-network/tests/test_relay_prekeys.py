"""Relay-hosted prekey bundles: pk_put, pk_count and pk_get against the sans-IO server."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import canonical_encode
from dchat_crypto import PrekeyBundle, PrekeySecrets, PrivateKey, SigningKey
from dchat_network import (
    MAX_PREKEY_PUT,
    MAX_PREKEYS_HELD,
    RelayClient,
    RelayError,
    RelayMessage,
    RelayPrekeyBundle,
    RelayPrekeysHeld,
    RelayProtocolError,
    RelayServer,
)

ALICE, BOB = b"A" * 32, b"B" * 32
NOW = 1_000_000.0


class MemoryPrekeys:
    """The PrekeyStore contract in a few lines (dchat_testing has the full one)."""

    def __init__(self) -> None:
        self.last: dict[bytes, bytes] = {}
        self.one_time: dict[bytes, dict[int, bytes]] = {}

    def put_prekeys(
        self,
        mailbox: bytes,
        last: bytes,
        one_time: Sequence[tuple[int, bytes]],
        replace: bool,
        now: float,
    ) -> int:
        held = self.one_time.setdefault(mailbox, {})
        if replace:
            held.clear()
        for prekey_id, bundle in one_time:
            held.setdefault(prekey_id, bundle)
        self.last[mailbox] = last
        return len(held)

    def take_prekey(self, mailbox: bytes) -> bytes | None:
        held = self.one_time.get(mailbox, {})
        if held:
            return held.pop(min(held))
        return self.last.get(mailbox)

    def count_prekeys(self, mailbox: bytes) -> int:
        return len(self.one_time.get(mailbox, {}))


class Owner:
    """An identity with prekey secrets, publishing encoded bundles."""

    def __init__(self, one_time_count: int = 3, *, lifetime: float = 86400.0) -> None:
        self.key = SigningKey.generate()
        self.secrets = PrekeySecrets.generate(
            self.key.public_key,
            PrivateKey.generate().public_key,
            now=NOW,
            lifetime=lifetime,
            one_time_count=one_time_count,
        )

    def last(self) -> bytes:
        return self.secrets.bundle(self.key).to_bytes()

    def one_time(self, ids: Sequence[int] | None = None) -> list[bytes]:
        chosen = self.secrets.one_time_prekey_ids if ids is None else ids
        return [self.secrets.bundle(self.key, one_time_prekey_id=i).to_bytes() for i in chosen]

    def more(self, count: int) -> list[bytes]:
        return self.one_time(self.secrets.generate_one_time_prekeys(count))


def server_with_store() -> tuple[RelayServer, MemoryPrekeys]:
    store = MemoryPrekeys()
    return RelayServer(MemoryMailboxes(), lambda _: None, prekeys=store), store


class MemoryMailboxes:
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


def publish(server: RelayServer, owner: Owner, otks: list[bytes], *, replace: bool) -> int:
    client = RelayClient()
    held = ask(server, BOB, client, client.put_prekeys(BOB, owner.last(), otks, replace=replace))
    assert isinstance(held, RelayPrekeysHeld)
    return held.count


def get(server: RelayServer) -> PrekeyBundle:
    client = RelayClient()
    reply = ask(server, ALICE, client, client.get_prekeys(BOB))
    assert isinstance(reply, RelayPrekeyBundle)
    bundle = PrekeyBundle.from_bytes(reply.bundle)
    bundle.verify(NOW + 1)
    return bundle


def count(server: RelayServer) -> int:
    client = RelayClient()
    reply = ask(server, BOB, client, client.count_prekeys(BOB))
    assert isinstance(reply, RelayPrekeysHeld)
    return reply.count


def test_anyone_gets_each_one_time_bundle_once_then_the_last_resort() -> None:
    server, _ = server_with_store()
    owner = Owner(3)
    assert publish(server, owner, owner.one_time()[::-1], replace=False) == 3
    assert count(server) == 3
    served = [get(server).one_time_prekey_id for _ in range(3)]
    assert served == list(owner.secrets.one_time_prekey_ids)  # lowest id first
    assert count(server) == 0
    for _ in range(2):
        last = get(server)
        assert last.one_time is None
        assert last.identity_key == owner.key.public_key


def test_get_before_anything_was_published_is_no_prekeys() -> None:
    server, _ = server_with_store()
    assert refused(server, ALICE, RelayClient().get_prekeys(BOB)) == "no_prekeys"


@pytest.mark.parametrize("kind", ["put", "count"])
def test_put_and_count_are_only_for_the_own_mailbox(kind: str) -> None:
    server, store = server_with_store()
    owner = Owner(1)
    client = RelayClient()
    if kind == "put":
        request = client.put_prekeys(BOB, owner.last(), owner.one_time(), replace=True)
    else:
        request = client.count_prekeys(BOB)
    assert refused(server, ALICE, request) == "forbidden"
    assert store.last == {}
    assert store.one_time == {}


@pytest.mark.parametrize("kind", ["put", "count", "get"])
def test_a_relay_without_a_prekey_store_says_unsupported(kind: str) -> None:
    server = RelayServer(MemoryMailboxes(), lambda _: None)
    client = RelayClient()
    request = {
        "put": lambda: client.put_prekeys(BOB, b"", [], replace=True),
        "count": lambda: client.count_prekeys(BOB),
        "get": lambda: client.get_prekeys(BOB),
    }[kind]()
    assert refused(server, BOB, request) == "unsupported"


def _tampered(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1])  # the last byte is in the signature


BAD_SETS = {
    "last has a one-time prekey": lambda o, s: (o.one_time()[0], o.one_time()[1:]),
    "a one-time bundle without one": lambda o, s: (o.last(), [*o.one_time(), o.last()]),
    "two identities": lambda o, s: (o.last(), [*o.one_time(), s.one_time()[0]]),
    "same identity key, other static key": lambda o, s: (o.last(), _other_static(o)),
    "repeated prekey id": lambda o, s: (o.last(), [*o.one_time(), o.one_time()[0]]),
    "bad signature": lambda o, s: (o.last(), [*o.one_time()[1:], _tampered(o.one_time()[0])]),
    "bad last signature": lambda o, s: (_tampered(o.last()), o.one_time()),
    "not a bundle": lambda o, s: (o.last(), [b"\xa0"]),
    "empty last": lambda o, s: (b"", o.one_time()),
}


def _other_static(owner: Owner) -> list[bytes]:
    other = PrekeySecrets.generate(
        owner.key.public_key, PrivateKey.generate().public_key, now=NOW, one_time_count=1
    )
    return [other.bundle(owner.key, one_time_prekey_id=other.one_time_prekey_ids[0]).to_bytes()]


@pytest.mark.parametrize("case", sorted(BAD_SETS))
def test_invalid_sets_are_refused_and_store_nothing(case: str) -> None:
    server, store = server_with_store()
    owner, stranger = Owner(3), Owner(1)
    previous = Owner(2)
    publish(server, previous, previous.one_time(), replace=True)
    before = (dict(store.last), {k: dict(v) for k, v in store.one_time.items()})
    last, otks = BAD_SETS[case](owner, stranger)
    for replace in (False, True):
        request = RelayClient().put_prekeys(BOB, last, otks, replace=replace)
        assert refused(server, BOB, request) == "bad_prekeys"
    assert (store.last, store.one_time) == before


def test_expired_bundles_are_refused() -> None:
    server, store = server_with_store()
    owner = Owner(2, lifetime=10.0)
    request = RelayClient().put_prekeys(BOB, owner.last(), owner.one_time(), replace=True)
    reply = server.handle(BOB, request, NOW + 10)
    assert isinstance(reply.message, RelayError)
    assert reply.message.code == "bad_prekeys"
    assert store.last == {}


def test_put_without_replace_adds_one_time_bundles_and_replaces_the_last_resort() -> None:
    server, _ = server_with_store()
    owner = Owner(2)
    first_last = owner.last()
    assert publish(server, owner, owner.one_time(), replace=False) == 2
    assert get(server).one_time_prekey_id == owner.secrets.one_time_prekey_ids[0]
    owner.secrets.rotate(now=NOW)  # the next last-resort bundle is a new generation
    new = owner.more(2)
    assert publish(server, owner, new, replace=False) == 3
    assert publish(server, owner, new, replace=False) == 3  # a retried put adds nothing
    for _ in range(3):
        assert get(server).one_time is not None
    last = get(server)
    assert last.one_time is None
    assert last.to_bytes() != first_last
    assert last.signed_prekey_id == owner.secrets.signed_prekey_id


def test_put_with_replace_drops_every_held_bundle() -> None:
    server, _ = server_with_store()
    owner = Owner(3)
    publish(server, owner, owner.one_time(), replace=True)
    new = owner.more(1)
    assert publish(server, owner, new, replace=True) == 1
    assert get(server).to_bytes() == new[0]
    assert get(server).one_time is None
    assert publish(server, owner, [], replace=True) == 0


def test_at_most_max_prekeys_held_one_time_bundles() -> None:
    server, store = server_with_store()
    owner = Owner(0)
    assert publish(server, owner, owner.more(MAX_PREKEY_PUT), replace=False) == MAX_PREKEY_PUT
    assert publish(server, owner, owner.more(MAX_PREKEY_PUT), replace=False) == MAX_PREKEYS_HELD
    request = RelayClient().put_prekeys(BOB, owner.last(), owner.more(1), replace=False)
    assert refused(server, BOB, request) == "prekey_quota"
    assert store.count_prekeys(BOB) == MAX_PREKEYS_HELD
    # A rotation replaces everything, so it always fits.
    assert publish(server, owner, owner.more(MAX_PREKEY_PUT), replace=True) == MAX_PREKEY_PUT


def test_many_senders_never_get_the_same_one_time_bundle() -> None:
    server, _ = server_with_store()
    owner = Owner(10)
    published = owner.one_time()
    publish(server, owner, published, replace=True)
    served = [get(server).to_bytes() for _ in range(15)]
    assert sorted(served[:10]) == sorted(published)
    assert len(set(served[10:])) == 1


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_a_corrupted_bundle_is_refused_never_raised(data: st.DataObject) -> None:
    server, store = server_with_store()
    owner = _OWNER
    otks = owner.one_time()
    victim = data.draw(st.integers(0, len(otks)))  # len(otks) means the last-resort one
    target = otks[victim] if victim < len(otks) else owner.last()
    position = data.draw(st.integers(0, len(target) - 1))
    corrupted = target[:position] + bytes([target[position] ^ data.draw(st.integers(1, 255))])
    corrupted += target[position + 1 :]
    if victim < len(otks):
        otks[victim], last = corrupted, owner.last()
    else:
        last = corrupted
    reply = server.handle(BOB, RelayClient().put_prekeys(BOB, last, otks, replace=True), NOW)
    assert isinstance(reply.message, RelayError)
    assert reply.message.code == "bad_prekeys"
    assert store.last == {}


_OWNER = Owner(2)


def test_client_matches_prekey_replies_to_requests() -> None:
    client = RelayClient()
    client.get_prekeys(BOB)
    with pytest.raises(RelayProtocolError):
        client.receive(canonical_encode({"t": "pk_held", "rid": 1, "n": 0}))  # wrong type
    client.count_prekeys(BOB)
    with pytest.raises(RelayProtocolError):
        client.receive(canonical_encode({"t": "pk_held", "rid": 1, "n": 0}))  # wrong rid
    client.put_prekeys(BOB, b"", [], replace=False)
    assert client.receive(canonical_encode({"t": "pk_held", "rid": 3, "n": 0})) == (
        RelayPrekeysHeld(3, 0)
    )
    client.get_prekeys(BOB)
    assert client.receive(canonical_encode({"t": "pk_bundle", "rid": 4, "bundle": b"b"})) == (
        RelayPrekeyBundle(4, b"b")
    )
