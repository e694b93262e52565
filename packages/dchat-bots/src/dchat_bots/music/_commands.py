"""A music bot's brain: chat commands in, replies out, and sharing a track as an attachment.

:class:`MusicCommands` does no I/O of its own beyond its provider: a bot feeds
it ``(chat, text)`` and carries out the replies it returns, a
:class:`TextReply` (send the text) or a :class:`PlayReply` (share the track:
:func:`share_track`). Each chat has its own last results and play queue; the
number of chats remembered is bounded (least recently used first out).

Commands: ``/search WORDS``, ``/play N``, ``/queue N``, ``/next``,
``/shuffle``, ``/clear``, ``/help``.
"""

from __future__ import annotations

import contextlib
import random
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from ._errors import (
    InvalidQueryError,
    MusicError,
    QueueFullError,
    SubsonicUnreachableError,
    TrackNotFoundError,
    TrackTooLargeError,
)
from ._queue import PlayQueue

if TYPE_CHECKING:
    from pathlib import Path

    from ._track import MusicProvider, Track

__all__ = ("AudioSender", "MusicCommands", "PlayReply", "TextReply", "share_track")

HELP = (
    "/search WORDS - find tracks\n"
    "/play N - get track N of the last search\n"
    "/queue N - queue track N; /next plays the queue\n"
    "/shuffle, /clear - shuffle or empty the queue"
)


@dataclass(frozen=True, slots=True)
class TextReply:
    """Send ``text`` to the chat."""

    text: str


@dataclass(frozen=True, slots=True)
class PlayReply:
    """Share ``track`` with the chat as an audio attachment (see :func:`share_track`)."""

    track: Track


@dataclass
class _Chat:
    results: list[Track] = field(default_factory=list)
    queue: PlayQueue = field(default_factory=PlayQueue)


class MusicCommands:
    """The music bot's commands over one provider (see the module's docstring).

    Example::

        commands = MusicCommands(LocalLibrary("~/Music"))
        for reply in commands.handle(peer_id, "/search blue moon"):
            ...   # TextReply: send reply.text; PlayReply: share_track(...)
    """

    def __init__(
        self,
        provider: MusicProvider,
        *,
        results: int = 10,
        max_chats: int = 1000,
        rng: random.Random | None = None,
    ) -> None:
        self._provider = provider
        self._results = results
        self._max_chats = max_chats
        self._rng = rng or random.Random()
        self._chats: OrderedDict[str, _Chat] = OrderedDict()

    def handle(self, chat: str, text: str) -> list[TextReply | PlayReply]:
        """The replies to ``text`` from ``chat`` ([] when it is not one of the commands).

        Blocking (the provider is called): run it in a worker thread from async code.
        """
        command, _, argument = text.strip().partition(" ")
        action = {
            "/search": self._search,
            "/play": self._play,
            "/queue": self._queue,
            "/next": self._next,
            "/shuffle": self._shuffle,
            "/clear": self._clear,
            "/help": self._help,
            "/start": self._help,
        }.get(command.lower())
        if action is None:
            return []
        try:
            return action(self._chat(chat), argument.strip())
        except MusicError as exc:
            return [TextReply(_explain(exc))]

    def _chat(self, chat: str) -> _Chat:
        state = self._chats.pop(chat, None) or _Chat()
        self._chats[chat] = state
        while len(self._chats) > self._max_chats:
            self._chats.popitem(last=False)
        return state

    def _search(self, chat: _Chat, words: str) -> list[TextReply | PlayReply]:
        chat.results = self._provider.search(words, limit=self._results)
        if not chat.results:
            return [TextReply("No track matches.")]
        lines = [f"{n}. {track.label}" for n, track in enumerate(chat.results, 1)]
        return [TextReply("\n".join([*lines, "Send /play N to get one."]))]

    def _pick(self, chat: _Chat, number: str) -> Track:
        if not chat.results:
            raise InvalidQueryError("search first: /search WORDS")
        if not number.isdecimal() or not 1 <= int(number) <= len(chat.results):
            raise InvalidQueryError(f"pick a number from 1 to {len(chat.results)}")
        return chat.results[int(number) - 1]

    def _play(self, chat: _Chat, number: str) -> list[TextReply | PlayReply]:
        return [PlayReply(self._pick(chat, number))]

    def _queue(self, chat: _Chat, number: str) -> list[TextReply | PlayReply]:
        position = chat.queue.add(self._pick(chat, number))
        return [TextReply(f"Queued at position {position}.")]

    def _next(self, chat: _Chat, _: str) -> list[TextReply | PlayReply]:
        track = chat.queue.next()
        return [PlayReply(track)] if track is not None else [TextReply("The queue is empty.")]

    def _shuffle(self, chat: _Chat, _: str) -> list[TextReply | PlayReply]:
        chat.queue.shuffle(self._rng)
        return [TextReply(f"Shuffled {len(chat.queue)} tracks.")]

    def _clear(self, chat: _Chat, _: str) -> list[TextReply | PlayReply]:
        return [TextReply(f"Cleared {chat.queue.clear()} tracks.")]

    def _help(self, chat: _Chat, _: str) -> list[TextReply | PlayReply]:
        return [TextReply(HELP)]


def _explain(exc: MusicError) -> str:
    """A reply for the chat: caller mistakes in full, other failures without internals."""
    if isinstance(exc, InvalidQueryError | QueueFullError):
        return f"Sorry: {exc}"
    if isinstance(exc, TrackNotFoundError):
        return "Sorry: that track is gone."
    if isinstance(exc, TrackTooLargeError):
        return "Sorry: that track is too large to share."
    if isinstance(exc, SubsonicUnreachableError):
        return "Sorry: the music server does not answer."
    return "Sorry: the music source failed."


class AudioSender(Protocol):
    """What :func:`share_track` needs of a client: ``dchat_sdk.Client.send_file``."""

    async def send_file(
        self,
        to: str,
        path: str | Path,
        *,
        kind: str = ...,
        media_type: str | None = ...,
        caption: str = ...,
        duration_ms: int = ...,
    ) -> dict[str, Any]:
        """Send the file at ``path`` to ``to`` as an attachment."""
        ...


async def share_track(
    client: AudioSender, to: str, provider: MusicProvider, track: Track
) -> dict[str, Any]:
    """Send ``track`` to ``to`` as an audio attachment, end to end encrypted by the node.

    The provider's file (a local track, or a Subsonic download) is opened in a
    worker thread and streamed to the node by the SDK's ``send_file``.
    Returns the node's description of the attachment (``message_id``, ...).

    Raises:
        MusicError: the provider could not hand the track over.
        dchat_sdk.ApiError: the node refused it (e.g. over its upload cap).
    """
    with contextlib.ExitStack() as stack:
        path = await anyio.to_thread.run_sync(stack.enter_context, provider.open(track.id))
        try:
            return await client.send_file(
                to,
                path,
                kind="audio",
                media_type=track.media_type,
                caption=track.label,
                duration_ms=track.duration_ms,
            )
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(stack.close)
