"""An unmodified python-telegram-bot echo bot runs against a dchat bot node (real processes).

Only the API server URL and the token differ from a bot written for Telegram.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

import pytest
from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes, MessageHandler, filters

from dchat_storage.testing import image_bytes

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from dchat_node import NodeProcess


# -- the bot, as its framework's documentation writes it ------------------------------------


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None
    await update.message.reply_text("Hi! Send me anything and I echo it.")


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None
    assert update.message.text is not None
    await update.message.reply_text(update.message.text)


async def photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None
    await update.message.reply_photo(image_bytes("PNG"), caption="a red square")
    draft = await update.message.reply_text("draft")
    await draft.edit_text("final")


async def measure(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None
    assert update.message.document is not None
    file = await update.message.document.get_file()
    data = await file.download_as_bytearray()
    await update.message.reply_text(f"got {len(data)} bytes")


def build(token: str, node_url: str) -> Application:  # type: ignore[type-arg]
    builder = Application.builder().token(token)
    application = builder.base_url(f"{node_url}/bot").base_file_url(f"{node_url}/file/bot").build()
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CommandHandler("photo", photo))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    application.add_handler(MessageHandler(filters.Document.ALL, measure))
    return application


# -- the test -----------------------------------------------------------------------------


@pytest.mark.slow
def test_an_unmodified_python_telegram_bot_echo_bot_answers_a_dchat_user(
    make_user: Callable[[str], NodeProcess], wait_until: Callable[..., None], tmp_path: Path
) -> None:
    alice, node = make_user("alice"), make_user("echo")
    with alice.client() as a, node.client() as b:
        a.create_identity("alice")
        b.create_identity("echo")
        a.add_contact("echo", b.card())
        b.add_contact("alice", a.card())
        token = b.create_bot("echo")

        notes = tmp_path / "notes.bin"
        notes.write_bytes(os.urandom(2000))

        def texts() -> list[str]:  # as alice's conversation shows them (edits applied)
            rows = a.conversation("echo")["messages"]
            return [r["text"] for r in rows if r["direction"] == "in"]

        async def run() -> None:
            application = build(token, node.info["url"])
            async with application:
                await application.start()
                assert application.updater is not None
                await application.updater.start_polling(poll_interval=0.1, timeout=5)
                a.send("echo", "/start")
                a.send("echo", "ping over dchat")
                a.send("echo", "/photo")  # a photo upload and an edit by the framework
                a.send_file("echo", notes)  # getFile and the file download
                want = ["Hi! Send me anything and I echo it.", "ping over dchat"]
                want += ["a red square", "final", "got 2000 bytes"]
                await asyncio.to_thread(wait_until, lambda: sorted(texts()) == sorted(want))
                await application.updater.stop()
                await application.stop()

        asyncio.run(run())
