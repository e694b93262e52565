"""Block sync: a new node catches up, and refuses anything not certified."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import pytest
from hypothesis import given, settings

from dchat_chain import DchatChainError, InvalidCertificateError, SyncError
from dchat_chain._consensus_sim import HashApp, Simulation
from dchat_chain.lowlevel import (
    BlockSyncClient,
    MemoryBlockStore,
    SyncRequest,
    SyncResponse,
    serve_sync,
)
from dchat_core import PeerError
from dchat_testing import hostile_bytes


@lru_cache(maxsize=1)
def chain() -> tuple[Simulation, MemoryBlockStore]:
    sim = Simulation(11)
    sim.start()
    sim.run(60_000, target_height=25)
    return sim, sim.nodes[1].store


def client(**kwargs: object) -> tuple[BlockSyncClient, HashApp]:
    sim, _ = chain()
    app = HashApp()
    return BlockSyncClient(sim.genesis, app, **kwargs), app  # type: ignore[arg-type]


@pytest.mark.parametrize("verify_every", [False, True])
def test_new_node_catches_up(verify_every: bool) -> None:
    sim, store = chain()
    c, app = client(batch=10, verify_every=verify_every)
    while True:
        request = SyncRequest.from_bytes(c.next_request().to_bytes())
        applied = c.receive(serve_sync(store, request).to_bytes())
        if not applied:
            break
    assert c.state.height == store.height() + 1
    assert app.app_hash == sim.nodes[1].app.app_hash
    assert c.last_commit == store.certificate(store.height())


def first_batch() -> SyncResponse:
    _, store = chain()
    return serve_sync(store, SyncRequest(1, 10))


def test_forged_certificate_is_refused_and_nothing_applied() -> None:
    good = first_batch()
    assert good.certificate is not None
    forged = replace(good, certificate=replace(good.certificate, round=good.certificate.round + 1))
    for verify_every in (False, True):
        c, app = client(verify_every=verify_every)
        with pytest.raises(DchatChainError):
            c.receive(forged)
        # Blocks 1-9 are certified by their successors' last_commit; block 10 is not.
        assert c.state.height == 10
        assert app.height == 9
    # A block whose only certificate is forged is never executed.
    _, store = chain()
    single = serve_sync(store, SyncRequest(1, 1))
    assert single.certificate is not None
    c, app = client()
    with pytest.raises(InvalidCertificateError):
        c.receive(replace(single, certificate=replace(single.certificate, signers=b"\x01")))
    assert c.state.height == 1
    assert app.height == 0


def test_block_not_matching_its_certificate_is_refused() -> None:
    good = first_batch()
    blocks = list(good.blocks)
    last = blocks[-1]
    blocks[-1] = replace(last, header=replace(last.header, time_ms=last.header.time_ms + 1))
    c, app = client()
    with pytest.raises(SyncError):
        c.receive(replace(good, blocks=tuple(blocks)))
    assert app.height == 0


def test_tampered_middle_block_is_never_executed() -> None:
    good = first_batch()
    blocks = list(good.blocks)
    blocks[4] = replace(blocks[4], txs=(b"tx-evil",))
    for verify_every in (False, True):
        c, app = client(verify_every=verify_every)
        with pytest.raises(SyncError):
            c.receive(replace(good, blocks=tuple(blocks)))
        assert app.height == 0


def test_response_that_does_not_start_at_our_height_is_refused() -> None:
    _, store = chain()
    c, _ = client()
    with pytest.raises(SyncError):
        c.receive(serve_sync(store, SyncRequest(2, 5)))


@settings(max_examples=200)
@given(hostile_bytes(max_size=300))
def test_garbage_responses_and_requests_are_typed_errors(data: bytes) -> None:
    c, _ = client()
    with pytest.raises(DchatChainError) as info:
        c.receive(data)
    assert isinstance(info.value, PeerError)
    with pytest.raises(SyncError):
        SyncRequest.from_bytes(data)
