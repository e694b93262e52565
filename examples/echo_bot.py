"""Echo bot: python echo_bot.py DATA_DIR RELAY (passphrase in $DCHAT_PASSPHRASE)."""

import os
import sys

import anyio

from dchat_sdk import Client


async def main(data_dir: str, relay: str) -> None:
    async with Client.embedded(data_dir, os.environ["DCHAT_PASSPHRASE"], relay=relay) as bot:
        async for event in bot.events(after=0):  # every event since the data dir's first
            if event.message is not None and event.message.direction == "in":
                await bot.send(event.message.peer_id, event.message.text)


anyio.run(main, *sys.argv[1:3])
