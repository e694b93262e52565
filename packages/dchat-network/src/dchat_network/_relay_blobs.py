"""The relay's answers to blob requests, sans-IO, over a :class:`RelayBlobStore`.

:func:`answer_blob` serves one ``blob_open``, ``blob_put``, ``blob_get`` or ``blob_del``
(see :mod:`._relay_blob_wire`) for a link that proved mailbox ``owner``, and
translates the store's typed errors into the relay's error codes:

============================  ===================  ===============================
store error                   answer               meaning
============================  ===================  ===============================
``UploadTooLargeError``       error ``blob_size``  over the relay's blob size limit
``QuotaExceededError``        error ``blob_quota`` the mailbox's blob quota is used
``StorageFullError``          busy ``disk``        all blobs reach the disk budget
``BlobOffsetError``           error ``bad_offset`` not at the bytes held: re-open
``BlobHashMismatchError``     error ``bad_blob``   bytes do not hash to the id
``NotFoundError``             error ``no_blob``    no such upload or complete blob
``InvalidArgumentError``      error ``bad_blob``   a size or range out of bounds
============================  ===================  ===============================

The store does the file I/O; the relay host runs this, like every request,
in its worker. Without a store every blob request is ``unsupported``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ._relay import RelayBusy, RelayError
from ._relay_blob_wire import BlobAt, BlobData, BlobDelete, BlobGet, BlobGone, BlobOpen, BlobPut
from ._relay_limits import retry_ms

if TYPE_CHECKING:
    from dchat_storage.lowlevel import RelayBlobStore

    from ._relay import RelayMessage

__all__ = ("answer_blob",)

_FULL_RETRY: Final = 600.0
"""The ``retry`` of a ``busy`` (``disk``) answer to a blob that does not fit (seconds)."""


def answer_blob(
    store: RelayBlobStore | None,
    owner: bytes,
    request: BlobOpen | BlobPut | BlobGet | BlobDelete,
    now: float,
) -> RelayMessage:
    """The answer to one blob request from the link of mailbox ``owner``."""
    if store is None:
        return RelayError(request.rid, "unsupported", "this relay stores no blobs")
    # Imported here: only a relay with a blob store needs dchat-storage (and SQLAlchemy).
    from dchat_storage import (
        InvalidArgumentError,
        NotFoundError,
        QuotaExceededError,
        StorageFullError,
    )
    from dchat_storage.lowlevel import (
        BlobHashMismatchError,
        BlobOffsetError,
        UploadTooLargeError,
    )

    codes = (
        (BlobOffsetError, "bad_offset"),
        (BlobHashMismatchError, "bad_blob"),
        (UploadTooLargeError, "blob_size"),
        (QuotaExceededError, "blob_quota"),
        (NotFoundError, "no_blob"),
        (InvalidArgumentError, "bad_blob"),
    )
    try:
        match request:
            case BlobOpen(rid, blob_id, size):
                return BlobAt(rid, blob_id, store.begin(owner, blob_id, size, now), size)
            case BlobPut(rid, blob_id, offset, data):
                held = store.write(owner, blob_id, offset, data, now)
                state = store.state(blob_id)
                return BlobAt(rid, blob_id, held, state.size if state else held)
            case BlobGet(rid, blob_id, offset, limit):
                data, size = store.read(blob_id, offset, limit)
                return BlobData(rid, offset, size, data)
            case BlobDelete(rid, blob_id):
                return BlobGone(rid, int(store.delete(owner, blob_id)))
    except StorageFullError:
        return RelayBusy(request.rid, "disk", retry_ms(_FULL_RETRY))
    except (
        InvalidArgumentError,
        NotFoundError,
        QuotaExceededError,
        BlobHashMismatchError,
        UploadTooLargeError,
    ) as exc:
        code = next(code for kind, code in codes if isinstance(exc, kind))
        return RelayError(request.rid, code, str(exc)[:512])
    raise AssertionError("unreachable")  # pragma: no cover
