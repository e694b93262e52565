"""``examples/music_bot.py`` end to end, in real processes.

A relay, bob's node, and the bot (a process embedding its own node).

bob searches (with the ``dchat`` CLI) and plays (with the SDK); the track
arrives as an audio attachment with the same bytes, its duration and caption;
the relay's files never hold the track's plaintext (its tag carries a marker).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dchat_node import NodeProcess
from dchat_node.cli import app
from dchat_sdk import NodeUnreachableError, RemoteClient

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[4]
MUSIC_BOT = REPO / "examples" / "music_bot.py"
PASSPHRASE = "music bot passphrase"
MARKER = "Marker7f3a9c"


def _bot_api(bot_dir: Path, bot: subprocess.Popen[bytes], timeout: float) -> RemoteClient:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert bot.poll() is None, bot.communicate()[1].decode()[-2000:]
        try:
            client = RemoteClient.from_data_dir(bot_dir)
            client.health()
            return client
        except NodeUnreachableError:
            time.sleep(0.2)
    raise AssertionError("the music bot's node did not start")


def _dchat(node: NodeProcess, *args: str) -> str:
    """Run the ``dchat`` CLI against ``node``; its output (it must succeed)."""
    result = CliRunner().invoke(app, ["--data-dir", str(node.data_dir), *args])
    assert result.exit_code == 0, result.output
    return result.output


def _files_hold(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_search_and_play_share_the_track_as_an_audio_attachment(
    tmp_path: Path,
    relay: NodeProcess,
    make_user: Callable[[str], NodeProcess],
    wait_until: Callable[..., None],
    audio,
) -> None:
    music = tmp_path / "music"
    song = audio.write_wav(music / "moon.wav", seconds=0.5)
    audio.tag_wav(song, title=f"Blue Moon {MARKER}", artist="The Testers", album="Tones", track="1")
    bob_node = make_user("bob")
    env = {**os.environ, "DCHAT_PASSPHRASE": PASSPHRASE}
    command = [
        sys.executable,
        str(MUSIC_BOT),
        str(tmp_path / "bot"),
        relay.info["link"],
        str(music),
    ]
    bot = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE)
    try:
        with _bot_api(tmp_path / "bot", bot, 60) as api, bob_node.client() as bob:
            api.create_identity("music")
            bob.create_identity("bob")
            bob.add_contact("music", api.card())
            _dchat(bob_node, "send", "music", "/search moon")  # the CLI, then the SDK

            def inbound() -> list:
                return [m for m in bob.messages("music") if m.direction == "in"]

            wait_until(lambda: len(inbound()) >= 1, timeout=60, what="the search's answer")
            assert inbound()[0].text.startswith(f"1. The Testers - Blue Moon {MARKER} (0:00)")
            bob.send("music", "/play 1")
            wait_until(lambda: len(inbound()) >= 2, timeout=60, what="the track")
            shared = bob.attachment(inbound()[1].message_id)
            assert (shared["kind"], shared["type"], shared["duration_ms"]) == (
                "audio",
                "audio/wav",
                500,
            )
            got = tmp_path / "got.wav"
            _dchat(bob_node, "attachment", "get", inbound()[1].message_id, "--out", str(got))
            assert got.read_bytes() == song.read_bytes()
            assert _files_hold(relay.data_dir, MARKER.encode()) == []
    finally:
        bot.kill()
        bot.communicate()
