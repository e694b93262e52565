"""Inline keyboards, callback queries, commands and inline queries, node to node (real processes).

A user node and a bot node: the bot's program speaks the Bot API, the user the
CLI and the SDK; every control between the two travels end to end.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from telegram import Update
from typer.testing import CliRunner

from dchat_node.cli import app
from dchat_sdk import ApiError

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_node import NodeProcess
    from dchat_sdk import SyncClient

runner = CliRunner()
MARKUP = {
    "inline_keyboard": [
        [{"text": "Yes", "callback_data": "vote:yes"}, {"text": "No", "callback_data": "vote:no"}],
        [{"text": "Site", "url": "https://example.org/"}],
    ]
}


def _bot(node: NodeProcess, token: str, method: str, **params: Any) -> dict[str, Any]:
    reply = httpx.post(f"{node.info['url']}/bot{token}/{method}", json=params, timeout=30)
    return dict(reply.json())


def _dchat(node: NodeProcess, *args: str) -> str:
    result = runner.invoke(app, ["--data-dir", str(node.data_dir), *args])
    assert result.exit_code == 0, result.output
    return result.output


def _next_update(bot: NodeProcess, token: str, offset: int) -> dict[str, Any]:
    reply = _bot(bot, token, "getUpdates", offset=offset, timeout=20)
    assert reply["ok"], reply
    assert reply["result"], "no update within 20 s"
    return dict(reply["result"][0])


def _events(client: SyncClient, kind: str) -> list[dict[str, Any]]:
    return [e.data for e in client.event_page(0, 1000)[0] if e.kind == kind]


@pytest.mark.slow
def test_keyboards_presses_commands_and_inline_queries_travel_between_user_and_bot(
    make_user: Callable[[str], NodeProcess], wait_until: Callable[..., None]
) -> None:
    alice, bot = make_user("alice"), make_user("poll")
    with alice.client() as a, bot.client() as b:
        a.create_identity("alice")
        b.create_identity("poll")
        a.add_contact("poll", b.card())
        b.add_contact("alice", a.card())
        token = b.create_bot("poll")
        b.set_bot_commands({"vote": "Cast a vote", "help": "What I do"})

        # A keyboard travels with the bot's message; the user sees the buttons.
        sent = _bot(bot, token, "sendMessage", chat_id="alice", text="Vote?", reply_markup=MARKUP)
        assert sent["result"]["reply_markup"] == MARKUP

        def keyboard() -> dict[str, Any] | None:
            shown = [m for m in a.conversation("poll")["messages"] if m.get("reply_markup")]
            return shown[0] if shown else None

        wait_until(lambda: keyboard() is not None, timeout=20)
        message = keyboard()
        assert message is not None
        assert message["reply_markup"] == MARKUP
        shown = _dchat(alice, "show", "poll", "--keep-unread")
        assert "[1: Yes]" in shown
        assert "[3: Site ↗]" in shown

        # A press reaches the bot as a callback_query; its answer comes back as an event.
        pressed = _dchat(alice, "bot", "press", "poll", message["message_id"], "Yes", "--wait", "0")
        assert "pressed [Yes]" in pressed
        update = _next_update(bot, token, 0)
        query = update["callback_query"]
        assert query["data"] == "vote:yes"
        assert query["message"]["message_id"] == sent["result"]["message_id"]
        assert Update.de_json(update, None).callback_query.data == "vote:yes"  # PTB reads it
        answered = _bot(
            bot, token, "answerCallbackQuery", callback_query_id=query["id"], text="Counted"
        )
        assert answered == {"ok": True, "result": True}
        again = _bot(bot, token, "answerCallbackQuery", callback_query_id=query["id"])
        assert again["error_code"] == 400  # answered once only
        wait_until(lambda: _events(a, "bot_answer"), timeout=20)
        assert _events(a, "bot_answer")[0]["text"] == "Counted"
        assert "opens https://example.org/" in _dchat(
            alice, "bot", "press", "poll", message["message_id"], "3"
        )
        with pytest.raises(ApiError) as forged:  # only buttons the bot sent can be pressed
            a.bot_press("poll", message["message_id"], "vote:maybe")
        assert forged.value.code == "not_found"

        # Commands: asked end to end, answered by the bot's node from its book.
        listed = _dchat(alice, "bot", "commands", "poll")
        assert "/vote  Cast a vote" in listed
        assert a.bot_commands("poll") == [
            {"command": "vote", "description": "Cast a vote"},
            {"command": "help", "description": "What I do"},
        ]

        # Inline query: the user waits while the bot's program answers; the pick is a text.
        picked: list[str] = []
        ask = threading.Thread(
            target=lambda: picked.append(
                _dchat(alice, "bot", "inline", "poll", "cats", "--in", "poll", "--pick", "2")
            )
        )
        ask.start()
        inline = _next_update(bot, token, update["update_id"] + 1)
        assert inline["inline_query"]["query"] == "cats"
        assert Update.de_json(inline, None).inline_query.query == "cats"
        results = [
            {
                "type": "article",
                "id": f"r{n}",
                "title": f"Cat {n}",
                "input_message_content": {"message_text": f"cat picture {n}"},
            }
            for n in (1, 2)
        ]
        iq = inline["inline_query"]["id"]
        assert _bot(bot, token, "answerInlineQuery", inline_query_id=iq, results=results)["ok"]
        replay = _bot(bot, token, "answerInlineQuery", inline_query_id=iq, results=results)
        assert replay["error_code"] == 400
        ask.join(timeout=30)
        assert picked
        assert "sent to poll: cat picture 2" in picked[0]
        as_text = _next_update(bot, token, inline["update_id"] + 1)
        assert as_text["message"]["text"] == "cat picture 2"  # a normal message

        # Unanswered queries time out cleanly; unknown query ids are refused.
        with pytest.raises(ApiError) as slow:
            a.bot_inline("poll", "dogs", wait=0.5)
        assert (slow.value.status, slow.value.code) == (504, "bot_timeout")
        unknown = _bot(bot, token, "answerInlineQuery", inline_query_id="00" * 16, results=[])
        assert unknown["error_code"] == 400
