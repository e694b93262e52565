"""State snapshots: a restart loads the latest good one and replays only what is above it.

A chain of real currency blocks (transfers, all 4 testnet validators certify
each block) is written to a real node database; ``replay_store`` then rebuilds a
fresh application from it, with a good, a corrupt and a premature snapshot.
The last test restarts a real validator process that wrote a snapshot itself.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dchat_chain import ChainArgumentError, ChainState, CommitCertificate, Transaction
from dchat_chain._block_commit import make_bitmap
from dchat_chain.lowlevel import (
    DurableBlockStore,
    IndexedApp,
    NetPlan,
    SnapshotError,
    StateSnapshot,
    Vote,
    VoteKind,
    execute_block,
    replay_store,
)
from dchat_core import canonical_decode, canonical_encode
from dchat_crypto import KdfParams, bls_aggregate
from dchat_node import NodeProcess
from dchat_node.cli._testnet import init_testnet
from dchat_node.validator._keys import CURRENCY_GENESIS, load_validator_keys, load_wallet
from dchat_storage import ChainBlockLog, Database, open_database

PASSPHRASE = "snapshot test passphrase"
SECRET = PASSPHRASE.encode()


@pytest.fixture
def net(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    plan = NetPlan(validators=4, accounts=2)
    return tmp_path / "net", init_testnet(
        tmp_path / "net", plan, SECRET, kdf=KdfParams.TESTING, block_interval=0.2
    )


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = open_database(tmp_path / "chain.db")
    yield db
    db.close()


class Chain:
    """Certified currency blocks, one transfer each, into a durable store."""

    def __init__(self, out: Path, summary: dict[str, Any], database: Database) -> None:
        self.genesis = (out / "validator-0" / CURRENCY_GENESIS).read_bytes()
        self.app = IndexedApp(self.genesis)
        self.store = DurableBlockStore(ChainBlockLog(database.chain, self.app.chain_id))
        self.state = self.app.genesis_state()
        keys = [
            load_validator_keys(out / v["dir"] / "validator.key", SECRET)
            for v in summary["validators"]
        ]
        by_key = {k.bls.public_key: k.bls for k in keys}
        self.signers = [by_key[v.bls_public_key] for v in self.state.validators.validators]
        self.wallet = load_wallet(out / "wallets" / "account-0.wallet", SECRET)
        self.to = bytes.fromhex(summary["accounts"][1]["account"])
        self.last: CommitCertificate | None = None
        self.digests: list[bytes] = []

    def grow(self, to_height: int) -> None:
        while self.state.height <= to_height:
            height = self.state.height
            tx = Transaction.create(
                self.wallet,
                chain_id=self.app.chain_id,
                nonce=height - 1,
                fee=1,
                kind="transfer",
                body={"to": self.to, "amount": 5},
            )
            block = self.state.make_block(0, height * 1000, [tx.raw], self.last)
            votes = [
                Vote.create(k, self.app.chain_id, VoteKind.PRECOMMIT, height, 0, block.hash(), i)
                for i, k in enumerate(self.signers)
            ]
            bitmap = make_bitmap(range(len(votes)), len(votes))
            self.last = CommitCertificate(
                height, 0, block.hash(), bitmap, bls_aggregate(v.signature for v in votes)
            )
            self.store.save(block, self.last)
            self.state, _ = execute_block(self.state, self.app, block)
            self.digests.append(tx.hash)

    def snapshot(self) -> bytes:
        return StateSnapshot.take(self.state, self.app.inner.state.committed_items()).to_bytes()

    def restart(self) -> tuple[IndexedApp, ChainState]:
        fresh = IndexedApp(self.genesis)
        state, last = replay_store(self.store, fresh)
        assert state == self.state
        assert last == self.last
        assert fresh.inner.app_hash == self.app.inner.app_hash
        return fresh, state


def test_restart_loads_the_snapshot_and_replays_only_the_blocks_above(
    net: tuple[Path, dict[str, Any]], database: Database
) -> None:
    chain = Chain(*net, database)
    chain.grow(6)
    chain.store.save_snapshot(chain.snapshot())
    chain.grow(9)
    fresh, _ = chain.restart()
    # Blocks 1-6 came from the snapshot (not executed, so not indexed); 7-9 ran.
    assert [d in fresh.index for d in chain.digests] == [False] * 6 + [True] * 3
    assert fresh.index[chain.digests[-1]].height == 9
    # The restored application goes on like the original.
    chain.app = fresh
    chain.grow(10)


def test_a_corrupt_snapshot_is_refused_and_every_block_replayed(
    net: tuple[Path, dict[str, Any]], database: Database
) -> None:
    chain = Chain(*net, database)
    chain.grow(4)
    good = chain.snapshot()
    chain.grow(6)
    flipped = bytearray(good)
    flipped[len(flipped) // 2] ^= 0x01
    with pytest.raises(SnapshotError, match="checksum"):
        StateSnapshot.from_bytes(bytes(flipped))
    chain.store.save_snapshot(bytes(flipped))
    fresh, _ = chain.restart()
    assert all(d in fresh.index for d in chain.digests)  # full replay from genesis


def test_a_consistent_snapshot_of_a_different_state_is_refused(
    net: tuple[Path, dict[str, Any]], database: Database
) -> None:
    chain = Chain(*net, database)
    chain.grow(5)
    payload = canonical_decode(chain.snapshot()[32:])
    payload["items"] = [
        [k, v if not k.startswith(b"acct/") else v[:-1] + bytes([v[-1] ^ 1])]
        for k, v in payload["items"]
    ]
    raw = canonical_encode(payload)
    forged = hashlib.sha256(raw).digest() + raw  # intact checksum, wrong state
    chain.grow(7)
    snapshot = StateSnapshot.from_bytes(forged)
    with pytest.raises(SnapshotError, match="root"):
        snapshot.verify(chain.store.block(5), chain.store.block(6))
    chain.store.save_snapshot(forged)
    fresh, _ = chain.restart()
    assert all(d in fresh.index for d in chain.digests)


def test_a_snapshot_no_stored_header_commits_to_is_not_used(
    net: tuple[Path, dict[str, Any]], database: Database
) -> None:
    chain = Chain(*net, database)
    chain.grow(3)
    chain.store.save_snapshot(chain.snapshot())  # block 4 not stored yet
    snapshot = StateSnapshot.from_bytes(chain.snapshot())
    with pytest.raises(SnapshotError, match="no stored block"):
        snapshot.verify(chain.store.block(3), None)
    with pytest.raises(SnapshotError, match="not for the stored block"):
        snapshot.verify(chain.store.block(2), None)
    fresh, _ = chain.restart()
    assert all(d in fresh.index for d in chain.digests)


@pytest.mark.parametrize("data", [b"", bytes(32), bytes(33), b"\x00" * 40])
def test_garbage_is_a_typed_snapshot_error(data: bytes) -> None:
    with pytest.raises(SnapshotError):
        StateSnapshot.from_bytes(data)


# -- a real validator process ----------------------------------------------------------


def _api(node: NodeProcess) -> httpx.Client:
    headers = {"Authorization": f"Bearer {node.info['token']}"}
    return httpx.Client(base_url=node.info["url"], headers=headers, timeout=5.0)


@pytest.mark.slow
def test_a_restarted_validator_resumes_from_its_own_snapshot(
    net: tuple[Path, dict[str, Any]], wait_until: Callable[..., None]
) -> None:
    out, summary = net
    for v in summary["validators"]:
        toml = out / v["dir"] / "dchat.toml"
        toml.write_text(toml.read_text() + "\nsnapshot_interval = 5\n")
    nodes = [
        NodeProcess(out / v["dir"], "validator", passphrase=PASSPHRASE, listen=v["listen"])
        for v in summary["validators"]
    ]
    try:
        for node in nodes:
            node.start()
        log = nodes[3].data_dir / "node.log"
        written = re.compile(r"state snapshot at height (\d+) written")
        wait_until(lambda: written.search(log.read_text()) is not None, timeout=40)
        taken = int(written.findall(log.read_text())[0])
        with _api(nodes[3]) as api:  # a header above the snapshot must be stored
            wait_until(lambda: int(api.get("/v1/chain/status").json()["height"]) > taken)
        nodes[3].kill()  # returns once the process is gone
        nodes[3].start()
        with _api(nodes[3]) as api, _api(nodes[0]) as other:
            top = taken + 6
            wait_until(lambda: int(api.get("/v1/chain/status").json()["height"]) >= top, timeout=40)
            for h in range(taken - 1, top + 1):
                mine = api.get(f"/v1/chain/blocks/{h}").json()["hash"]
                assert mine == other.get(f"/v1/chain/blocks/{h}").json()["hash"]
        loaded = re.findall(r"state snapshot at height (\d+) loaded", log.read_text())
        assert loaded
        assert int(loaded[-1]) >= taken
    finally:
        for node in nodes:
            node.kill()


def test_sync_batches_are_stored_in_one_transaction_or_not_at_all(
    net: tuple[Path, dict[str, Any]], database: Database, tmp_path: Path
) -> None:
    chain = Chain(*net, database)
    chain.grow(6)
    pairs = chain.store.range(1, 6)
    with open_database(tmp_path / "synced.db") as other:
        synced = DurableBlockStore(ChainBlockLog(other.chain, chain.app.chain_id))
        with pytest.raises(ChainArgumentError, match="height order"):
            synced.save_many([pairs[0], pairs[2]])
        assert synced.height() == 0
        assert synced.range(1, 10) == []
        synced.save_many(pairs[:4])
        synced.save_many(pairs[2:])  # overlapping: stored ones are checked and skipped
        assert synced.height() == 6
        assert synced.range(1, 10) == pairs
