"""Real node processes for tests: a whole local test network of validators.

:func:`running_validators` starts every validator of a network written by
``dchat-node init-testnet`` and always kills them all afterwards.
:func:`currency_copies` gives a chat testnet a currency chain run by the same
validator keys (the relay directory needs both chains), :func:`start_all`
starts many nodes at once (each start is mostly the interpreter importing the
node: started one by one, a network of a dozen processes takes a dozen times
that), and :func:`certified` tells whether a validator's chain has a
certified block yet.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from dchat_node import NodeProcess
from dchat_node.cli._process import free_ports

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from pathlib import Path

__all__ = ("certified", "currency_copies", "running_validators", "start_all", "toml_listen")


@contextlib.contextmanager
def running_validators(
    out: Path,
    summary: Mapping[str, Any],
    passphrase: str,
    *,
    kinds: Sequence[type[NodeProcess]] | None = None,
    timeout: float = 30.0,
) -> Iterator[list[NodeProcess]]:
    """Start every validator of a testnet written by ``init-testnet``; kill them all on exit.

    ``summary`` is what :func:`init_testnet` returned for ``out``; ``kinds``
    (one per validator, default :class:`NodeProcess`) lets a test run its own
    subclass for some of them.
    """
    validators = summary["validators"]
    chosen = list(kinds) if kinds is not None else [NodeProcess] * len(validators)
    nodes = [
        kind(out / v["dir"], "validator", passphrase=passphrase, listen=v["listen"])
        for kind, v in zip(chosen, validators, strict=True)
    ]
    try:
        for node in nodes:
            node.start(timeout=timeout)
        yield nodes
    finally:
        for node in nodes:
            node.kill()


def currency_copies(out: Path, summary: Mapping[str, Any]) -> list[Path]:
    """The validators of the chat testnet in ``out``, copied to run its currency genesis.

    Each ``out/currency-validator-<i>`` holds validator ``i``'s keys and
    configuration with ``genesis-currency.cbor`` as its chain and its own
    free loopback ports (peers rewritten to match). Returns the directories.
    """
    old = [v["listen"] for v in summary["validators"]]
    new = [f"127.0.0.1:{port}" for port in free_ports(len(old), "127.0.0.1")]
    homes = []
    for v in summary["validators"]:
        home = out / f"currency-{v['dir']}"
        shutil.copytree(out / v["dir"], home)
        (home / "genesis.cbor").write_bytes((out / "genesis-currency.cbor").read_bytes())
        toml = (home / "dchat.toml").read_text()
        for before, after in zip(old, new, strict=True):
            toml = toml.replace(before, after)
        (home / "dchat.toml").write_text(toml)
        homes.append(home)
    return homes


def toml_listen(directory: Path) -> str:
    """The ``listen`` address in ``directory/dchat.toml`` (as ``init-testnet`` writes it)."""
    for line in (directory / "dchat.toml").read_text().splitlines():
        if line.startswith("listen"):
            return line.split('"')[1]
    raise ValueError(f"no listen address in {directory / 'dchat.toml'}")


def start_all(nodes: Sequence[NodeProcess], timeout: float = 120.0) -> None:
    """Start ``nodes`` at once and wait until every one is ready (or one failed).

    A failure is raised after the other starts have ended; the caller kills
    all of ``nodes`` as usual (a node that never started is a no-op to kill).
    """
    if not nodes:
        return
    with ThreadPoolExecutor(len(nodes)) as pool:
        for _ in pool.map(lambda node: node.start(timeout=timeout), nodes):
            pass


def certified(node: NodeProcess) -> bool:
    """Whether the validator ``node`` reports a certified block (its chain is live)."""
    url = node.info["url"] + "/v1/chain/status"  # the node's own http API (api.json)
    headers = {"Authorization": f"Bearer {node.info['token']}"}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
        status = json.loads(answer.read())
    return bool((status.get("certified_height") or 0) >= 1)
