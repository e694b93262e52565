"""Upload policy: attachment kinds, size limits, quota, and the type check.

The declared type is the sender's claim; the content's magic numbers are the
truth (:mod:`._sniff`). An upload is accepted only when the two agree, allowing
for containers that legitimately carry either audio or video (MP4, WebM) and
for ZIP-based office documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ._errors import ContentTypeMismatchError, InvalidArgumentError

__all__ = ("KINDS", "UploadLimits", "check_type", "normalize_type")

MiB: Final = 1024 * 1024

KINDS: Final = ("audio", "document", "image", "video", "voice")

_IMAGE: Final = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_VIDEO: Final = frozenset({"video/mp4", "video/quicktime", "video/webm", "video/x-matroska"})
_AUDIO: Final = frozenset(
    {"audio/mpeg", "audio/ogg", "audio/wav", "audio/mp4", "audio/flac", "audio/webm"}
)
_VOICE: Final = frozenset({"audio/ogg", "audio/mp4", "audio/webm", "audio/mpeg"})
_OFFICE: Final = frozenset(
    {
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
    }
)
_DOCUMENT: Final = (
    frozenset({"application/pdf", "text/plain", "text/markdown", "text/csv", "application/zip"})
    | _OFFICE
    | _IMAGE
    | _VIDEO
    | _AUDIO
)
GENERIC: Final = "application/octet-stream"
_ALLOWED: Final = {
    "image": _IMAGE,
    "video": _VIDEO,
    "audio": _AUDIO,
    "voice": _VOICE,
    "document": _DOCUMENT | {GENERIC},
}
_ALIASES: Final = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "audio/opus": "audio/ogg",
    "audio/mp3": "audio/mpeg",
    "audio/x-m4a": "audio/mp4",
    "audio/m4a": "audio/mp4",
    "audio/x-flac": "audio/flac",
    "video/x-m4v": "video/mp4",
    "application/x-zip-compressed": "application/zip",
}
# Detected type -> declared types it may carry.
_COMPATIBLE: Final = {
    "video/mp4": frozenset({"video/mp4", "audio/mp4"}),
    "audio/mp4": frozenset({"audio/mp4", "video/mp4"}),
    "video/webm": frozenset({"video/webm", "audio/webm"}),
    "application/zip": frozenset({"application/zip"}) | _OFFICE,
    "text/plain": frozenset({"text/plain", "text/markdown", "text/csv"}),
}


@dataclass(frozen=True, slots=True)
class UploadLimits:
    """Per-kind size limits, the per-identity quota and image bounds.

    The defaults are the documented ones (README, "Uploads").

    Attributes:
        image: Largest image, bytes (25 MiB). Images are held in memory to decode them.
        video: Largest video, bytes (200 MiB).
        audio: Largest audio file, bytes (100 MiB).
        voice: Largest voice note, bytes (20 MiB).
        document: Largest document, bytes (100 MiB).
        quota: Total attachment bytes one identity may store (2 GiB).
        max_pixels: Largest image area, pixels (50 million); more is a
            decompression bomb.
        thumbnail_size: Longest side of a thumbnail, pixels (320).
    """

    image: int = 25 * MiB
    video: int = 200 * MiB
    audio: int = 100 * MiB
    voice: int = 20 * MiB
    document: int = 100 * MiB
    quota: int = 2048 * MiB
    max_pixels: int = 50_000_000
    thumbnail_size: int = 320

    def limit_for(self, kind: str) -> int:
        """The size limit for ``kind``."""
        limit: int = getattr(self, kind)
        return limit


def normalize_type(media_type: str) -> str:
    """Lower-case, drop parameters (``; codecs=opus``) and resolve aliases."""
    base = media_type.split(";", 1)[0].strip().lower()
    return _ALIASES.get(base, base)


def check_type(kind: str, declared: str, detected: str | None) -> str:
    """Decide the stored media type of an upload, or refuse it.

    Args:
        kind: The attachment kind (one of :data:`KINDS`).
        declared: The type the sender declared.
        detected: What :func:`._sniff.sniff` found in the content, or None.

    Returns:
        The media type to record.

    Raises:
        InvalidArgumentError: ``kind`` is not a known kind.
        ContentTypeMismatchError: The kind does not take the declared type, or
            the content is not of the declared type.
    """
    if kind not in _ALLOWED:
        raise InvalidArgumentError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    claimed = normalize_type(declared)
    if claimed not in _ALLOWED[kind]:
        raise ContentTypeMismatchError(f"a {kind} attachment cannot be {claimed!r}")
    if kind == "document" and claimed == GENERIC:
        # A generic file makes no claim about its content, so it cannot lie.
        return detected or GENERIC
    if detected is None or claimed not in _COMPATIBLE.get(detected, {detected}):
        found = detected or "not a recognised type"
        raise ContentTypeMismatchError(f"declared {claimed!r} but the content is {found}")
    return claimed
