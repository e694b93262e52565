"""The in-memory block store and replay after a restart."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dchat_chain import ChainArgumentError
from dchat_chain._consensus_sim import HashApp, Simulation
from dchat_chain.lowlevel import MemoryBlockStore, replay


def decided_store(height: int) -> tuple[Simulation, MemoryBlockStore]:
    sim = Simulation(5)
    sim.start()
    sim.run(60_000, target_height=height)
    return sim, sim.nodes[0].store


def test_replay_rebuilds_the_application_and_chain_state() -> None:
    sim, store = decided_store(6)
    app = HashApp()
    state, last_commit = replay(store, app, sim.genesis)
    engine = sim.nodes[0].engine
    assert engine is not None
    assert state == engine.state
    assert last_commit == store.certificate(store.height())
    assert app.app_hash == sim.nodes[0].app.app_hash


def test_store_refuses_gaps_conflicts_and_mismatched_certificates() -> None:
    _, store = decided_store(3)
    fresh = MemoryBlockStore()
    b1, b2 = store.block(1), store.block(2)
    c1, c2 = store.certificate(1), store.certificate(2)
    assert b1
    assert b2
    assert c1
    assert c2
    with pytest.raises(ChainArgumentError):
        fresh.save(b2, c2)  # a gap
    with pytest.raises(ChainArgumentError):
        fresh.save(b1, c2)  # the certificate of another block
    fresh.save(b1, c1)
    fresh.save(b1, c1)  # idempotent
    other = replace(b1, header=replace(b1.header, time_ms=b1.header.time_ms + 1))
    with pytest.raises(ChainArgumentError):
        fresh.save(other, replace(c1, block_hash=other.hash()))  # a fork at a stored height
    fresh.save(b2, c2)
    assert fresh.height() == 2
    assert fresh.block(2) == b2
    assert fresh.block(3) is None
    assert fresh.certificate(0) is None


def test_checkpoint_is_kept() -> None:
    store = MemoryBlockStore()
    assert store.load_checkpoint() is None
    store.save_checkpoint(b"abc")
    assert store.load_checkpoint() == b"abc"
