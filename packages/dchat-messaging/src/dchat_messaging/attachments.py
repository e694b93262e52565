"""Attachments end to end: seal on the sender, open and re-validate on the recipient.

Theory of operation (protocol §24, rationale "Attachments end to end"):

Sender
    The node first stores the file with the storage upload rules
    (``Database.attachments.upload``: the kind must take the declared type, the
    magic bytes must agree, size limit and quota, images measured,
    thumbnailed and stripped of location). :func:`seal_stored` then makes a
    fresh :class:`~dchat_crypto.hazmat.FileKey` and seals the stored content
    once to learn the blob id (BLAKE2b-256 of the sealed bytes) without
    keeping the sealed bytes anywhere; :func:`describe` turns the record into
    the :class:`~dchat_messaging.Attachment` descriptor, checked by
    :func:`check_claim` as the recipient will check it. The upload to the
    relay reads :func:`sealed_from` ``offset``: sealing is deterministic under
    the key, so a resumed upload re-seals and skips what the relay holds.

Recipient
    :func:`check_claim` refuses, before any download, a descriptor whose kind
    does not take its type, whose size is over the kind's limit, or whose
    sealed size or extras contradict it. The downloaded sealed bytes are
    read through :class:`OpenedReader`, which counts and hashes them (the
    length and blob id must match) and opens them under the key, and that
    reader is the stream of an ordinary storage upload (:func:`store_received`),
    so the bytes pass the same upload rules as on the sender: a file whose
    bytes are not its declared type is refused there. The stored record must
    then agree with the descriptor (size, type, image dimensions), else it is
    deleted and the attachment refused as a ``lie``. Every refusal is an
    :class:`AttachmentRefusedError` with a code; the message itself is kept.

:class:`AttachmentKeeper` puts these steps over a node's database, one
synchronous call each, for the node's trio shell to run in its worker.

Nothing here holds a whole file in memory (images excepted, as in storage:
up to the image limit, to decode them). This module imports
:mod:`dchat_storage`, so :mod:`dchat_messaging` does not import it.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import TYPE_CHECKING, Final, Protocol

from dchat_core import DchatError
from dchat_crypto import DecryptionError
from dchat_crypto.hazmat import (
    SEALED_CHUNK,
    FileDecryptor,
    FileKey,
    seal_file_chunks,
    sealed_size,
)
from dchat_storage import (
    EngineStore,
    InvalidArgumentError,
    NotFoundError,
    UploadLimits,
    detect_media_type,
)
from dchat_storage.lowlevel import (
    ContentTypeMismatchError,
    DecompressionBombError,
    MalformedContentError,
    UploadTooLargeError,
    blob_hasher,
    check_type,
    normalize_type,
)

from ._attachment import MAX_THUMBNAIL, Attachment, AttachmentBook, AttachmentEntry
from ._conversations import Conversations
from ._errors import AttachmentRefusedError, RequestError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

    from dchat_storage import AttachmentRecord, Database
    from dchat_storage.lowlevel import AttachmentRepo

__all__ = (
    "AttachmentKeeper",
    "OpenedReader",
    "check_claim",
    "describe",
    "seal_stored",
    "sealed_from",
    "store_received",
)


class _Readable(Protocol):
    """A binary stream: ``read(n)`` gives at most ``n`` bytes, b"" at the end."""

    def read(self, size: int = -1, /) -> bytes:
        """Read up to ``size`` bytes."""
        ...


_THUMBNAILED: Final = frozenset({"image", "video"})
_TIMED: Final = frozenset({"voice", "audio", "video"})


def check_claim(attachment: Attachment, limits: UploadLimits | None = None) -> Attachment:
    """Check a descriptor against the upload rules, before any byte is fetched.

    Raises:
        AttachmentRefusedError: ``type_mismatch``, ``too_large``, ``malformed``
            (an empty file) or ``bad_descriptor``.
    """
    if attachment.is_location:
        return attachment
    limits = limits or UploadLimits()
    kind = attachment.kind
    try:
        check_type(kind, attachment.media_type, normalize_type(attachment.media_type))
    except (ContentTypeMismatchError, InvalidArgumentError) as exc:
        raise AttachmentRefusedError("type_mismatch", str(exc)) from None
    if attachment.size > limits.limit_for(kind):
        raise AttachmentRefusedError(
            "too_large", f"a {kind} may be at most {limits.limit_for(kind)}"
        )
    if attachment.size == 0:
        raise AttachmentRefusedError("malformed", "an attachment has at least one byte")
    if attachment.sealed_size != sealed_size(attachment.size):
        raise AttachmentRefusedError("bad_descriptor", "the sealed size does not fit the size")
    extras = (
        (attachment.thumbnail or attachment.width) and kind not in _THUMBNAILED,
        attachment.duration_ms and kind not in _TIMED,
        attachment.waveform and kind != "voice",
        attachment.thumbnail and detect_media_type(attachment.thumbnail) != "image/jpeg",
    )
    if any(extras):
        raise AttachmentRefusedError("bad_descriptor", f"a field that a {kind} does not carry")
    return attachment


def seal_stored(size: int, content: Iterable[bytes]) -> tuple[FileKey, bytes, int]:
    """Seal ``content`` (``size`` bytes) under a fresh key once, keeping nothing.

    Returns:
        ``(key, blob id, sealed size)``.
    """
    key, hasher, total = FileKey.generate(), blob_hasher(), 0
    for sealed in seal_file_chunks(key, size, content):
        hasher.update(sealed)
        total += len(sealed)
    digest: bytes = hasher.digest()
    return key, digest, total


def sealed_from(
    key: bytes, size: int, content: Iterable[bytes], offset: int, piece: int = 0
) -> Iterator[bytes]:
    """The sealed file from byte ``offset`` on (the bytes before are sealed and dropped).

    ``piece``: yield pieces of that many bytes (the last one shorter), so a
    caller that moves each piece across threads makes fewer trips; 0: as sealed.
    """
    skip, pending = offset, bytearray()
    for sealed in seal_file_chunks(FileKey(key), size, content):
        if skip >= len(sealed):
            skip -= len(sealed)
            continue
        pending += sealed[skip:]
        skip = 0
        if len(pending) >= piece:
            yield bytes(pending)
            pending.clear()
    if pending:
        yield bytes(pending)


def describe(
    record: AttachmentRecord,
    key: FileKey,
    blob_id: bytes,
    sealed: int,
    relay: str,
    *,
    caption: str = "",
    duration_ms: int = 0,
    waveform: bytes = b"",
) -> Attachment:
    """The descriptor of a stored attachment sealed as ``blob_id``, checked like a received one.

    Raises:
        AttachmentRefusedError: as :func:`check_claim`.
    """
    thumbnail = record.thumbnail if len(record.thumbnail) <= MAX_THUMBNAIL else b""
    attachment = Attachment(
        record.kind,
        caption,
        blob_id=blob_id,
        key=key.to_bytes(),
        size=record.size,
        sealed_size=sealed,
        media_type=record.media_type,
        relay=relay,
        name=record.name[:255],
        thumbnail=thumbnail,
        width=record.width or 0,
        height=record.height or 0,
        duration_ms=duration_ms,
        waveform=waveform,
    )
    try:
        attachment = Attachment.from_map(attachment.to_map())
    except ValueError as exc:
        raise AttachmentRefusedError("bad_descriptor", str(exc)) from None
    return check_claim(attachment)


class OpenedReader:
    """Reads the content of a sealed blob from a stream of its sealed bytes.

    The sealed bytes are counted and hashed: at their end the length must be
    the declared sealed size and the hash the blob id; every chunk must open
    under the key. Any failure raises :class:`AttachmentRefusedError`
    (``bad_blob``); content already read must then be discarded (a storage
    upload does that by itself).
    """

    def __init__(self, sealed: _Readable, attachment: Attachment) -> None:
        self._sealed = sealed
        self._attachment = attachment
        self._decryptor = FileDecryptor(FileKey(attachment.key), attachment.size)
        self._hasher = blob_hasher()
        self._count = 0
        self._buf = bytearray()
        self._done = False

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes of content (all that is left if negative); b"" at the end."""
        while not self._done and (size < 0 or len(self._buf) < size):
            self._pull()
        size = len(self._buf) if size < 0 else size
        out = bytes(self._buf[:size])
        del self._buf[:size]
        return out

    def _pull(self) -> None:
        raw = self._sealed.read(SEALED_CHUNK)
        try:
            if raw:
                self._count += len(raw)
                if self._count > self._attachment.sealed_size:
                    raise DecryptionError
                self._hasher.update(raw)
                self._buf += self._decryptor.feed(raw)
                return
            self._done = True
            if self._count != self._attachment.sealed_size:
                raise DecryptionError
            if self._hasher.digest() != self._attachment.blob_id:
                raise DecryptionError
            self._buf += self._decryptor.finish()
        except DecryptionError:
            self._done = True
            raise AttachmentRefusedError(
                "bad_blob", "the blob is damaged or not this one"
            ) from None


_SEAL_KEY: Final = "attachment.seal."
"""Settings key prefix of an outgoing file's key, blob id and sealed size."""
_REFUSALS: Final = (
    (ContentTypeMismatchError, "type_mismatch"),
    (UploadTooLargeError, "too_large"),
    (MalformedContentError, "malformed"),
    (DecompressionBombError, "malformed"),
)


def store_received(
    repo: AttachmentRepo,
    owner_id: str,
    attachment: Attachment,
    sealed: _Readable,
    now: float,
    limits: UploadLimits | None = None,
) -> AttachmentRecord:
    """Open a downloaded blob into the node's attachment store, re-validating it.

    Args:
        repo: The node's attachment store.
        owner_id: The identity whose quota it counts against.
        attachment: The descriptor the message carried.
        sealed: The downloaded sealed bytes.
        now: The time.
        limits: The upload rules (default :class:`UploadLimits`).

    Raises:
        AttachmentRefusedError: the descriptor, the blob or the bytes are not
            what the message declared (nothing is kept).
        QuotaExceededError: this node's attachment quota is used up.
    """
    check_claim(attachment, limits)
    reader = OpenedReader(sealed, attachment)
    try:
        record, _ = repo.upload(
            owner_id,
            attachment.kind,
            attachment.media_type,
            reader,
            now,
            name=attachment.name,
            keep_location=True,  # what the sender chose to send, unchanged
            limits=limits,
        )
    except (ContentTypeMismatchError, UploadTooLargeError, MalformedContentError) as exc:
        code = next(code for kind, code in _REFUSALS if isinstance(exc, kind))
        raise AttachmentRefusedError(code, str(exc)) from None
    declared = (attachment.size, normalize_type(attachment.media_type))
    dimensions = (attachment.width, attachment.height)
    if (record.size, record.media_type) != declared or (
        attachment.width and (record.width, record.height) != dimensions
    ):
        repo.delete(record.attachment_id)
        raise AttachmentRefusedError("lie", "the file is not what its message declared")
    return record


class AttachmentKeeper:
    """A node's attachments over its database: every step a node's shell runs in its worker.

    Each method is one synchronous call (the node runs it in its database
    worker); the shell only moves bytes between them and the relay.

    Args:
        db: The node's database (its attachment store, settings and engine state).
        piece: The size of the sealed pieces :meth:`sealed_pieces` yields.
    """

    def __init__(self, db: Database, piece: int = 512 * 1024, *, parts: Path | None = None) -> None:
        self.db, self._piece, self._parts, self._parts_due = db, piece, parts, 0.0
        self._log_dirty = False  # an expiry's truncation of the WAL is still to finish
        self.expired_total = 0
        """Texts deleted by expiry since start (each batch also logged ``expired`` events)."""
        self.expiry_failures = 0
        """Expiry calls that failed and changed nothing (retried at the next call)."""
        self.expiry_error = ""
        """The error type of the latest failed expiry."""
        store = EngineStore(db)
        self.book, self._conversations = AttachmentBook(store), Conversations(store)

    def expire(self, now: float) -> list[tuple[str, bytes]]:
        """Delete the texts whose disappearing timer ran out, with their files, now.

        The texts, notes and attachment records go in one transaction
        (``Conversations.timers.expire``) with the files' content and keys; a
        download under way is deleted too, and the write-ahead log truncated
        so no old page image of them stays on disk (retried at the next calls
        while a reader holds part of it). At the first call and
        hourly after, downloads abandoned for a day are deleted
        (:meth:`drop_stale_parts`).

        Returns:
            ``(relay, blob id)`` of each blob we uploaded for them, for the
            caller to delete from the relay. A failed expiry (disk trouble, a
            damaged record) returns none and changes nothing: the next call
            retries it; :attr:`expiry_failures` and :attr:`expiry_error` say so.
        """
        try:
            return self._expire(now)
        except DchatError as exc:
            self.expiry_failures += 1
            self.expiry_error = type(exc).__name__
            return []

    def _expire(self, now: float) -> list[tuple[str, bytes]]:
        if now >= self._parts_due:
            self._parts_due = now + 3600.0
            self.drop_stale_parts(now)
        if not self._log_dirty and not self.db.messages.expired(now, 1):
            return []  # the usual second: one indexed read, no write transaction
        blobs: list[tuple[str, bytes]] = []
        parts: list[str] = []
        with self.db.transaction():
            gone = self._conversations.timers.expire(now)
            self.expired_total += len(gone)
            for expired in gone:
                if (entry := expired.attachment) is None:
                    continue
                if entry.local:
                    self.db.settings.delete(_SEAL_KEY + entry.local.hex())
                    self.db.attachments.purge(entry.local)
                if not entry.attachment.is_location:
                    parts.append(entry.attachment.blob_id.hex() + ".part")
                    if expired.direction == "out":
                        blobs.append((entry.attachment.relay, entry.attachment.blob_id))
        for part in parts:  # once the deletion is committed
            self._drop_part(part)
        if gone or self._log_dirty:  # retried each call until no reader holds the log
            self._log_dirty = not self.db.truncate_log()
        return blobs

    def drop_stale_parts(self, now: float, age: float = 86400.0) -> int:
        """Delete downloads abandoned over ``age`` seconds ago (``*.part``); how many."""
        if self._parts is None or not self._parts.is_dir():
            return 0
        dropped = 0
        for part in self._parts.glob("*.part"):
            with contextlib.suppress(OSError):  # gone meanwhile: nothing to drop
                if part.stat().st_mtime < now - age:
                    part.unlink()
                    dropped += 1
        return dropped

    def _drop_part(self, name: str) -> None:
        if self._parts is not None:
            with contextlib.suppress(OSError):
                (self._parts / name).unlink(missing_ok=True)

    def store(
        self, owner_id: str, kind: str, media_type: str, source: _Readable, now: float, name: str
    ) -> AttachmentRecord:
        """Store an outgoing file by the upload rules (see ``AttachmentRepo.upload``)."""
        record, _ = self.db.attachments.upload(owner_id, kind, media_type, source, now, name=name)
        return record

    def sealing(self, record: AttachmentRecord, now: float) -> tuple[FileKey, bytes, int]:
        """The file's key, blob id and sealed size, kept (sealed) so a retried send resumes."""
        name = _SEAL_KEY + record.attachment_id.hex()
        if (kept := self.db.settings.get(name)) is not None:
            return FileKey(kept[:32]), kept[32:64], int.from_bytes(kept[64:], "big")
        chunks = self.db.attachments.open(record.attachment_id)
        key, blob_id, sealed = seal_stored(record.size, chunks)
        self.db.settings.set(name, key.to_bytes() + blob_id + sealed.to_bytes(8, "big"), now)
        return key, blob_id, sealed

    def sealed_pieces(self, record: AttachmentRecord, key: bytes, offset: int) -> Iterator[bytes]:
        """The stored file sealed again from ``offset`` on, in pieces (for the relay push)."""
        chunks = self.db.attachments.open(record.attachment_id)
        return sealed_from(key, record.size, chunks, offset, self._piece)

    def sent(self, message_id: bytes, attachment: Attachment, local: bytes) -> AttachmentEntry:
        """Record a sent message's attachment: stored (ours, or a location)."""
        state = "stored" if local or attachment.is_location else "pending"
        return self.keep(message_id, AttachmentEntry(attachment, state, "", local))

    def keep(self, message_id: bytes, entry: AttachmentEntry) -> AttachmentEntry:
        """Keep a message's attachment record (and tie its stored file to the message)."""
        self.book.put(message_id, entry)
        # A message already gone leaves its file unreferenced: collected after the grace period.
        with contextlib.suppress(NotFoundError):
            if entry.local:
                self.db.attachments.attach(message_id, entry.local)
        return entry

    def entry(self, message_id: bytes) -> AttachmentEntry:
        """A message's attachment record.

        Raises:
            RequestError: ``not_found``: the message carries no attachment.
        """
        entry = self.book.get(message_id)
        if entry is None:
            raise RequestError("not_found", "that message carries no attachment")
        return entry

    def receive(
        self, message_id: bytes, entry: AttachmentEntry, part: Path, owner_id: str, now: float
    ) -> AttachmentEntry:
        """Open the downloaded blob at ``part`` into the store; the record, stored or refused.

        ``part`` is deleted once read (kept if reading it failed: the download resumes).
        """
        try:
            with part.open("rb") as sealed:
                record = store_received(
                    self.db.attachments, owner_id, entry.attachment, sealed, now
                )
        except AttachmentRefusedError as exc:
            part.unlink(missing_ok=True)
            return self.keep(message_id, replace(entry, state="refused", code=exc.code))
        part.unlink(missing_ok=True)
        return self.keep(message_id, replace(entry, state="stored", local=record.attachment_id))

    def chunks(self, entry: AttachmentEntry) -> Iterator[bytes]:
        """A stored attachment's bytes, chunk by chunk (each read is a database call)."""
        return self.db.attachments.open(entry.local)
