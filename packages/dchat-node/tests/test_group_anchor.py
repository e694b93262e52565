"""An anchored group with real processes: a chat-chain validator, a relay, two user nodes.

Alice creates a group with ``dchat group create --anchored``; her node (the
sequencer) registers her identity on the chain, creates the group's channel
and commits each batch's Merkle root with ``commit_order`` (channel
transactions are paid by the identity's registration work, not fees); bob's node checks
every list against the chain through its light client. Both show every
message anchored, in one order, with no equivocation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from dchat_chain.lowlevel import NetPlan
from dchat_crypto import KdfParams
from dchat_node.cli import app
from dchat_node.cli._testnet import init_testnet
from dchat_testing import running_validators

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from dchat_node import NodeProcess

pytestmark = pytest.mark.slow

PASSPHRASE = "anchor test passphrase"
runner = CliRunner()


@pytest.fixture(scope="module")
def chat_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A four-validator chat chain (cheap work for identities); its data directory."""
    out = tmp_path_factory.mktemp("anchor") / "chain"
    plan = NetPlan(validators=4, accounts=0, chain="chat", pow_bits=4, handle_pow_bits=4)
    summary = init_testnet(
        out, plan, PASSPHRASE.encode(), kdf=KdfParams.TESTING, block_interval=0.2
    )
    with running_validators(out, summary, PASSPHRASE, timeout=90.0):
        yield out / "validator-0"


def _user(
    make_user: Callable[[str], NodeProcess], tmp_path: Path, name: str, chain: Path
) -> NodeProcess:
    data_dir = tmp_path / name
    data_dir.mkdir(mode=0o700)
    lines = [f'chat_node = "{chain}"', "group_anchor_interval = 0.5"]
    (data_dir / "dchat.toml").write_text("[node]\n" + "\n".join(lines) + "\n")
    node = make_user(name)
    with node.client() as api:
        api.create_identity(name)
    return node


def _dchat(node: NodeProcess, *args: str) -> str:
    result = runner.invoke(app, ["--data-dir", str(node.data_dir), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_an_anchored_group_commits_and_checks_its_order_on_the_chain(
    chat_node: Path,
    make_user: Callable[[str], NodeProcess],
    tmp_path: Path,
    wait_until: Callable[..., None],
) -> None:
    alice = _user(make_user, tmp_path, "alice", chat_node)
    bob = _user(make_user, tmp_path, "bob", chat_node)
    with alice.client() as a, bob.client() as b:
        a.add_contact("bob", b.card())
        b.add_contact("alice", a.card())
        gid = _dchat(alice, "group", "create", "team", "--anchored").strip()
        assert a.group(gid)["anchor"]["enabled"]
        a.invite_to_group(gid, "bob")
        wait_until(lambda: any(g["group_id"] == gid for g in b.groups()), timeout=30)
        b.join_group(gid)
        wait_until(lambda: len(a.group(gid)["members"]) == 2, timeout=30)
        a.send_to_group(gid, "one")
        b.send_to_group(gid, "two")

        def anchored(client: object) -> bool:
            rows = client.group_messages(gid)  # type: ignore[attr-defined]
            return len(rows) == 2 and all(r["anchored"] is not None for r in rows)

        try:
            for client in (a, b):
                wait_until(lambda client=client: anchored(client), timeout=90)
        except AssertionError:
            for node in (alice, bob):  # what the nodes said (not the HTTP chatter)
                log = (node.data_dir / "node.log").read_text(errors="replace").splitlines()
                print("\n".join(x for x in log if "httpx" not in x)[-4000:])
            raise
        orders = [sorted((r["anchored"], r["text"]) for r in c.group_messages(gid)) for c in (a, b)]
        assert orders[0] == orders[1]
        for client in (a, b):
            view = client.group(gid)["anchor"]
            assert view["anchored"] == 2
            assert view["equivocations"] == []
            assert view["missing"] == []
    shown = _dchat(bob, "group", "show", gid)
    assert "⚓" in shown
    assert "anchored on the chat chain: 2 messages" in shown
