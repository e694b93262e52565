"""Music bot: python music_bot.py DATA_DIR RELAY MUSIC_DIR (passphrase in $DCHAT_PASSPHRASE).

Answers "/search words" with numbered matches and "/play N" with the track as an
audio attachment (also /queue N, /next, /shuffle, /clear, /help). The music is
MUSIC_DIR's, or a Subsonic server's when $SUBSONIC_URL, $SUBSONIC_USER and
$SUBSONIC_PASSWORD are set. Needs dchat-sdk[embedded] and dchat-bots[music].
"""

import os
import sys
from pathlib import Path

import anyio

from dchat_bots.music import (
    LocalLibrary,
    MusicCommands,
    MusicError,
    SubsonicClient,
    TextReply,
    share_track,
)
from dchat_sdk import ApiError, Client


def music_source(music_dir: str) -> LocalLibrary | SubsonicClient:
    if "SUBSONIC_URL" not in os.environ:
        return LocalLibrary(music_dir)
    user, password = os.environ["SUBSONIC_USER"], os.environ["SUBSONIC_PASSWORD"]
    auth = "password" if os.environ.get("SUBSONIC_AUTH") == "password" else "token"
    return SubsonicClient(os.environ["SUBSONIC_URL"], user, password, auth=auth)


async def main(data_dir: str, relay: str, music_dir: str) -> None:
    music = music_source(music_dir)
    commands = MusicCommands(music)
    cursor_file = Path(data_dir) / "music_bot.cursor"  # answer each message once, across restarts
    cursor = int(cursor_file.read_text()) if cursor_file.exists() else 0
    async with Client.embedded(data_dir, os.environ["DCHAT_PASSPHRASE"], relay=relay) as bot:
        async for event in bot.events(after=cursor):
            message = event.message
            if message is not None and message.direction == "in":
                chat = message.peer_id
                for reply in await anyio.to_thread.run_sync(commands.handle, chat, message.text):
                    try:
                        if isinstance(reply, TextReply):
                            await bot.send(chat, reply.text)
                        else:
                            await share_track(bot, chat, music, reply.track)
                    except (MusicError, ApiError) as exc:
                        await bot.send(chat, f"Sorry, that failed: {type(exc).__name__}")
            cursor_file.write_text(str(event.cursor))


anyio.run(main, *sys.argv[1:4])
