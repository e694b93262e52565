"""A bot in a private group across real processes: a relay, alice and bob, the bot's node.

The bot asks for commands only; alice sees that with ``dchat bot info`` and
adds it with ``dchat group add-bot`` (shown again, then confirmed). bob, who
is not the bot's contact, sends a command: the bot's program gets it from
``getUpdates`` as a ``group`` chat and answers into the group. The plain
texts around it never reach the bot's node (its store holds only the
commands). Granted ``read all`` (``dchat group grant-bot``), it reads the
plain texts sent after that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest
from typer.testing import CliRunner

from dchat_node.cli import app
from dchat_sdk import ApiError

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_node import NodeProcess
    from dchat_sdk import RemoteClient

pytestmark = pytest.mark.slow
runner = CliRunner()


def _cli(node: NodeProcess, *args: str, input: str | None = None) -> str:
    done = runner.invoke(app, ["--data-dir", str(node.data_dir), *args], input=input)
    assert done.exit_code == 0, done.output
    return done.output


def _bot(node: NodeProcess, token: str, method: str, **params: Any) -> Any:
    url = f"{node.info['url']}/bot{token}/{method}"
    return httpx.post(url, json=params, timeout=30).json()


def _texts(client: RemoteClient, gid: str) -> list[str]:
    return [m["text"] for m in client.group_messages(gid)]


def test_a_commands_only_bot_never_sees_plain_texts_until_granted_all(
    make_user: Callable[[str], NodeProcess], wait_until: Callable[..., None]
) -> None:
    alice, bob, helper = (make_user(n) for n in ("alice", "bob", "helper"))
    with alice.client() as a, bob.client() as b, helper.client() as h:
        for client, name in ((a, "alice"), (b, "bob"), (h, "helper")):
            client.create_identity(name)
        for x, y, name_x, name_y in ((a, b, "alice", "bob"), (a, h, "alice", "helper")):
            x.add_contact(name_y, y.card())
            y.add_contact(name_x, x.card())
        token = _cli(helper, "bot", "create", "helper").split("token: ", 1)[1].split()[0]
        _cli(helper, "bot", "set-groups", "--read", "commands", "--post")
        h.set_bot_commands({"roll": "Roll a die"})
        info = _cli(alice, "bot", "info", "helper")
        assert "in groups it asks for: reads commands to it only, posts" in info
        assert "/roll  Roll a die" in info

        gid = a.create_group("team")
        a.invite_to_group(gid, "bob")
        wait_until(lambda: any(g["group_id"] == gid for g in b.groups()), timeout=30)
        b.join_group(gid)
        shown = _cli(alice, "group", "add-bot", gid, "helper", input="y\n")
        assert "it asks for: reads commands to it only, posts" in shown
        assert "granted: reads commands to it only, posts" in shown
        wait_until(lambda: any(g["group_id"] == gid for g in h.groups()), timeout=30)
        wait_until(lambda: len(b.group(gid)["members"]) == 3, timeout=30)

        a.send_to_group(gid, "plain one")
        b.send_to_group(gid, "/roll@helper")  # bob is not the bot's contact
        a.send_to_group(gid, "/roll")
        wait_until(lambda: len(_texts(h, gid)) == 2, timeout=40)
        updates = _bot(helper, token, "getUpdates", timeout=10)["result"]
        assert sorted(u["message"]["text"] for u in updates) == ["/roll", "/roll@helper"]
        chat = updates[0]["message"]["chat"]
        assert (chat["type"], chat["title"]) == ("group", "team")
        assert chat["id"] < 0
        sent = _bot(helper, token, "sendMessage", chat_id=chat["id"], text="rolled a 4")
        assert sent["ok"] is True, sent
        for client in (a, b):
            wait_until(lambda client=client: "rolled a 4" in _texts(client, gid), timeout=30)
        wait_until(lambda: len(_texts(a, gid)) == 4, timeout=30)  # bob's command reached alice
        assert sorted(_texts(h, gid)) == ["/roll", "/roll@helper", "rolled a 4"]  # no plain text

        granted = _cli(alice, "group", "grant-bot", gid, "helper", "--read", "all")
        assert "reads every message" in granted
        members = lambda: {m["name"]: m.get("bot") for m in h.group(gid)["members"]}  # noqa: E731
        wait_until(lambda: (members()["helper"] or {}).get("read") == "all", timeout=30)
        b.send_to_group(gid, "plain two")
        wait_until(lambda: "plain two" in _texts(h, gid), timeout=40)
        assert "plain one" not in _texts(h, gid)
        offset = updates[-1]["update_id"] + 1
        later = _bot(helper, token, "getUpdates", offset=offset, timeout=10)["result"]
        assert [u["message"]["text"] for u in later] == ["plain two"]

        # Refusals: an unknown group, a grant the API does not know, a bot without post.
        stranger = _bot(helper, token, "sendMessage", chat_id=-1, text="anyone?")
        assert (stranger["error_code"], stranger["description"]) == (
            400,
            "Bad Request: chat not found",
        )
        with pytest.raises(ApiError) as bad:
            a.add_bot_to_group(gid, "helper", read="everything")
        assert bad.value.status == 422
        _cli(alice, "group", "grant-bot", gid, "helper", "--no-post")
        wait_until(lambda: members()["helper"]["post"] is False, timeout=30)
        mute = _bot(helper, token, "sendMessage", chat_id=chat["id"], text="still here")
        assert mute["error_code"] == 403
