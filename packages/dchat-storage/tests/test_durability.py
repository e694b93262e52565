"""Acknowledged writes survive SIGKILL at random moments.

Two writer processes run at a time on the same file, so kills also land while
the other process holds, or waits for, the write lock. Every fourth writer is
killed without waiting for it to start, which hits start-up and migration.

SIGKILL leaves the OS page cache intact, so this proves "acknowledged means
committed" and crash consistency, not fsync behaviour under power loss (that
rests on ``synchronous=FULL``, checked in test_database).
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dchat_storage import open_database

ROUNDS = 20
WRITER = Path(__file__).with_name("_crash_writer.py")
START_TIMEOUT = 20.0


def _read_ready(child: subprocess.Popen[bytes]) -> bytes:
    """Wait (bounded) for the child's ``ready`` line; return any bytes after it."""
    assert child.stdout is not None
    fd, buf = child.stdout.fileno(), b""
    deadline = time.monotonic() + START_TIMEOUT
    while b"\n" not in buf:
        readable, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        assert readable, "writer did not start in time"
        chunk = os.read(fd, 4096)
        assert chunk, "writer exited before it was ready"
        buf += chunk
    head, _, rest = buf.partition(b"\n")
    assert head == b"ready"
    return rest


def _run_and_kill(db_path: Path, round_no: int, rng: random.Random) -> set[bytes]:
    """Start a writer, SIGKILL it at a random moment; return the ids it acknowledged."""
    child = subprocess.Popen(
        [sys.executable, str(WRITER), str(db_path), str(round_no)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,  # unbuffered, so _read_ready's raw reads lose nothing
    )
    early = b""
    try:
        if round_no % 4 == 3:
            time.sleep(rng.uniform(0.0, 1.2))
        else:
            early = _read_ready(child)
            time.sleep(rng.uniform(0.0, 0.4))
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == -signal.SIGKILL, err.decode(errors="replace")
    # Drop the ready line and a torn last line: neither is an acknowledgement.
    lines = (early + out).decode().split("\n")[:-1]
    return {bytes.fromhex(line) for line in lines if line != "ready"}


@pytest.mark.slow
def test_acknowledged_puts_survive_sigkill(tmp_path: Path) -> None:
    db_path = tmp_path / "relay.sqlite3"
    seed = random.randrange(2**32)
    rngs = [random.Random(seed + n) for n in range(ROUNDS)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        rounds = pool.map(lambda n: _run_and_kill(db_path, n, rngs[n]), range(ROUNDS))
        acknowledged = set().union(*rounds)
    assert acknowledged, "no put was ever acknowledged, so the test proved nothing"
    with open_database(db_path) as db:
        assert db.integrity_check() == "ok"
        stored = {e.entry_id for e in db.mailboxes.fetch(b"crash-box", limit=1_000_000)}
    missing = acknowledged - stored
    assert not missing, f"seed {seed}: {len(missing)} of {len(acknowledged)} acks lost"
