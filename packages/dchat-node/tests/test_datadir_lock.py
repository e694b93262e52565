"""One node per data directory: the lock helper, and a second ``dchat-node run`` refused."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dchat_node import NodeProcess, NodeStateError
from dchat_node._datadir_lock import datadir_lock
from dchat_testing.pytest_plugin import PASSPHRASE

_HOLDER = """
import sys
from pathlib import Path
from dchat_node._datadir_lock import datadir_lock

with datadir_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock on ``tmp_path`` until it is killed."""
    with subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "locked\n"
            yield proc
        finally:
            proc.kill()


def test_second_holder_is_refused_until_the_first_dies(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    with (
        pytest.raises(NodeStateError, match=f"{tmp_path} is in use") as refused,
        datadir_lock(tmp_path),
    ):
        pass
    assert refused.value.code == "data_dir_in_use"
    assert f"pid {holder.pid}" in str(refused.value)
    holder.kill()  # no clean exit: the OS drops the lock with the process
    holder.wait(10)
    with datadir_lock(tmp_path):
        assert (tmp_path / "node.lock").read_text() == f"{os.getpid()}\n"


def test_lock_file_is_private_and_reusable(tmp_path: Path) -> None:
    with datadir_lock(tmp_path):
        pass
    assert stat.S_IMODE((tmp_path / "node.lock").stat().st_mode) == 0o600
    with datadir_lock(tmp_path):
        pass


def test_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot open"), datadir_lock(tmp_path / "absent"):
        pass


@pytest.mark.slow
def test_second_node_on_a_data_dir_refuses_and_leaves_the_first_alone(
    make_user: Callable[[str], NodeProcess], relay: NodeProcess
) -> None:
    first = make_user("alice")
    runfile = first.data_dir / "api.json"
    before = runfile.read_bytes()
    command = [sys.executable, "-m", "dchat_node", "run", "--role", "user"]
    command += ["--data-dir", str(first.data_dir), "--relay", relay.info["link"]]
    started = time.monotonic()
    second = subprocess.run(
        command,
        env={**os.environ, "DCHAT_PASSPHRASE": PASSPHRASE},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 1
    # At once: no database open, no API start (the bound is loose: starting Python and importing
    # the node alone took 18 s at load 12 on this 2-core machine).
    assert time.monotonic() - started < 25
    assert f"{first.data_dir} is in use by another node (pid {first.pid})" in second.stderr
    assert "Traceback" not in second.stderr
    assert runfile.read_bytes() == before
    with first.client() as client:
        assert client.status()["role"] == "user"
