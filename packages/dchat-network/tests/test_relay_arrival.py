"""Relays store arrival times coarsened; order and fetches are unchanged."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dchat_network import RelayClient, RelayServer
from dchat_network.lowlevel import ARRIVAL_GRANULARITY, RelayBatch
from dchat_testing import MemoryMailboxStore

OWNER, SENDER = b"O" * 32, b"S" * 32


def _mailbox_of(envelope: bytes) -> bytes | None:
    return envelope[:32] if len(envelope) >= 32 else None


def test_arrival_times_are_stored_to_the_granularity_and_order_is_kept() -> None:
    store = MemoryMailboxStore()
    server, client = RelayServer(store, _mailbox_of), RelayClient()
    times = [1_700_000_000.1234567, 1_700_000_000.9, 1_700_000_033.5, 1_700_000_061.0]
    for i, now in enumerate(times):
        server.handle(SENDER, client.put(OWNER, OWNER + bytes([i]) * 40), now)
    stored = store.fetch(OWNER, 10)
    assert [e.received_at for e in stored] == [1_699_999_980.0] * 3 + [1_700_000_040.0]
    assert all(e.received_at % ARRIVAL_GRANULARITY == 0 for e in stored)
    reply = server.handle(OWNER, client.fetch(OWNER), times[-1]).message
    assert isinstance(reply, RelayBatch)
    assert [env[32] for _, env in reply.items] == [0, 1, 2, 3]  # ties: arrival order


@given(now=st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_a_stored_time_is_at_most_one_granule_early_and_never_late(now: float) -> None:
    store = MemoryMailboxStore()
    RelayServer(store, _mailbox_of).handle(SENDER, RelayClient().put(OWNER, OWNER + b"x"), now)
    (entry,) = store.fetch(OWNER, 1)
    assert now - ARRIVAL_GRANULARITY < entry.received_at <= now
