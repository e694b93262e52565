"""The ``dchat`` and ``dchat-node`` command lines, driving real node processes."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dchat_node import NodeProcess
from dchat_node.cli import app, node_app
from dchat_node.cli._node import _settle_heap

runner = CliRunner()


def _dchat(node: NodeProcess, *args: str) -> str:
    result = runner.invoke(app, ["--data-dir", str(node.data_dir), *args])
    assert result.exit_code == 0, result.output
    return result.output


def _groups_by_command_line(
    alice: NodeProcess, bob: NodeProcess, wait_until: Callable[..., None]
) -> None:
    """``dchat group``: create, invite, join, send, show, members, remove."""
    gid = json.loads(_dchat(alice, "group", "create", "lunch", "--json"))["group_id"]
    assert "invited bob" in _dchat(alice, "group", "invite", "lunch", "bob")

    def invited() -> bool:
        return [g["status"] for g in json.loads(_dchat(bob, "group", "list", "--json"))] == [
            "invited"
        ]

    wait_until(invited)
    assert gid in _dchat(bob, "group", "join", gid[:12])
    _dchat(alice, "group", "send", "lunch", "noon at the usual place?")

    def bob_reads() -> list[str]:
        shown = json.loads(_dchat(bob, "group", "show", "lunch", "--json"))
        return [m["text"] for m in shown["messages"]]

    wait_until(lambda: bob_reads() == ["noon at the usual place?"])
    roles = {
        m["name"]: m["role"] for m in json.loads(_dchat(bob, "group", "members", "lunch", "--json"))
    }
    assert roles == {"alice": "admin", "bob": "member"}
    refused = runner.invoke(
        app, ["--data-dir", str(bob.data_dir), "group", "remove", "lunch", "alice"]
    )
    assert refused.exit_code == 1  # a member does not remove the admin
    assert "not_allowed" in refused.output
    assert "removed" in _dchat(alice, "group", "remove", "lunch", "bob")


@pytest.mark.slow
def test_init_contact_send_inbox(
    make_user: Callable[[str], NodeProcess], wait_until: Callable[..., None]
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    assert "identity dcid1" in _dchat(alice, "init", "--name", "alice")
    _dchat(bob, "init", "--name", "bob")
    bob_card = _dchat(bob, "card").strip()
    assert bob_card.startswith("dchat-card:")
    assert "added bob" in _dchat(alice, "contact", "add", "bob", bob_card)
    alice_card = _dchat(alice, "card").strip()
    assert "added alice" in _dchat(bob, "contact", "add", "alice", alice_card)
    assert "bob" in _dchat(alice, "contact", "list")
    assert "queued dcmsg1" in _dchat(alice, "send", "bob", "hello from the command line")

    def bob_has_it() -> bool:
        inbox = json.loads(_dchat(bob, "inbox", "--messages", "--json"))
        return [m["text"] for m in inbox] == ["hello from the command line"]

    wait_until(bob_has_it)
    assert json.loads(_dchat(bob, "status"))["received"] == 1
    (line,) = json.loads(_dchat(bob, "inbox", "--json"))  # conversations
    assert (line["peer_name"], line["unread"], line["last_direction"]) == ("alice", 1, "in")
    shown = json.loads(_dchat(bob, "show", "alice", "--json"))  # showing marks it read
    mid = shown["messages"][0]["message_id"]
    assert shown["marked_read"] == [mid]
    assert json.loads(_dchat(bob, "inbox", "--json"))[0]["unread"] == 0
    found = json.loads(_dchat(bob, "search", "LINE command", "--peer", "alice", "--json"))
    assert [(r["message_id"], r["snippet"]) for r in found["results"]] == [
        (mid, "hello from the command line")
    ]
    assert "indexed 1 messages" in _dchat(bob, "search", "command", "--rebuild")
    assert "reacted 👍" in _dchat(bob, "react", "alice", mid, "👍")
    refused = runner.invoke(app, ["--data-dir", str(bob.data_dir), "delete", "alice", mid])
    assert refused.exit_code == 1  # only the author deletes for everyone
    assert "only your own" in refused.output
    _groups_by_command_line(alice, bob, wait_until)
    assert "renamed alice to al" in _dchat(bob, "contact", "rename", "alice", "al")
    assert "blocked al" in _dchat(bob, "contact", "block", "al")
    assert "removed al" in _dchat(bob, "contact", "remove", "al")
    assert "al" not in _dchat(bob, "contact", "list")


def test_a_running_node_freezes_its_start_up_heap_out_of_full_collections() -> None:
    # ``dchat-node run`` does this once the node is up (docs/rationale.md: full
    # passes over the start-up heap stalled a relay under a flood).
    assert gc.get_freeze_count() == 0
    try:
        _settle_heap()
        assert gc.get_freeze_count() > 10_000  # modules, classes, config: all of it
    finally:
        gc.unfreeze()


def test_no_running_node_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--data-dir", str(tmp_path), "status"])
    assert result.exit_code == 1
    assert "error:" in result.output
    assert "no running node" in result.output


def test_run_without_passphrase_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DCHAT_PASSPHRASE", raising=False)
    result = runner.invoke(node_app, ["run", "--data-dir", str(tmp_path), "--role", "relay"])
    assert result.exit_code == 1
    assert "DCHAT_PASSPHRASE" in result.output


def test_run_with_bad_config_names_the_problem(tmp_path: Path) -> None:
    result = runner.invoke(node_app, ["run", "--data-dir", str(tmp_path), "--role", "wizard"])
    assert result.exit_code == 1
    assert "role" in result.output


def test_node_init_writes_a_loadable_config(tmp_path: Path) -> None:
    result = runner.invoke(
        node_app, ["init", "--data-dir", str(tmp_path), "--relay", "127.0.0.1:7400"]
    )
    assert result.exit_code == 0, result.output
    assert 'relay = "127.0.0.1:7400"' in (tmp_path / "dchat.toml").read_text().splitlines()
    again = runner.invoke(node_app, ["init", "--data-dir", str(tmp_path)])
    assert again.exit_code == 1
