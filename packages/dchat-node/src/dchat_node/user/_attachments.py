"""Attachments on the user node: the trio shell around :mod:`dchat_messaging.attachments`.

Sending stores the file by the storage upload rules, seals it under a fresh
key (kept sealed in the settings, so a retried send resumes its upload),
pushes the blob to the first home relay, then sends the descriptor. Fetching
downloads the blob into ``<data-dir>/attachments/<blob id>.part`` (ciphertext;
a killed download resumes), then opens and re-validates it into the node's
attachment store. Storage calls run in the database worker.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import TYPE_CHECKING

import trio

from dchat_core import RelayAddress
from dchat_crypto.hazmat import FileKey
from dchat_messaging import Attachment, AttachmentRefusedError, Content
from dchat_messaging.attachments import describe, seal_stored, sealed_from, store_received
from dchat_messaging.lowlevel import AttachmentBook, AttachmentEntry
from dchat_network.lowlevel import MAX_BLOB_PIECE, fetch_blob_file, push_blob
from dchat_storage import EngineStore

from .._errors import NodeStateError

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator
    from pathlib import Path
    from typing import Any

    from dchat_core import MessageId
    from dchat_storage import AsyncStore, AttachmentRecord

    from ._service import UserService

__all__ = ("AttachmentService",)


class AttachmentService:
    """Sends, fetches and reads attachments for one user node."""

    def __init__(self, user: UserService, store: AsyncStore, directory: Path) -> None:
        self._user, self._dir, self._db = user, directory, store.db
        self.book, self._fetching = AttachmentBook(EngineStore(self._db)), trio.Lock()

    async def send(self, to: str, source: Any, kind: str, media_type: str, **extra: Any) -> bytes:
        """Store, seal, upload and send a file read from ``source``; returns the message id."""
        owner, now = str(self._user.identity.identity_id), self._user.now()
        await self._user.run(self._user.book.find, to)  # an unknown contact: before any byte
        upload = functools.partial(self._db.attachments.upload, name=extra.pop("name", ""))
        record, _ = await self._user.run(upload, owner, kind, media_type, source, now)
        key, blob_id, sealed = await self._sealed(record)
        relay = self._user.home_relays[0]
        attachment = describe(record, key, blob_id, sealed, str(relay), **extra)

        async def source_from(offset: int) -> AsyncGenerator[bytes, None]:
            chunks = self._db.attachments.open(record.attachment_id)
            pieces = sealed_from(attachment.key, record.size, chunks, offset, MAX_BLOB_PIECE)
            while (piece := await self._user.run(next, pieces, None)) is not None:
                yield piece

        signing = self._user.identity.signing_key  # the link proves our mailbox: its quota
        await push_blob(relay, signing, blob_id, sealed, source_from)
        return await self._send(to, attachment, record.attachment_id)

    async def _sealed(self, record: AttachmentRecord) -> tuple[FileKey, bytes, int]:
        """The file's key, blob id and sealed size: kept, so a retried send resumes its upload."""
        name = "attachment.seal." + record.attachment_id.hex()
        if (kept := await self._user.state_get(name)) is not None:
            return FileKey(kept[:32]), kept[32:64], int.from_bytes(kept[64:], "big")
        chunks = self._db.attachments.open(record.attachment_id)
        key, blob_id, sealed = await self._user.run(seal_stored, record.size, chunks)
        await self._user.state_put(name, key.to_bytes() + blob_id + sealed.to_bytes(8, "big"))
        return key, blob_id, sealed

    async def send_location(self, to: str, lat: float, lon: float, label: str = "") -> bytes:
        """Send a location (no blob, no map tile); the API checks the ranges first."""
        return await self._send(to, Attachment.location(lat, lon, label), b"")

    async def _send(self, to: str, attachment: Attachment, local: bytes) -> bytes:
        content = Content.attachment_message(attachment, now_ms=int(self._user.now() * 1000))
        mid: MessageId = await self._user.send_content(to, content)
        state = "stored" if local or attachment.is_location else "pending"
        await self._keep(bytes(mid), AttachmentEntry(attachment, state, "", local))
        return bytes(mid)

    async def entry(self, message_id: bytes) -> AttachmentEntry:
        """The message's attachment record (``not_found`` if it has none)."""
        entry = await self._user.run(self.book.get, message_id)
        if entry is None:
            raise NodeStateError("not_found", "that message carries no attachment")
        return entry

    async def fetch(self, message_id: bytes) -> AttachmentEntry:
        """Download, open and re-validate a pending attachment; its record after."""
        async with self._fetching:  # one at a time: two downloads into one .part would mix
            entry = await self.entry(message_id)
            if entry.state != "pending" or entry.attachment.is_location:
                return entry
            att = entry.attachment
            part = self._dir / (att.blob_id.hex() + ".part")
            relay = RelayAddress.parse(att.relay)
            await fetch_blob_file(relay, att.blob_id, att.sealed_size, part)
            try:
                record = await self._user.run(self._store_file, att, part)
            except AttachmentRefusedError as exc:
                entry = replace(entry, state="refused", code=exc.code)
            else:
                entry = replace(entry, state="stored", local=record.attachment_id)
            await self._keep(message_id, entry)
            await trio.Path(part).unlink(missing_ok=True)
            return entry

    def _store_file(self, att: Attachment, part: Path) -> Any:
        with part.open("rb") as sealed:  # a worker thread: plain I/O
            owner, now = str(self._user.identity.identity_id), self._user.now()
            return store_received(self._db.attachments, owner, att, sealed, now)

    async def _keep(self, message_id: bytes, entry: AttachmentEntry) -> None:
        def keep() -> None:
            self.book.put(message_id, entry)
            if entry.local:
                self._db.attachments.attach(message_id, entry.local)

        await self._user.run(keep)

    async def content(self, entry: AttachmentEntry) -> AsyncIterator[bytes]:
        """A stored attachment's bytes, chunk by chunk."""
        chunks = self._db.attachments.open(entry.local)
        while (chunk := await self._user.run(next, chunks, None)) is not None:
            yield chunk
