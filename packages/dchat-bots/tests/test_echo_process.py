"""The framework's echo bot (examples/echo_bot_framework.py) answers a dchat user (real processes).

A user node and a bot node homed on one relay; the example runs as its own
process against the bot node's Bot API; SIGTERM stops it gracefully. Meanwhile
the test's own ``Bot`` makes a few typed calls against the real node: a photo
upload, its download, a keyboard and an edit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import httpx
import pytest

from dchat_bots import Bot, InlineKeyboardMarkup
from dchat_storage.testing import image_bytes

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_node import NodeProcess

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "echo_bot_framework.py"


def test_the_example_is_at_most_ten_lines_of_code() -> None:
    lines = [line for line in EXAMPLE.read_text().splitlines() if line.strip()]
    assert len(lines) <= 10, lines


@pytest.mark.slow
def test_the_ten_line_echo_bot_answers_a_dchat_user(
    make_user: Callable[[str], NodeProcess], wait_until: Callable[..., None]
) -> None:
    alice, node = make_user("alice"), make_user("echo")
    with alice.client() as a, node.client() as b:
        a.create_identity("alice")
        b.create_identity("echo")
        a.add_contact("echo", b.card())
        b.add_contact("alice", a.card())
        token = b.create_bot("echo")
        env = {**os.environ, "DCHAT_BOT_TOKEN": token, "DCHAT_BOT_URL": node.info["url"]}
        bot = subprocess.Popen(
            [sys.executable, str(EXAMPLE)], env=env, stderr=subprocess.PIPE, text=True
        )
        try:
            a.send("echo", "ping over the framework")

            def answered() -> list[str]:
                return [m.text for m in a.messages(peer="echo") if m.direction == "in"]

            wait_until(lambda: answered() == ["ping over the framework"], timeout=30)
            anyio.run(typed_calls, token, node.info["url"])

            def shown() -> list[str]:  # alice's conversation: the edit applied
                rows = a.conversation("echo")["messages"]
                return [r["text"] for r in rows if r["direction"] == "in"]

            want = ["a red square", "ping over the framework", "voted"]
            wait_until(lambda: sorted(shown()) == want, timeout=30)
            bot.send_signal(signal.SIGTERM)  # graceful: the handled update stays confirmed
            _, errors = bot.communicate(timeout=15)
        finally:
            bot.kill()
        assert bot.returncode == 0, errors[-2000:]
        assert token not in errors
        again = httpx.post(f"{node.info['url']}/bot{token}/getUpdates", json={}, timeout=10)
        assert again.json() == {"ok": True, "result": []}


async def typed_calls(token: str, url: str) -> None:
    """A multipart upload, getFile and the download, a keyboard, an edit: one of each."""
    png = image_bytes("PNG")
    async with Bot(token, url) as bot:
        photo = await bot.send_photo("alice", png, caption="a red square")
        assert (photo.caption, len(photo.photo)) == ("a red square", 1)
        file = await bot.get_file(photo.photo[0].file_id)
        assert await bot.download_file(file) == png
        keyboard = InlineKeyboardMarkup.of([("Yes", "vote:yes"), ("No", "vote:no")])
        menu = await bot.send_message("alice", "vote?", reply_markup=keyboard)
        assert menu.reply_markup == keyboard
        edited = await bot.edit_message_text(menu.chat.id, menu.message_id, "voted")
        assert (edited.message_id, edited.text) == (menu.message_id, "voted")
