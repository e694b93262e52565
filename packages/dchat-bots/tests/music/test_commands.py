"""MusicCommands (the bot's replies), PlayQueue, and share_track's hand-over to the SDK."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path
from typing import Any

import anyio
import pytest

from dchat_bots.music import (
    LocalLibrary,
    MusicCommands,
    MusicProvider,
    PlayQueue,
    PlayReply,
    QueueFullError,
    SubsonicUnreachableError,
    TextReply,
    Track,
    share_track,
)


def _texts(replies: list[TextReply | PlayReply]) -> str:
    return "\n".join(r.text for r in replies if isinstance(r, TextReply))


def test_search_then_play_and_queue_per_chat(library_dir: Path) -> None:
    with LocalLibrary(library_dir) as library:
        assert isinstance(library, MusicProvider)
        bot = MusicCommands(library, rng=random.Random(1))
        listing = _texts(bot.handle("alice", "/search testers"))
        assert listing.splitlines()[:2] == [
            "1. The Testers - Blue Moon (0:00)",
            "2. The Testers - Red Sun (0:01)",
        ]
        (play,) = bot.handle("alice", "/play 2")
        assert isinstance(play, PlayReply)
        assert play.track.title == "Red Sun"
        assert "search first" in _texts(bot.handle("bob", "/play 1"))  # bob has no results
        assert "1 to 2" in _texts(bot.handle("alice", "/play 3"))
        assert "1 to 2" in _texts(bot.handle("alice", "/play -1"))
        assert _texts(bot.handle("alice", "/queue 1")) == "Queued at position 1."
        assert _texts(bot.handle("alice", "/queue 2")) == "Queued at position 2."
        assert [r.track.title for r in bot.handle("alice", "/next")] == ["Blue Moon"]  # type: ignore[union-attr]
        assert _texts(bot.handle("alice", "/clear")) == "Cleared 1 tracks."
        assert _texts(bot.handle("alice", "/next")) == "The queue is empty."
        assert _texts(bot.handle("alice", "/search zzz")) == "No track matches."
        assert "Sorry" in _texts(bot.handle("alice", "/search"))
        assert "/search WORDS" in _texts(bot.handle("alice", "/help"))
        assert bot.handle("alice", "hello") == []  # not a command: no reply


def test_the_chats_remembered_are_bounded(library_dir: Path) -> None:
    with LocalLibrary(library_dir) as library:
        bot = MusicCommands(library, max_chats=2)
        for chat in ("a", "b", "c"):
            bot.handle(chat, "/search blue")
        assert "search first" in _texts(bot.handle("a", "/play 1"))  # the oldest was dropped
        assert isinstance(bot.handle("c", "/play 1")[0], PlayReply)


class _Down:
    def search(self, query: str, *, limit: int = 10) -> list[Track]:
        raise SubsonicUnreachableError("search: timed out")


def test_provider_failures_become_a_short_reply() -> None:
    bot = MusicCommands(_Down())  # type: ignore[arg-type]
    assert _texts(bot.handle("a", "/search x")) == "Sorry: the music server does not answer."


def test_the_play_queue() -> None:
    tracks = [Track(id=str(n), title=f"t{n}") for n in range(5)]
    queue = PlayQueue(max_tracks=5)
    queue.extend(tracks)
    with pytest.raises(QueueFullError):
        queue.add(Track(id="x", title="x"))
    with pytest.raises(QueueFullError):
        PlayQueue(max_tracks=2).extend(tracks)
    queue.shuffle(random.Random(7))
    shuffled = list(queue)
    assert sorted(t.id for t in shuffled) == [t.id for t in tracks]
    again = PlayQueue()
    again.extend(tracks)
    again.shuffle(random.Random(7))
    assert list(again) == shuffled  # reproducible with the same seed
    assert queue.peek() == queue.next() == shuffled[0]
    assert (len(queue), queue.clear(), queue.next()) == (4, 4, None)


class _Sender:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = fail

    async def send_file(self, to: str, path: str | Path, **options: Any) -> dict[str, Any]:
        data = await anyio.Path(path).read_bytes()
        self.calls.append({"to": to, "bytes": data, **options})
        if self.fail:
            raise RuntimeError("the node refused")
        return {"message_id": "m1"}


async def test_share_track_sends_the_file_as_audio(library_dir: Path) -> None:
    sender = _Sender()
    with LocalLibrary(library_dir) as library:
        (blue,) = library.search("blue")
        assert await share_track(sender, "peer", library, blue) == {"message_id": "m1"}
    (call,) = sender.calls
    assert call["bytes"] == (library_dir / "The Testers" / "Tones" / "01 blue.wav").read_bytes()
    assert (call["to"], call["kind"], call["media_type"]) == ("peer", "audio", "audio/wav")
    assert (call["caption"], call["duration_ms"]) == ("The Testers - Blue Moon (0:00)", 250)


class _TempProvider:
    """A provider whose files are temporary (as a Subsonic download is)."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.closed = folder, 0

    @contextlib.contextmanager
    def open(self, track_id: str):
        path = self.folder / f"{track_id}.mp3"
        path.write_bytes(b"ID3 fake")
        try:
            yield path
        finally:
            path.unlink()
            self.closed += 1


async def test_share_track_releases_the_file_even_when_the_send_fails(tmp_path: Path) -> None:
    provider = _TempProvider(tmp_path)
    track = Track(id="t1", title="T")
    with pytest.raises(RuntimeError):
        await share_track(_Sender(fail=True), "peer", provider, track)  # type: ignore[arg-type]
    assert provider.closed == 1
    assert not await anyio.Path(tmp_path / "t1.mp3").exists()
    with anyio.move_on_after(5):
        await share_track(_Sender(), "peer", provider, track)  # type: ignore[arg-type]
    assert provider.closed == 2
