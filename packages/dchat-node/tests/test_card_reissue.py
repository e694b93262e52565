"""A card issued before stealth payments is re-issued with the meta-address on its next export.

The node's data directory is prepared as an older node left it (its stored
card has no ``stealth`` field); the node then serves ``GET /v1/identity``'s
answer from its own handler. No relay runs: the home relay is a closed port.
"""

from __future__ import annotations

import socket
from contextlib import ExitStack
from typing import TYPE_CHECKING

import trio

from dchat_chain.lowlevel import StealthKeys
from dchat_core import SystemClock
from dchat_identity import ContactCard, Identity
from dchat_node._runtime import build_node
from dchat_node.api._identity import identity_json
from dchat_node.config import NodeConfig
from dchat_node.user._role import UserRole
from dchat_storage import AsyncStore, open_database

if TYPE_CHECKING:
    from pathlib import Path

PASSPHRASE = b"card reissue test passphrase"


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def _old_node(data_dir: Path, relay: str) -> tuple[Identity, ContactCard]:
    """A data directory as a node of session 12 left it: a card without ``stealth``."""
    identity = Identity.generate()
    card = ContactCard.issue(identity, name="alice", relays=[relay])
    with open_database(data_dir / "node.db") as db:
        keystore = identity.to_keystore(PASSPHRASE)
        db.identity.save(str(identity.identity_id), keystore, card.to_bytes(), 0.0)
    return identity, card


async def _exported_twice(data_dir: Path, relay: str) -> tuple[str, str]:
    """Start the node, export its card twice, stop it; the two card texts."""
    with ExitStack() as stack:
        db = stack.enter_context(open_database(data_dir / "node.db"))
        config = NodeConfig.model_validate({"data_dir": data_dir, "role": "user", "relay": relay})
        node = build_node(config, AsyncStore(db), SystemClock(), PASSPHRASE)
        async with trio.open_nursery() as nursery:
            await node.start(nursery, PASSPHRASE)
            assert isinstance(node.role, UserRole)
            first = (await identity_json(node))["card"]
            second = (await identity_json(node))["card"]
            await node.role.user.pool.aclose()
            nursery.cancel_scope.cancel()
    return first, second


def test_an_old_card_is_reissued_with_the_stealth_address_and_stored(tmp_path: Path) -> None:
    relay = _closed_port()
    identity, old = _old_node(tmp_path, relay)
    assert old.stealth is None

    first, second = trio.run(_exported_twice, tmp_path, relay)
    card = ContactCard.from_text(first)  # the signature verifies
    meta = StealthKeys.from_seed(identity.signing_key.to_bytes()).meta_address.to_bytes()
    assert card.stealth == meta
    assert (card.name, card.relays, card.identity_id) == (old.name, old.relays, old.identity_id)
    assert second == first  # re-issued once, not on every export

    with open_database(tmp_path / "node.db") as db:  # kept across restarts
        record = db.identity.get()
        assert record is not None
        assert ContactCard.from_bytes(record.card).stealth == meta
