"""Image uploads: bounded decoding, dimensions, thumbnails, location stripping.

Pillow is reached only here, and its exceptions never leave this module.

* Bombs: the pixel count in the header is checked against the limit before
  any pixel is decoded; Pillow's own global guard (``Image.MAX_IMAGE_PIXELS``)
  is set to the same default as a second line. JPEGs are decoded in draft
  mode (DCT scaling) for the thumbnail, so a 50-megapixel photo never becomes
  a 150 MB bitmap.
* Location: without the sender's opt-in, the EXIF GPS IFD is removed and XMP
  packets (which may repeat the location) are dropped. For JPEG this is done
  on the file's segments, so pixels are untouched (no re-encoding); the other
  formats are re-encoded without metadata, losslessly where the format allows.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from PIL import Image, ImageOps, UnidentifiedImageError

from ._errors import (
    ContentTypeMismatchError,
    DecompressionBombError,
    MalformedContentError,
    UploadRejectedError,
)

if TYPE_CHECKING:
    from ._uploads import UploadLimits

__all__ = ("ImageInfo", "process_image")

_DEFAULT_MAX_PIXELS: Final = 50_000_000
# Pillow warns above this and refuses above twice this; our own check comes first.
Image.MAX_IMAGE_PIXELS = _DEFAULT_MAX_PIXELS

_FORMATS: Final = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}
_GPS_IFD: Final = 0x8825
_ORIENTATION: Final = 0x0112
_EXIF_APP1: Final = b"Exif\x00\x00"
_XMP_APP1: Final = b"http://ns.adobe.com/xap/1.0/\x00"
_DECODE_ERRORS: Final = (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError)


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """The result of processing an image upload.

    Attributes:
        data: The bytes to store (location stripped unless kept).
        width: Width as displayed (EXIF orientation applied).
        height: Height as displayed.
        thumbnail: A JPEG thumbnail.
    """

    data: bytes
    width: int
    height: int
    thumbnail: bytes


def process_image(
    data: bytes, media_type: str, *, keep_location: bool, limits: UploadLimits
) -> ImageInfo:
    """Validate an image, measure it, thumbnail it and strip its location.

    Raises:
        ContentTypeMismatchError: Pillow decodes it as a different format.
        DecompressionBombError: It has more pixels than ``limits.max_pixels``.
        MalformedContentError: It cannot be decoded (truncated, damaged).
    """
    try:
        with Image.open(io.BytesIO(data)) as img:
            _check_header(img, media_type, limits.max_pixels)
            exif = img.getexif()
            located = bool(exif.get_ifd(_GPS_IFD)) or _GPS_IFD in exif or _has_xmp(img)
            width, height = _displayed_size(img.size, exif.get(_ORIENTATION))
            thumbnail = _thumbnail(img, limits.thumbnail_size)
            if located and not keep_location:
                data = _strip_location(data, img)
    except UploadRejectedError:
        raise  # ours (a ValueError too), not a decoding failure
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DecompressionBombError("the image decodes to too many pixels") from None
    except _DECODE_ERRORS as exc:
        raise MalformedContentError(f"the image cannot be decoded: {exc}") from None
    return ImageInfo(data, width, height, thumbnail)


def _check_header(img: Image.Image, media_type: str, max_pixels: int) -> None:
    if _FORMATS.get(img.format or "") != media_type:
        raise ContentTypeMismatchError(f"declared {media_type!r}, decodes as {img.format}")
    width, height = img.size
    if width * height > max_pixels:
        raise DecompressionBombError(
            f"the image has {width}x{height} pixels, more than the limit of {max_pixels}"
        )


def _displayed_size(size: tuple[int, int], orientation: object) -> tuple[int, int]:
    # Orientations 5-8 rotate by 90 degrees, which swaps the displayed sides.
    width, height = size
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _thumbnail(img: Image.Image, side: int) -> bytes:
    if img.format == "JPEG":
        img.draft("RGB", (side, side))  # decode at a reduced scale: bounded memory
    img.load()  # a full decode of the first frame: proves the image is not truncated
    thumb = ImageOps.exif_transpose(img.copy())
    thumb.thumbnail((side, side))
    out = io.BytesIO()
    thumb.convert("RGB").save(out, "JPEG", quality=80)
    return out.getvalue()


def _strip_location(data: bytes, img: Image.Image) -> bytes:
    if img.format == "JPEG":
        return _strip_jpeg(data)
    out = io.BytesIO()
    with Image.open(io.BytesIO(data)) as fresh:
        # Every frame of an animation; lossless WebP so stripping costs no quality.
        options: dict[str, object] = {"save_all": getattr(fresh, "is_animated", False)}
        if img.format == "WEBP":
            options["lossless"] = True
        fresh.save(out, img.format, **options)
    return out.getvalue()


def _has_xmp(img: Image.Image) -> bool:
    # Pillow names the XMP packet "xmp" (JPEG, WebP) or by its PNG iTXt keyword.
    return "xmp" in img.info or "XML:com.adobe.xmp" in img.info


def _strip_jpeg(data: bytes) -> bytes:
    """Rewrite the header segments up to the scan; the entropy-coded image is copied."""
    out = bytearray(data[:2])
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xDA:  # start of scan: the rest is image data
            break
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        segment = data[pos:end]
        body = segment[4:]
        if marker == 0xE1 and body.startswith(_EXIF_APP1):
            segment = _app1(_exif_without_gps(body))
        elif marker == 0xE1 and body.startswith(_XMP_APP1):
            segment = b""
        out += segment
        pos = end
    out += data[pos:]
    return bytes(out)


def _exif_without_gps(body: bytes) -> bytes:
    exif = Image.Exif()
    exif.load(body)
    exif.pop(_GPS_IFD, None)
    return exif.tobytes()


def _app1(body: bytes) -> bytes:
    return b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body
