"""Nodes as real OS processes: start, wait until ready, stop, kill, restart.

Used by ``dchat demo`` and by the integration tests (through dchat-testing).
A node is ready when its ``api.json`` names the pid of the process we started
(a stale file left by a killed predecessor is ignored).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from .._errors import DchatNodeError

if TYPE_CHECKING:
    from pathlib import Path

    from dchat_sdk import RemoteClient

__all__ = ("NodeProcess", "free_port", "free_ports")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports free on ``host`` right now.

    All are held at once while they are picked, so none is handed out twice
    (one at a time, the kernel may give a just-released port again).
    """
    with contextlib.ExitStack() as held:
        ports: list[int] = []
        for _ in range(count):
            sock = held.enter_context(socket.socket())
            sock.bind((host, 0))
            ports.append(sock.getsockname()[1])
        return ports


class NodeProcess:
    """A ``dchat-node run`` child process with its own data directory.

    Args:
        data_dir: The node's data directory (created if missing, made private).
        role: ``"user"`` or ``"relay"``.
        passphrase: Unlocks the node's keys (passed through the environment).
        listen: ``--listen`` address.
        relay: For user nodes, the home relay ``HOST:PORT``.
        database_url: A PostgreSQL URL for the node's database (passed in
            ``DCHAT_DATABASE_URL``, so a password stays out of the process list).
    """

    def __init__(
        self,
        data_dir: Path,
        role: str,
        *,
        passphrase: str,
        listen: str = "127.0.0.1:0",
        relay: str | None = None,
        poll_interval: float = 0.5,
        database_url: str | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.role = role
        self._passphrase = passphrase
        self._listen = listen
        self._relay = relay
        self._poll = poll_interval
        self._database_url = database_url
        self._proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}

    @property
    def pid(self) -> int | None:
        """The child's pid while it runs."""
        return None if self._proc is None else self._proc.pid

    def _command(self) -> list[str]:
        cmd = [sys.executable, "-m", "dchat_node", "run", "--role", self.role]
        cmd += ["--data-dir", str(self.data_dir), "--listen", self._listen]
        cmd += ["--poll-interval", str(self._poll)]
        if self._relay:
            cmd += ["--relay", self._relay]
        return cmd

    def start(self, timeout: float = 60.0) -> dict[str, Any]:
        """Start the process and wait until its API is up; returns ``api.json``.

        The data directory is created, or made, private (0700): the node refuses
        one that other users can reach.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.data_dir.chmod(0o700)
        env = {**os.environ, "DCHAT_PASSPHRASE": self._passphrase}
        if self._database_url is not None:
            env["DCHAT_DATABASE_URL"] = self._database_url
        log_fd = os.open(self.data_dir / "node.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(log_fd, "ab") as log:
            self._proc = subprocess.Popen(
                self._command(), env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise DchatNodeError(
                    f"{self.role} node exited early; see {self.data_dir}/node.log; it ends:\n"
                    + self.log_tail()
                )
            info = self._read_info()
            if info.get("pid") == self._proc.pid:
                self.info = info
                return info
            time.sleep(0.05)
        self.kill()
        raise DchatNodeError(f"{self.role} node did not become ready within {timeout}s")

    def log_tail(self, lines: int = 12) -> str:
        """The last ``lines`` lines of the node's log (what it said before it stopped)."""
        try:
            text = (self.data_dir / "node.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _read_info(self) -> dict[str, Any]:
        try:
            info: dict[str, Any] = json.loads((self.data_dir / "api.json").read_text())
            return info
        except (OSError, ValueError):
            return {}

    def client(self, timeout: float = 10.0) -> RemoteClient:
        """A client for this node's API."""
        # Imported here: every node process imports this module (dchat_node
        # exports NodeProcess), and a node never needs the SDK.
        from dchat_sdk import RemoteClient

        return RemoteClient(self.info["url"], self.info["token"], timeout=timeout)

    def stop(self, timeout: float = 15.0) -> int:
        """Stop gracefully (SIGTERM), killing if it does not exit in time."""
        return self._end(signal.SIGTERM, timeout)

    def kill(self) -> int:
        """SIGKILL: no chance to clean up, like a power cut."""
        return self._end(signal.SIGKILL, 10.0)

    def _end(self, signum: signal.Signals, timeout: float) -> int:
        if self._proc is None:
            return 0
        proc, self._proc = self._proc, None
        if proc.poll() is None:
            proc.send_signal(signum)
            try:
                return proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
        return proc.wait(10)

    def __enter__(self) -> NodeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
