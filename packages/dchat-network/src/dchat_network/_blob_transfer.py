"""Moving a blob to or from a relay over one session, in trio, resumable at both ends.

:func:`upload_blob` asks the relay how many bytes of the blob it holds
(``blob_open``), then sends the rest in pieces of :data:`MAX_BLOB_PIECE`; the
bytes come from ``source(offset)``, so a sender that can regenerate its blob
from any offset (a sealed file is deterministic under its key) resumes an
interrupted upload without keeping the blob anywhere. :func:`download_blob`
reads a complete blob from ``offset`` on and hands each piece to ``sink``;
the caller keeps what it got (e.g. in a partial file) and passes its length
as ``offset`` to resume. Neither holds more than one piece in memory. Every
relay refusal raises :class:`RelayProtocolError` (its code in the message),
a full relay :class:`RelayBusyError` (``disk``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._errors import RelayProtocolError
from ._relay_blob_wire import MAX_BLOB_PIECE

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from ._session import RelaySession

__all__ = ("download_blob", "upload_blob")


async def upload_blob(
    session: RelaySession,
    blob_id: bytes,
    size: int,
    source: Callable[[int], AsyncIterator[bytes]],
) -> int:
    """Make the relay hold all ``size`` bytes of the blob; returns the bytes this call sent."""
    held = start = await session.blob_open(blob_id, size)
    pending = bytearray()
    async for data in source(held):
        pending += data
        while len(pending) >= MAX_BLOB_PIECE:
            held = await _put(session, blob_id, held, bytes(pending[:MAX_BLOB_PIECE]))
            del pending[:MAX_BLOB_PIECE]
    if pending:
        held = await _put(session, blob_id, held, bytes(pending))
    if held != size:
        raise RelayProtocolError(f"the blob source gave {held} of {size} bytes")
    return held - start


async def _put(session: RelaySession, blob_id: bytes, offset: int, piece: bytes) -> int:
    held = await session.blob_put(blob_id, offset, piece)
    if held != offset + len(piece):
        raise RelayProtocolError("the relay holds another length than was sent")
    return held


async def download_blob(
    session: RelaySession,
    blob_id: bytes,
    offset: int,
    sink: Callable[[bytes], Awaitable[None]],
    *,
    expected_size: int | None = None,
) -> int:
    """Read the blob from ``offset`` to its end into ``sink``; returns its size.

    Raises:
        RelayProtocolError: the relay refused, sent nothing before the end, or
            the blob's size is not ``expected_size``.
    """
    size: int | None = None
    while size is None or offset < size:
        data, size = await session.blob_get(blob_id, offset)
        if expected_size is not None and size != expected_size:
            raise RelayProtocolError("the blob has another size than announced")
        if not data and offset < size:
            raise RelayProtocolError("the relay sent no bytes before the blob's end")
        if data:
            await sink(data)
        offset += len(data)
    return size
