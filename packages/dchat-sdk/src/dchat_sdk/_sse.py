"""Server-Sent Events decoding, sans-IO: text in, frames out.

:class:`SseDecoder` follows the WHATWG event-stream rules: lines end in CR,
LF or CRLF (a CR at the end of one chunk may pair with an LF starting the
next); a line starting with ``:`` is a comment; ``field: value`` loses one
space after the colon; ``data`` lines are joined with LF; a blank line
dispatches the frame, unless it had no data, in which case only its ``id``
(the stream's last event id) takes effect. An ``id`` holding NUL is ignored.
A frame or line longer than ``max_frame`` characters raises
:class:`SseFormatError` instead of growing without bound.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from ._errors import _BadReplyError

__all__ = ("SseDecoder", "SseFormatError", "SseFrame")

MAX_FRAME: Final = 1 << 20
_EOL: Final = re.compile(r"\r\n|\r|\n")


class SseFormatError(_BadReplyError):
    """The event stream broke its format (a frame over the size limit)."""


@dataclass(frozen=True, slots=True)
class SseFrame:
    """One dispatched event.

    Attributes:
        event: The event type (``message`` when the frame named none).
        data: The data lines, joined with LF.
        id: The stream's last event id after this frame ("" if none yet).
    """

    event: str
    data: str
    id: str


class SseDecoder:
    """Turns event-stream text, in chunks of any size, into :class:`SseFrame` objects."""

    def __init__(self, *, max_frame: int = MAX_FRAME) -> None:
        self.last_event_id = ""
        """The id of the last frame seen (also of a frame that carried no data)."""
        self.retry_ms: int | None = None
        """The reconnection delay the server asked for, if any."""
        self._max = max_frame
        self._partial = ""
        self._skip_lf = False
        self._event = ""
        self._data: list[str] = []
        self._size = 0
        self._id: str | None = None

    def feed(self, text: str) -> list[SseFrame]:
        """Decode ``text``; returns the frames it completed.

        Raises:
            SseFormatError: A line or frame is longer than the limit.
        """
        frames: list[SseFrame] = []
        buffer = self._partial + text
        if self._skip_lf and buffer.startswith("\n"):  # the LF of a CRLF split across chunks
            buffer = buffer[1:]
        self._skip_lf = buffer.endswith("\r")
        lines = _EOL.split(buffer)
        self._partial = lines.pop()
        if len(self._partial) > self._max:
            raise SseFormatError("an event-stream line is too long")
        for line in lines:
            self._line(line, frames)
        return frames

    def _line(self, line: str, frames: list[SseFrame]) -> None:
        if not line:
            self._dispatch(frames)
            return
        if line.startswith(":"):
            return
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._size += len(value) + 1
            if self._size > self._max:
                raise SseFormatError("an event-stream frame is too long")
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isascii() and value.isdecimal():
            self.retry_ms = int(value)

    def _dispatch(self, frames: list[SseFrame]) -> None:
        if self._id is not None:
            self.last_event_id = self._id
        if self._data:
            data = "\n".join(self._data)
            frames.append(SseFrame(self._event or "message", data, self.last_event_id))
        self._event, self._data, self._size, self._id = "", [], 0, None
