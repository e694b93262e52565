"""An unmodified python-telegram-bot echo bot runs against a dchat bot node (real processes).

Only the API server URL and the token differ from a bot written for Telegram.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes, MessageHandler, filters

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_node import NodeProcess


# -- the bot, as its framework's documentation writes it ------------------------------------


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None
    await update.message.reply_text("Hi! Send me anything and I echo it.")


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None
    assert update.message.text is not None
    await update.message.reply_text(update.message.text)


def build(token: str, base_url: str) -> Application:  # type: ignore[type-arg]
    application = Application.builder().token(token).base_url(base_url).build()
    application.add_handler(CommandHandler("start", start))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    return application


# -- the test -----------------------------------------------------------------------------


@pytest.mark.slow
def test_an_unmodified_python_telegram_bot_echo_bot_answers_a_dchat_user(
    make_user: Callable[[str], NodeProcess], wait_until: Callable[..., None]
) -> None:
    alice, node = make_user("alice"), make_user("echo")
    with alice.client() as a, node.client() as b:
        a.create_identity("alice")
        b.create_identity("echo")
        a.add_contact("echo", b.card())
        b.add_contact("alice", a.card())
        token = b.create_bot("echo")

        def texts() -> list[str]:
            return [m.text for m in a.messages(peer="echo") if m.direction == "in"]

        async def run() -> None:
            application = build(token, f"{node.info['url']}/bot")
            async with application:
                await application.start()
                assert application.updater is not None
                await application.updater.start_polling(poll_interval=0.1, timeout=5)
                a.send("echo", "/start")
                a.send("echo", "ping over dchat")
                want = ["Hi! Send me anything and I echo it.", "ping over dchat"]
                await asyncio.to_thread(wait_until, lambda: sorted(texts()) == sorted(want))
                await application.updater.stop()
                await application.stop()

        asyncio.run(run())
