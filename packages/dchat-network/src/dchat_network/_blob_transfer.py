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

:func:`push_blob` and :func:`fetch_blob_file` dial the relay for one transfer
each: an upload over a link proving ``node_key`` (the mailbox that pays for
the blob), a download over an unlinkable link into a file that is appended
to from its current length (a killed download resumes). :func:`drop_blob`
deletes an uploaded blob over a link proving the same key (an expired
disappearing message takes its file with it).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import trio

from dchat_core import RelayAddress

from ._errors import DchatNetworkError, RelayBusyError, RelayProtocolError
from ._relay_blob_wire import MAX_BLOB_PIECE
from ._session import relay_session

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
    from pathlib import Path

    from dchat_crypto import SigningKey

    from ._session import RelaySession

__all__ = (
    "download_blob",
    "drop_blob",
    "drop_blobs",
    "fetch_blob_file",
    "push_blob",
    "upload_blob",
)


async def push_blob(
    relay: RelayAddress,
    node_key: SigningKey,
    blob_id: bytes,
    size: int,
    source: Callable[[int], AsyncGenerator[bytes, None]],
) -> int:
    """:func:`upload_blob` over a fresh link to ``relay`` proving ``node_key``."""
    async with relay_session(
        relay.host, relay.port, node_key=node_key, expected_peer=relay.node
    ) as session:
        return await upload_blob(session, blob_id, size, source)


async def drop_blob(relay: RelayAddress, node_key: SigningKey, blob_id: bytes) -> bool:
    """Delete a blob ``node_key``'s mailbox uploaded to ``relay``; whether it was there."""
    async with relay_session(
        relay.host, relay.port, node_key=node_key, expected_peer=relay.node
    ) as session:
        return await session.blob_delete(blob_id)


async def drop_blobs(blobs: Iterable[tuple[str, bytes]], node_key: SigningKey) -> int:
    """:func:`drop_blob` each ``(relay address, blob id)``, best effort; how many were deleted.

    A relay that is down or refuses is skipped (its blob TTL deletes the blob later).
    """
    dropped = 0
    for relay, blob_id in blobs:
        with contextlib.suppress(DchatNetworkError, OSError, ValueError):
            dropped += await drop_blob(RelayAddress.parse(relay), node_key, blob_id)
    return dropped


async def fetch_blob_file(relay: RelayAddress, blob_id: bytes, size: int, path: Path) -> None:
    """Download the blob into ``path`` (made 0600), resuming from the bytes it holds."""
    part = trio.Path(path)
    await part.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    start = (await part.stat()).st_size if await part.exists() else 0
    async with (
        relay_session(relay.host, relay.port, expected_peer=relay.node) as session,
        await trio.open_file(part, "ab") as out,
    ):
        await part.chmod(0o600)

        async def sink(data: bytes) -> None:
            await out.write(data)

        await download_blob(session, blob_id, start, sink, expected_size=size)


async def upload_blob(
    session: RelaySession,
    blob_id: bytes,
    size: int,
    source: Callable[[int], AsyncGenerator[bytes, None]],
    *,
    max_waits: int = 64,
) -> int:
    """Make the relay hold all ``size`` bytes of the blob; returns the bytes this call sent.

    A ``busy`` (``rate``) answer is waited out (its retry-after, at most
    ``max_waits`` times), then the upload goes on from what the relay holds.
    """
    start = held = await session.blob_open(blob_id, size)
    for _ in range(max_waits):
        try:
            held = await _send_rest(session, blob_id, held, source)
        except RelayBusyError as exc:
            if exc.reason != "rate":
                raise
            await trio.sleep(exc.retry_after)
            held = await session.blob_open(blob_id, size)
            continue
        if held != size:
            raise RelayProtocolError(f"the blob source gave {held} of {size} bytes")
        return held - start
    raise RelayBusyError("rate", 0.0)


async def _send_rest(
    session: RelaySession,
    blob_id: bytes,
    held: int,
    source: Callable[[int], AsyncGenerator[bytes, None]],
) -> int:
    pending = bytearray()
    async with contextlib.aclosing(source(held)) as pieces:  # closed even when cut short
        async for data in pieces:
            pending += data
            while len(pending) >= MAX_BLOB_PIECE:
                held = await _put(session, blob_id, held, bytes(pending[:MAX_BLOB_PIECE]))
                del pending[:MAX_BLOB_PIECE]
    if pending:
        held = await _put(session, blob_id, held, bytes(pending))
    return held


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
