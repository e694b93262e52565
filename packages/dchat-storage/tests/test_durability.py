"""Acknowledged writes survive SIGKILL at random moments.

60 writer processes, three at a time, on the same sealed (encrypted) file, so
kills also land while another process holds, or waits for, the write lock.
Each writer alternates relay mailbox puts and sealed message inserts. Every
fourth writer is killed without waiting for it to open the database, which
hits migration and unlocking. Writers are forked from a zygote that imported
everything once (``_crash_writer.py``), so 60 rounds fit in well under a minute.

SIGKILL leaves the OS page cache intact, so this proves "acknowledged means
committed" and crash consistency, not fsync behaviour under power loss (that
rests on ``synchronous=FULL``, checked in test_database).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dchat_storage import open_database
from dchat_storage.lowlevel import StorageKey
from dchat_testing import wait_until

ROUNDS = 60
PARALLEL = 3
KEY = StorageKey.generate()
WRITER = Path(__file__).with_name("_crash_writer.py")
START_TIMEOUT = 20.0


class Zygote:
    """The forking parent of the writers; spawns are serialized by a lock."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(db_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "DCHAT_TEST_KEY": KEY.to_bytes().hex()},
            text=True,
        )
        self._lock = threading.Lock()
        assert self._readline() == "ready"

    def _readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def spawn(self, round_no: int) -> int:
        assert self.proc.stdin is not None
        with self._lock:
            self.proc.stdin.write(f"{round_no}\n")
            self.proc.stdin.flush()
            return int(self._readline())

    def close(self) -> None:
        self.proc.kill()
        self.proc.communicate(timeout=10)


@pytest.fixture
def zygote(tmp_path: Path) -> Iterator[Zygote]:
    z = Zygote(tmp_path / "node.db")
    yield z
    z.close()


def _acks(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return text.split("\n")[:-1]  # a torn last line is not an acknowledgement


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _wait_gone(pid: int) -> None:
    wait_until(lambda: _gone(pid), timeout=10, interval=0.005, what=f"writer {pid} gone")


def _run_and_kill(zygote: Zygote, round_no: int, rng: random.Random) -> set[str]:
    """Fork a writer, SIGKILL it at a random moment; return the writes it acknowledged."""
    acks = zygote.db_path.with_name(f"{zygote.db_path.name}.acks-{round_no}")
    pid = zygote.spawn(round_no)
    try:
        if round_no % 4 == 3:
            time.sleep(rng.uniform(0.0, 0.15))  # during open: migration, unlocking
        else:
            wait_until(
                lambda: "ready" in _acks(acks),
                timeout=START_TIMEOUT,
                interval=0.002,
                what="the writer opened the database",
            )
            time.sleep(rng.uniform(0.0, 0.4))
    finally:
        with contextlib.suppress(ProcessLookupError):  # it died on its own: reported below
            os.kill(pid, signal.SIGKILL)
    _wait_gone(pid)
    lines = _acks(acks)
    assert not [line for line in lines if line.startswith("died")], lines[-1]
    return {line for line in lines if line != "ready"}


@pytest.mark.slow
def test_acknowledged_writes_survive_sigkill(zygote: Zygote) -> None:
    seed = random.randrange(2**32)
    rngs = [random.Random(seed + n) for n in range(ROUNDS)]
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        rounds = pool.map(lambda n: _run_and_kill(zygote, n, rngs[n]), range(ROUNDS))
        acknowledged: set[str] = set().union(*rounds)
    kinds = {line.split()[0] for line in acknowledged}
    assert kinds == {"e", "m"}, "both kinds of write must be acknowledged to prove anything"
    with open_database(zygote.db_path, key=KEY) as db:
        assert db.integrity_check() == "ok"
        stored = {f"e {e.entry_id.hex()}" for e in db.mailboxes.fetch(b"crash-box", 1_000_000)}
        for message in db.messages.list(limit=1_000_000):
            assert message.body == f"body of {message.message_id.hex()}"  # decrypts intact
            stored.add(f"m {message.message_id.hex()}")
    missing = acknowledged - stored
    assert not missing, f"seed {seed}: {len(missing)} of {len(acknowledged)} acks lost"
