"""Real-process chaos: node processes on loopback, killed, frozen and restarted.

:class:`ChaosHarness` starts ``dchat-node`` processes (through
``dchat_node.NodeProcess``, imported lazily: dchat-testing may import the node,
the node never imports dchat-testing) in one base directory and does to them
what the real world does: SIGKILL (power cut), SIGSTOP/SIGCONT (a stalled VM, a
long GC pause, a laptop lid) and restart from the same data directory. A relay
keeps its port across restarts so users find it again.
"""

from __future__ import annotations

import os
import secrets
import signal
from typing import TYPE_CHECKING

from ._errors import ChaosError

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

    from dchat_node import NodeProcess

__all__ = ("ChaosHarness",)


class ChaosHarness:
    """Starts node processes under ``base_dir`` and stops them all on :meth:`close`.

    Args:
        base_dir: Parent of the nodes' data directories.
        passphrase: Unlocks every node's keys (random by default).
        poll_interval: Users' mailbox poll interval, seconds.
    """

    def __init__(
        self, base_dir: Path, *, passphrase: str | None = None, poll_interval: float = 0.2
    ) -> None:
        self.base_dir = base_dir
        self.passphrase = passphrase or secrets.token_urlsafe(16)
        self.poll_interval = poll_interval
        self.nodes: dict[str, NodeProcess] = {}
        self._paused: set[str] = set()

    def relay(self, name: str = "relay") -> NodeProcess:
        """Start a relay on a fixed free loopback port."""
        from dchat_node import NodeProcess, free_port

        node = NodeProcess(
            self.base_dir / name,
            "relay",
            passphrase=self.passphrase,
            listen=f"127.0.0.1:{free_port()}",
        )
        return self._start(name, node)

    def user(self, name: str, relay: NodeProcess) -> NodeProcess:
        """Start a user node whose home relay is ``relay``."""
        from dchat_node import NodeProcess

        node = NodeProcess(
            self.base_dir / name,
            "user",
            passphrase=self.passphrase,
            relay=relay.info["link"],
            poll_interval=self.poll_interval,
        )
        return self._start(name, node)

    def _start(self, name: str, node: NodeProcess) -> NodeProcess:
        if name in self.nodes:
            raise ChaosError(f"a node named {name!r} exists already")
        self.nodes[name] = node
        self._launch(node)
        return node

    @staticmethod
    def _launch(node: NodeProcess) -> None:
        from dchat_node import DchatNodeError

        try:
            node.start()
        except DchatNodeError as exc:
            raise ChaosError(f"node did not start: {exc}") from exc

    def _name(self, node: NodeProcess) -> str:
        for name, known in self.nodes.items():
            if known is node:
                return name
        raise ChaosError("that node was not started by this harness")

    def _pid(self, node: NodeProcess) -> int:
        if node.pid is None:
            raise ChaosError(f"{self._name(node)} is not running")
        return node.pid

    def kill(self, node: NodeProcess) -> None:
        """SIGKILL: the process dies with no chance to clean up."""
        self._paused.discard(self._name(node))
        node.kill()

    def pause(self, node: NodeProcess) -> None:
        """SIGSTOP: the process freezes; its sockets stay open but nothing is served."""
        os.kill(self._pid(node), signal.SIGSTOP)
        self._paused.add(self._name(node))

    def resume(self, node: NodeProcess) -> None:
        """SIGCONT: a paused process carries on."""
        os.kill(self._pid(node), signal.SIGCONT)
        self._paused.discard(self._name(node))

    def restart(self, node: NodeProcess) -> None:
        """SIGKILL if running, then start again on the same data directory."""
        self.kill(node)
        self._launch(node)

    def close(self) -> None:
        """Kill every node (resuming paused ones so they can die)."""
        for name, node in self.nodes.items():
            if name in self._paused and node.pid is not None:
                os.kill(node.pid, signal.SIGCONT)
            node.kill()
        self._paused.clear()

    def __enter__(self) -> ChaosHarness:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
