"""The framework's echo bot (examples/echo_bot_framework.py) answers a dchat user (real processes).

A user node and a bot node homed on one relay; the example runs as its own
process against the bot node's Bot API; SIGTERM stops it gracefully.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

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
            bot.send_signal(signal.SIGTERM)  # graceful: the handled update stays confirmed
            _, errors = bot.communicate(timeout=15)
        finally:
            bot.kill()
        assert bot.returncode == 0, errors[-2000:]
        assert token not in errors
        again = httpx.post(f"{node.info['url']}/bot{token}/getUpdates", json={}, timeout=10)
        assert again.json() == {"ok": True, "result": []}
