"""Attachments on the user node: the trio shell around ``dchat_messaging.attachments``.

Each step runs in the database worker (:class:`AttachmentKeeper`); this shell
pushes blobs to the first home relay and downloads them into
``<data-dir>/attachments/<blob id>.part`` (ciphertext; a killed download resumes).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from dchat_core import RelayAddress
from dchat_messaging import Attachment, Content
from dchat_messaging.attachments import AttachmentKeeper, describe
from dchat_network.lowlevel import drop_blobs, fetch_blob_file, push_blob

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator
    from pathlib import Path

    from dchat_messaging.lowlevel import AttachmentEntry
    from dchat_storage import AsyncStore

    from ._service import UserService

log = logging.getLogger("dchat.attachments")

__all__ = ("AttachmentService",)


class AttachmentService:
    """Sends, fetches and reads attachments for one user node."""

    def __init__(self, user: UserService, store: AsyncStore, directory: Path) -> None:
        self._user, self._dir, self._fetching = user, directory, trio.Lock()
        self.keeper = AttachmentKeeper(store.db, parts=directory)

    async def run_expiry(self) -> None:
        """Each second: expire disappearing messages, and the relay's copies of our blobs."""
        failures, told = 0, ""
        while True:
            before = self.keeper.expired_total
            blobs = await self._user.run(self.keeper.expire, self._user.now())
            if self.keeper.expired_total != before:  # ``expired`` events were logged
                self._user.events_logged()
            if self.keeper.expiry_failures != failures and self.keeper.expiry_error != told:
                told = self.keeper.expiry_error  # once per kind of failure, not every second
                log.warning("disappearing messages not expired yet: %s", told)
            failures = self.keeper.expiry_failures
            if blobs:
                await drop_blobs(blobs, self._user.identity.signing_key)
            await trio.sleep(1)

    async def send(self, to: str, source: Any, kind: str, media_type: str, **extra: Any) -> bytes:
        """Store, seal, upload and send a file read from ``source``; returns the message id."""
        run, owner, now = self._user.run, str(self._user.identity.identity_id), self._user.now()
        await run(self._user.book.find, to)  # an unknown contact: before any byte
        record = await run(
            self.keeper.store, owner, kind, media_type, source, now, extra.pop("name", "")
        )
        key, blob_id, sealed = await run(self.keeper.sealing, record, now)
        relay = self._user.home_relays[0]
        attachment = describe(record, key, blob_id, sealed, str(relay), **extra)

        async def source_from(offset: int) -> AsyncGenerator[bytes, None]:
            pieces = self.keeper.sealed_pieces(record, attachment.key, offset)
            while (piece := await run(next, pieces, None)) is not None:
                yield piece

        signing = self._user.identity.signing_key  # the link proves our mailbox: its quota
        await push_blob(relay, signing, blob_id, sealed, source_from)
        return await self._send(to, attachment, record.attachment_id)

    async def send_location(self, to: str, lat: float, lon: float, label: str = "") -> bytes:
        """Send a location (no blob, no map tile); the API checks the ranges first."""
        return await self._send(to, Attachment.location(lat, lon, label), b"")

    async def _send(self, to: str, attachment: Attachment, local: bytes) -> bytes:
        content = Content.attachment_message(attachment, now_ms=int(self._user.now() * 1000))
        mid = bytes(await self._user.send(to, "", content=content))
        await self._user.run(self.keeper.sent, mid, attachment, local)
        return mid

    async def entry(self, message_id: bytes) -> AttachmentEntry:
        """The message's attachment record (``not_found`` if it has none)."""
        return await self._user.run(self.keeper.entry, message_id)

    async def fetch(self, message_id: bytes) -> AttachmentEntry:
        """Download, open and re-validate a pending attachment; its record after."""
        async with self._fetching:  # one at a time: two downloads into one .part would mix
            entry = await self.entry(message_id)
            if entry.state != "pending" or entry.attachment.is_location:
                return entry
            att, me, now = entry.attachment, str(self._user.identity.identity_id), self._user.now()
            part = self._dir / (att.blob_id.hex() + ".part")
            await fetch_blob_file(RelayAddress.parse(att.relay), att.blob_id, att.sealed_size, part)
            return await self._user.run(self.keeper.receive, message_id, entry, part, me, now)

    async def content(self, entry: AttachmentEntry) -> AsyncGenerator[bytes, None]:
        """A stored attachment's bytes, chunk by chunk."""
        chunks = self.keeper.chunks(entry)
        while (chunk := await self._user.run(next, chunks, None)) is not None:
            yield chunk
