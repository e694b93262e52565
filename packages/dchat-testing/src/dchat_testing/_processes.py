"""Real node processes for tests: a whole local test network of validators.

:func:`running_validators` starts every validator of a network written by
``dchat-node init-testnet`` and always kills them all afterwards.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from dchat_node import NodeProcess

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from pathlib import Path

__all__ = ("running_validators",)


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
