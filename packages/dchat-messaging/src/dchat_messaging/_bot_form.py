"""``multipart/form-data`` bodies of Bot API calls (RFC 7578), parsed whole and bounded.

Telegram's clients upload a file (an ``InputFile``) as one part of a
multipart form whose other parts are the call's parameters (text; structured
values as JSON text). The node reads such a body up to :data:`MAX_FORM`
bytes (413 past it) and hands it here with its ``content-type`` header; the
answer is the parameters by part name: text parts as ``str``, parts with a
``filename`` as :class:`Upload`. Every malformed body is a
:class:`BotApiError` 400 (no closing delimiter, a part without a name or
headers, a name given twice, too many parts, text that is not UTF-8), never
another exception.

Sans-IO, and it copies each file part once (the body is held whole: its bound
is Telegram's own upload limit, 50 MB).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from ._errors import BotApiError

__all__ = ("MAX_FORM", "Upload", "parse_form")

MiB: Final = 1024 * 1024
MAX_FORM: Final = 50 * MiB + 64 * 1024
"""Bytes of a multipart body: Telegram's 50 MB upload limit and room for the other fields."""
MAX_PARTS: Final = 32
MAX_HEADERS: Final = 8 * 1024
MAX_TEXT_PART: Final = 64 * 1024
_BOUNDARY: Final = re.compile(r"[0-9A-Za-z'()+_,./:=? -]{0,69}[0-9A-Za-z'()+_,./:=?-]")
_PARAM: Final = re.compile(r';\s*([A-Za-z0-9_*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)')


@dataclass(frozen=True)
class Upload:
    """A file part: its file name (may be empty), its declared media type, its bytes."""

    filename: str
    media_type: str
    data: bytes

    def __repr__(self) -> str:  # never the bytes
        return f"Upload({self.filename!r}, {self.media_type!r}, {len(self.data)} bytes)"


def _bad(what: str) -> BotApiError:
    return BotApiError(400, f"Bad Request: the multipart body {what}")


def _params(header: str) -> dict[str, str]:
    """``; name=value`` parameters of a header (quoted values unquoted), names lower-cased."""
    found: dict[str, str] = {}
    for name, raw in _PARAM.findall(header):
        value = raw
        if raw.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", raw[1:-1])
        found[name.lower()] = value
    return found


def boundary_of(content_type: str) -> bytes:
    """The boundary a ``multipart/form-data`` content type names.

    Raises:
        BotApiError: 400: no boundary, or one RFC 2046 does not allow.
    """
    kind, _, rest = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise _bad("is not multipart/form-data")
    boundary = _params(";" + rest).get("boundary", "")
    if not _BOUNDARY.fullmatch(boundary):
        raise _bad("has no valid boundary")
    return boundary.encode("ascii")


def _headers(block: bytes) -> dict[str, str]:
    if len(block) > MAX_HEADERS:
        raise _bad("has a part with too many headers")
    headers: dict[str, str] = {}
    for line in block.decode("utf-8", "replace").split("\r\n"):
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise _bad("has a malformed header")
        headers[name.strip().lower()] = value.strip()
    return headers


def _part(piece: bytes) -> tuple[str, str | Upload]:
    """One part after its delimiter line: ``(name, text or upload)``."""
    head, blank, data = piece.partition(b"\r\n\r\n")
    if not blank:
        raise _bad("has a part without headers")
    headers = _headers(head)
    disposition = headers.get("content-disposition", "")
    if disposition.split(";")[0].strip().lower() != "form-data":
        raise _bad("has a part that is not form-data")
    params = _params(disposition[disposition.find(";") :] if ";" in disposition else "")
    name = params.get("name", "")
    if not 1 <= len(name) <= 64:
        raise _bad("has a part without a name")
    if "filename" in params:
        media_type = headers.get("content-type", "")[:127]
        return name, Upload(params["filename"][:255], media_type, data)
    if len(data) > MAX_TEXT_PART:
        raise _bad(f"has a text part {name!r} that is too long")
    try:
        return name, data.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(f"has a text part {name!r} that is not UTF-8") from None


def parse_form(body: bytes, content_type: str) -> dict[str, str | Upload]:
    """The parts of a ``multipart/form-data`` body, by name.

    Raises:
        BotApiError: 413 for a body over :data:`MAX_FORM`; 400 for anything malformed.
    """
    if len(body) > MAX_FORM:
        raise BotApiError(413, "Request Entity Too Large")
    delimiter = b"\r\n--" + boundary_of(content_type)
    pieces = (b"\r\n" + body).split(delimiter)
    if len(pieces) < 2:
        raise _bad("has no delimiter")
    if len(pieces) > MAX_PARTS + 2:
        raise _bad("has too many parts")
    fields: dict[str, str | Upload] = {}
    for piece in pieces[1:]:  # pieces[0] is the preamble
        if piece.startswith(b"--"):  # the close delimiter: the rest is the epilogue
            return fields
        line_end = piece.find(b"\r\n")
        if line_end < 0 or piece[:line_end].strip(b" \t"):
            raise _bad("has a malformed delimiter line")
        name, value = _part(piece[line_end + 2 :])
        if name in fields:
            raise _bad(f"names {name!r} twice")
        fields[name] = value
    raise _bad("has no close delimiter")
