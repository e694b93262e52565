"""API routes for attachments (user role): streamed uploads and downloads.

``POST /v1/attachments?to=&kind=&type=[&name=&caption=&duration_ms=&waveform=]``
takes the file as the raw request body, streamed into the node's attachment
store (the storage upload rules check it as it arrives), then sealed, pushed
to the home relay and sent (202, the message id). ``POST /v1/locations``
sends a location. ``GET /v1/attachments/{message_id}`` describes a message's
attachment; ``.../content`` streams its bytes (fetching and re-validating
it first if it is still on the relay); ``.../thumbnail`` is the JPEG
thumbnail. A refused attachment answers 422 with its code (``type_mismatch``,
``too_large``, ``malformed``, ``bad_blob``, ``lie``, ``bad_descriptor``).
"""

from __future__ import annotations

import base64
import functools
from typing import TYPE_CHECKING, Annotated, Any

import trio
from fastapi import Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from dchat_core import DchatError, MessageId

from .._errors import NodeStateError
from ._roles import user_role

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fastapi import FastAPI
    from fastapi.params import Depends

    from dchat_messaging.lowlevel import AttachmentEntry

    from .._runtime import Node
    from ..user._attachments import AttachmentService

__all__ = ("add_attachment_routes", "attachment_json")


class SendLocation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Field(min_length=1, max_length=128)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    label: str = Field(default="", max_length=200)


class BodyReader:
    """The request body as a blocking ``read(n)`` stream, for a worker thread.

    Each read pulls chunks from the event loop (``trio.from_thread.run``), so
    the upload streams from the socket into storage without being held whole.
    """

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks, self._buf, self._done = chunks, bytearray(), False

    async def _next(self) -> bytes | None:
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            return None

    async def drain(self) -> None:
        """Read and drop the rest of the body, so a refused client hears the answer."""
        while not self._done:
            self._done = await self._next() is None

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes (all that is left if negative); b"" at the end."""
        while not self._done and (size < 0 or len(self._buf) < size):
            chunk = trio.from_thread.run(self._next)
            self._done = chunk is None
            self._buf += chunk or b""
        size = len(self._buf) if size < 0 else size
        out = bytes(self._buf[:size])
        del self._buf[:size]
        return out


def attachment_json(message_id: bytes, entry: AttachmentEntry) -> dict[str, Any]:
    """A message's attachment as the API shows it (never its key)."""
    att = entry.attachment
    shown: dict[str, Any] = {
        "message_id": str(MessageId(message_id)),
        "kind": att.kind,
        "state": entry.state,
        "refused": entry.code or None,
        "caption": att.caption,
    }
    if att.is_location:
        lat, lon = att.latitude_e6 / 1e6, att.longitude_e6 / 1e6
        return shown | {"lat": lat, "lon": lon, "label": att.label}
    return shown | {
        "type": att.media_type,
        "name": att.name,
        "size": att.size,
        "sealed_size": att.sealed_size,
        "blob_id": att.blob_id.hex(),
        "width": att.width or None,
        "height": att.height or None,
        "duration_ms": att.duration_ms or None,
        "waveform": base64.b64encode(att.waveform).decode() if att.waveform else None,
        "thumbnail": len(att.thumbnail) or None,
    }


def _refused(entry: AttachmentEntry) -> None:
    if entry.state == "refused":
        raise NodeStateError("attachment_refused", f"refused: {entry.code}")


def add_attachment_routes(app: FastAPI, node: Node, auth: list[Depends]) -> None:
    """Add the routes above to ``app``."""

    def service() -> AttachmentService:
        return user_role(node).attachments

    def message_id(text: str) -> bytes:
        return bytes(MessageId.parse(text))  # else InvalidIdError: 400 invalid_input

    @app.post("/v1/attachments", dependencies=auth, status_code=202)
    async def send_attachment(
        request: Request,
        to: Annotated[str, Query(min_length=1, max_length=128)],
        kind: Annotated[str, Query(pattern="^(image|video|audio|voice|document)$")],
        media_type: Annotated[str, Query(alias="type", min_length=1, max_length=127)],
        name: Annotated[str, Query(max_length=255)] = "",
        caption: Annotated[str, Query(max_length=4000)] = "",
        duration_ms: Annotated[int, Query(ge=0, le=86_400_000)] = 0,
        waveform: Annotated[str, Query(max_length=256, pattern="^([0-9a-f]{2})*$")] = "",
    ) -> dict[str, Any]:
        source = BodyReader(request.stream().__aiter__())
        send = functools.partial(
            service().send, name=name, caption=caption, duration_ms=duration_ms
        )
        try:
            mid = await send(to, source, kind, media_type, waveform=bytes.fromhex(waveform))
        except DchatError:
            await source.drain()  # else the client sees a broken upload, not the refusal
            raise
        return attachment_json(mid, await service().entry(mid))

    @app.post("/v1/locations", dependencies=auth, status_code=202)
    async def send_location(body: SendLocation) -> dict[str, Any]:
        mid = await service().send_location(body.to, body.lat, body.lon, body.label)
        return attachment_json(mid, await service().entry(mid))

    @app.get("/v1/attachments/{message}", dependencies=auth)
    async def describe_attachment(message: str) -> dict[str, Any]:
        mid = message_id(message)
        return attachment_json(mid, await service().entry(mid))

    @app.get("/v1/attachments/{message}/content", dependencies=auth)
    async def attachment_content(message: str) -> StreamingResponse:
        entry = await service().fetch(message_id(message))
        _refused(entry)
        if entry.attachment.is_location:
            raise NodeStateError("invalid_request", "a location has no content")
        headers = {"content-length": str(entry.attachment.size)}
        media = entry.attachment.media_type
        return StreamingResponse(service().content(entry), media_type=media, headers=headers)

    @app.get("/v1/attachments/{message}/thumbnail", dependencies=auth)
    async def attachment_thumbnail(message: str) -> Response:
        entry = await service().entry(message_id(message))
        if not entry.attachment.thumbnail:
            raise NodeStateError("not_found", "that attachment has no thumbnail")
        return Response(entry.attachment.thumbnail, media_type="image/jpeg")
