"""Media type detection from content bytes (magic numbers), never from names.

:func:`sniff` looks only at the first bytes of a file (:data:`SNIFF_SIZE` is
plenty) and returns one canonical media type, or None when it recognises
nothing. It is total: any input, however hostile, gives a type or None.

Recognised: JPEG, PNG, GIF, WebP, ISO BMFF (``ftyp``: MP4, QuickTime, M4A),
Matroska/WebM (EBML), Ogg (Opus, Vorbis), MP3 (ID3 tag or MPEG layer III frame
sync), WAV, FLAC, PDF, ZIP (the container of Office and OpenDocument files)
and UTF-8 plain text.
"""

from __future__ import annotations

import codecs
from typing import Final

__all__ = ("SNIFF_SIZE", "sniff")

SNIFF_SIZE: Final = 64 * 1024

_SIGNATURES: Final = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"fLaC", "audio/flac"),
    (b"PK\x03\x04", "application/zip"),
    (b"ID3", "audio/mpeg"),
)
# ISO BMFF major brands that are audio-only; every other brand is treated as video.
_AUDIO_BRANDS: Final = frozenset({b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "})
_QUICKTIME_BRANDS: Final = frozenset({b"qt  "})
_EBML: Final = b"\x1a\x45\xdf\xa3"


def sniff(head: bytes) -> str | None:
    """Return the media type the content starts like, or None if unrecognised.

    Args:
        head: The first bytes of the content (up to :data:`SNIFF_SIZE`).
    """
    for magic, media_type in _SIGNATURES:
        if head.startswith(magic):
            return media_type
    return (
        _riff(head)
        or _iso_bmff(head)
        or _ebml(head)
        or _ogg(head)
        or _mp3_frame(head)
        or _text(head)
    )


def _riff(head: bytes) -> str | None:
    if not head.startswith(b"RIFF") or len(head) < 12:
        return None
    return {b"WEBP": "image/webp", b"WAVE": "audio/wav"}.get(head[8:12])


def _iso_bmff(head: bytes) -> str | None:
    # A box: u32 size, then the type "ftyp", then the major brand.
    if len(head) < 12 or head[4:8] != b"ftyp":
        return None
    brand = head[8:12]
    if brand in _AUDIO_BRANDS:
        return "audio/mp4"
    if brand in _QUICKTIME_BRANDS:
        return "video/quicktime"
    return "video/mp4"


def _ebml(head: bytes) -> str | None:
    if not head.startswith(_EBML):
        return None
    # The DocType element (ID 0x4282) names the flavour within the EBML header.
    return "video/webm" if b"\x42\x82\x84webm" in head[:64] else "video/x-matroska"


def _ogg(head: bytes) -> str | None:
    if not head.startswith(b"OggS"):
        return None
    return "audio/ogg" if b"OpusHead" in head[:128] or b"\x01vorbis" in head[:128] else None


def _mp3_frame(head: bytes) -> str | None:
    # MPEG audio frame sync (11 set bits), then layer bits "01" = layer III.
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06 == 0x02:
        return "audio/mpeg"
    return None


def _text(head: bytes) -> str | None:
    if not head or b"\x00" in head:
        return None
    # Incremental decoding tolerates a multi-byte character cut at the end of head.
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return None
    return "text/plain"
