"""A bot on its own node: a user writes to it, a Bot API client answers (real processes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest
from typer.testing import CliRunner

from dchat_node.cli import app

from ._webhook_scenario import check_webhooks

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_node import NodeProcess

runner = CliRunner()


def _bot(node: NodeProcess, token: str, method: str, **params: Any) -> httpx.Response:
    url = f"{node.info['url']}/bot{token}/{method}"
    return httpx.post(url, json=params, timeout=30)


@pytest.mark.slow
def test_a_user_talks_to_a_bot_through_the_bot_api(
    make_user: Callable[[str], NodeProcess], wait_until: Callable[..., None]
) -> None:
    alice, bot = make_user("alice"), make_user("echo")
    with alice.client() as a, bot.client() as b:
        a.create_identity("alice")
        b.create_identity("echo")
        a.add_contact("echo", b.card())
        b.add_contact("alice", a.card())
        created = runner.invoke(app, ["--data-dir", str(bot.data_dir), "bot", "create", "echo"])
        assert created.exit_code == 0, created.output
        token = created.output.split("token: ", 1)[1].split()[0]
        b.set_bot_commands({"start": "Begin"})  # the SDK's management calls
        narrow = b.bot_token(["updates"])
        assert _bot(bot, narrow, "getMyCommands").json()["result"] == [
            {"command": "start", "description": "Begin"}
        ]
        assert _bot(bot, narrow, "sendMessage", chat_id=1, text="x").status_code == 403
        me = _bot(bot, token, "getMe").json()
        assert me["ok"] is True
        assert me["result"]["is_bot"] is True

        a.send("echo", "/start hello")
        updates = _bot(bot, token, "getUpdates", timeout=20).json()["result"]
        assert [u["message"]["text"] for u in updates] == ["/start hello"]
        update = updates[0]
        chat = update["message"]["chat"]["id"]
        sent = _bot(bot, token, "sendMessage", chat_id=chat, text="hello, alice")
        assert sent.json()["ok"] is True

        def answered() -> bool:
            texts = [m.text for m in a.messages(peer="echo")]
            return "hello, alice" in texts

        wait_until(answered, timeout=20)
        # Confirmed updates are not served again; the offset survives in the book.
        again = _bot(bot, token, "getUpdates", offset=update["update_id"] + 1).json()
        assert again == {"ok": True, "result": []}
        assert b.request("GET", "/v1/bot")["offset"] == update["update_id"] + 1

        check_webhooks(bot, token, a, wait_until)  # restarts the bot's node (b is stale after)

        # Hostile and revoked: Telegram's envelope with the right code, never the admin API.
        assert _bot(bot, token[:-2] + "xx", "getMe").status_code == 401
        assert _bot(bot, token, "noSuchMethod").json()["error_code"] == 404
        assert _bot(bot, token, "sendMessage", chat_id=1, text="x").json()["error_code"] == 400
        form = httpx.post(
            f"{bot.info['url']}/bot{token}/getUpdates",
            content=b"limit=500",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert form.json() == {
            "ok": False,
            "error_code": 400,
            "description": "Bad Request: limit must be between 1 and 100",
        }
        for body, kind in ((b"[" * 60_000, "application/json"), (b"\xff", "text/plain")):
            hostile = httpx.post(
                f"{bot.info['url']}/bot{token}/sendMessage",
                content=body,
                headers={"content-type": kind},
            )
            assert hostile.json()["error_code"] == 400
        admin = httpx.get(f"{bot.info['url']}/v1/bot", headers={"authorization": f"Bearer {token}"})
        assert admin.status_code == 401
        revoked = runner.invoke(app, ["--data-dir", str(bot.data_dir), "bot", "revoke", "1"])
        assert revoked.exit_code == 0, revoked.output
        assert _bot(bot, token, "getMe").json() == {
            "ok": False,
            "error_code": 401,
            "description": "Unauthorized",
        }
