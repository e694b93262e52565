"""``SubsonicClient``: a music provider over the Subsonic REST API (JSON replies).

The calls used are ``ping``, ``search3``, ``getSong``, ``stream`` and
``getCoverArt`` (all of API 1.12 and later), so the client works with
Subsonic, Navidrome, Airsonic, Gonic, supysonic and the like.

Authentication is the API's own (docs/rationale.md, "Music providers"):

- ``auth="token"`` (the default, API 1.13+): each request carries a fresh
  random salt ``s`` and ``t = md5(password + s)`` as lowercase hex; the
  password never travels. MD5 is the API's choice, not ours.
- ``auth="password"``: for servers older than 1.13 (supysonic speaks 1.12),
  the password travels hex-encoded (``p=enc:...``), which is clear text to
  anyone on the path: use it only over https or the loopback.

A server that refuses token auth says so with a :class:`SubsonicAuthError`
whose message names ``auth="password"``; the client never falls back by
itself (a man in the middle could otherwise make it send the password).

Replies are outside data: JSON bodies are capped at 4 MiB, streams and covers
at the client's caps, every field is type-checked and cleaned, and transport
failures become :class:`SubsonicUnreachableError` without the request's URL.

The credentials are added to the URL below httpx's client, by the transport
(:class:`_Credentials`): httpx logs each request's URL at INFO, and the
request it logs is the one without them.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx
from cryptography.hazmat.primitives import hashes

from ._errors import (
    SubsonicApiError,
    SubsonicAuthError,
    SubsonicForbiddenError,
    SubsonicNotFoundError,
    SubsonicProtocolError,
    SubsonicUnreachableError,
    SubsonicVersionError,
    TrackTooLargeError,
)
from ._library import check_query
from ._track import AUDIO_TYPES, Track, clean_text

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import TracebackType

__all__ = ("SubsonicClient", "subsonic_token")

API_VERSION = "1.13.0"
LEGACY_VERSION = "1.12.0"
MAX_REPLY_BYTES = 4 * 1024 * 1024
MAX_COVER_BYTES = 5 * 1024 * 1024
_ERRORS: dict[int, type[SubsonicApiError]] = {
    20: SubsonicVersionError,
    30: SubsonicVersionError,
    40: SubsonicAuthError,
    41: SubsonicAuthError,
    42: SubsonicAuthError,
    43: SubsonicAuthError,
    44: SubsonicAuthError,
    50: SubsonicForbiddenError,
    70: SubsonicNotFoundError,
}


def subsonic_token(password: str, salt: str) -> str:
    """``md5(password + salt)`` in lowercase hex: the API's token (1.13+)."""
    digest = hashes.Hash(hashes.MD5())  # noqa: S303 (the Subsonic API's own scheme)
    digest.update((password + salt).encode("utf-8"))
    return digest.finalize().hex()


def _new_salt() -> str:
    return secrets.token_hex(8)


class SubsonicClient:
    """A Subsonic server as a :class:`~dchat_bots.music.MusicProvider`.

    Example::

        with SubsonicClient("https://music.example", "alice", password) as music:
            music.ping()
            tracks = music.search("blue moon")
            with music.open(tracks[0].id) as path:   # a temporary copy
                ...

    Args:
        url: the server's base URL (``/rest/...`` is appended); http or https.
        username, password: the account (the password is never logged or shown).
        auth: ``"token"`` (salted MD5, API 1.13+) or ``"password"`` (older servers).
        client_name: the ``c`` parameter servers show in their logs.
        timeout: seconds for connecting and for each read.
        max_track_bytes: streams larger than this are cut off with TrackTooLargeError.
        salt: source of the per-request salt (tests pass a fixed one).
        transport: an httpx transport (tests); None for the network.
    """

    MAX_TRACK_BYTES = 100 * 1024 * 1024

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        auth: Literal["token", "password"] = "token",
        client_name: str = "dchat-bots",
        timeout: float = 10.0,
        max_track_bytes: int = MAX_TRACK_BYTES,
        salt: Callable[[], str] = _new_salt,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        base = httpx.URL(url)
        if base.scheme not in ("http", "https") or not base.host:
            raise ValueError("the Subsonic URL must be http(s)://HOST[:PORT][/PATH]")
        if auth not in ("token", "password"):
            raise ValueError("auth is 'token' or 'password'")
        self._user, self._password, self._auth = username, password, auth
        self._client_name, self._salt, self._max = client_name, salt, max_track_bytes
        self._http = httpx.Client(
            base_url=str(base).rstrip("/") + "/rest/",
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            transport=_Credentials(transport or httpx.HTTPTransport(), self._credentials),
        )

    def __repr__(self) -> str:
        return f"SubsonicClient({str(self._http.base_url)!r}, {self._user!r}, auth={self._auth!r})"

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def __enter__(self) -> SubsonicClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # The calls

    def ping(self) -> str:
        """Check the server and the credentials; returns the server's API version."""
        return str(self._call("ping")["version"])

    def search(self, query: str, *, limit: int = 10) -> list[Track]:
        """Songs matching ``query`` (``search3``; the server decides how it matches)."""
        check_query(query, limit)
        params = {"query": query, "songCount": limit, "artistCount": 0, "albumCount": 0}
        result = self._call("search3", params).get("searchResult3", {})
        songs = result.get("song", []) if isinstance(result, dict) else None
        if not isinstance(songs, list):
            raise SubsonicProtocolError("searchResult3.song is not a list")
        return [_song(song) for song in songs[:limit]]

    def get(self, track_id: str) -> Track:
        """The song with this id (``getSong``)."""
        return _song(self._call("getSong", {"id": _id(track_id)}).get("song"))

    def stream(self, track_id: str) -> Iterator[bytes]:
        """The song's original bytes (``stream``, no transcoding), at most ``max_track_bytes``."""
        yield from self._download("stream", {"id": _id(track_id), "format": "raw"}, self._max)

    @contextlib.contextmanager
    def open(self, track_id: str) -> Iterator[Path]:
        """A temporary file holding the song, deleted when the ``with`` block ends."""
        track = self.get(track_id)
        with tempfile.TemporaryDirectory(prefix="dchat-subsonic-") as folder:
            path = Path(folder) / track.file_name
            with path.open("wb") as file:
                for chunk in self.stream(track.id):
                    file.write(chunk)
            yield path

    def cover_art(self, track_id: str) -> bytes | None:
        """The song's cover image (``getCoverArt``), or None when it has none."""
        cover = self.get(track_id).cover_art
        if cover is None:
            return None
        return b"".join(self._download("getCoverArt", {"id": cover}, MAX_COVER_BYTES))

    # The wire

    def _params(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        version = API_VERSION if self._auth == "token" else LEGACY_VERSION
        params = {"u": self._user, "c": self._client_name, "f": "json", "v": version}
        return {**params, **(extra or {})}

    def _credentials(self) -> dict[str, str]:
        """A request's secret parameters: a fresh salt and token, or the encoded password."""
        if self._auth == "token":
            salt = self._salt()
            return {"s": salt, "t": subsonic_token(self._password, salt)}
        return {"p": "enc:" + self._password.encode().hex()}

    def _call(self, method: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        with self._request(method, extra) as response:
            body = _read_capped(response, MAX_REPLY_BYTES, SubsonicProtocolError)
        return self._envelope(body)

    @contextlib.contextmanager
    def _request(self, method: str, extra: dict[str, Any] | None) -> Iterator[httpx.Response]:
        try:
            with self._http.stream("GET", method, params=self._params(extra)) as response:
                yield response
        except httpx.TimeoutException:
            raise SubsonicUnreachableError(f"{method}: timed out") from None
        except httpx.HTTPError as exc:  # the URL (with the token) stays out of the message
            raise SubsonicUnreachableError(f"{method}: {type(exc).__name__}") from None

    def _download(self, method: str, extra: dict[str, Any], cap: int) -> Iterator[bytes]:
        with self._request(method, extra) as response:
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind in ("application/json", "text/xml", "application/xml"):
                # Errors come as an envelope in place of the bytes.
                body = _read_capped(response, MAX_REPLY_BYTES, SubsonicProtocolError)
                self._envelope(body)
                raise SubsonicProtocolError(f"{method} answered {kind} without an error")
            if response.status_code != 200:
                raise SubsonicProtocolError(f"{method}: HTTP {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdecimal() and int(declared) > cap:
                raise TrackTooLargeError(f"{method}: {declared} bytes (cap {cap})")
            received = 0
            for chunk in _iter_bytes(response, method):
                received += len(chunk)
                if received > cap:
                    raise TrackTooLargeError(f"{method}: over the cap of {cap} bytes")
                yield chunk

    def _envelope(self, body: bytes) -> dict[str, Any]:
        try:
            reply = json.loads(body)
        except (ValueError, RecursionError):
            raise SubsonicProtocolError("the reply is not JSON") from None
        inner = reply.get("subsonic-response") if isinstance(reply, dict) else None
        if not isinstance(inner, dict) or inner.get("status") not in ("ok", "failed"):
            raise SubsonicProtocolError("the reply is not a subsonic-response")
        if inner["status"] == "ok":
            return inner
        raise self._api_error(inner)

    def _api_error(self, inner: dict[str, Any]) -> SubsonicApiError | SubsonicProtocolError:
        error = inner.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        if not isinstance(code, int) or isinstance(code, bool):
            return SubsonicProtocolError("a failed reply without an error code")
        message = clean_text(error.get("message", "") if isinstance(error, dict) else "")
        version = str(inner.get("version", ""))
        if self._auth == "token" and code in (10, 41, 42) and _older_than_1_13(version):
            code, message = 42, f"server API {clean_text(version, 20)} has no token auth: "
            message += 'use auth="password" (over https or the loopback only)'
        return _ERRORS.get(code, SubsonicApiError)(code, message)


class _Credentials(httpx.BaseTransport):
    """Adds the credentials to a copy of each request, so httpx's log line never shows them."""

    def __init__(
        self, inner: httpx.BaseTransport, credentials: Callable[[], dict[str, str]]
    ) -> None:
        self._inner, self._credentials = inner, credentials

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url.copy_merge_params(self._credentials())
        signed = httpx.Request(request.method, url, headers=request.headers, stream=request.stream)
        signed.extensions = request.extensions  # the timeouts
        return self._inner.handle_request(signed)

    def close(self) -> None:
        self._inner.close()


def _older_than_1_13(version: str) -> bool:
    parts = version.split(".")[:2]
    if not all(p.isdecimal() for p in parts) or len(parts) < 2:
        return True
    return (int(parts[0]), int(parts[1])) < (1, 13)


def _read_capped(response: httpx.Response, cap: int, error: type[Exception]) -> bytes:
    body = bytearray()
    for chunk in _iter_bytes(response, "reply"):
        body += chunk
        if len(body) > cap:
            raise error(f"the reply is over {cap} bytes")
    return bytes(body)


def _iter_bytes(response: httpx.Response, what: str) -> Iterator[bytes]:
    try:
        yield from response.iter_bytes()
    except httpx.TimeoutException:
        raise SubsonicUnreachableError(f"{what}: timed out while reading") from None
    except httpx.HTTPError as exc:
        raise SubsonicUnreachableError(f"{what}: {type(exc).__name__}") from None


def _id(track_id: str) -> str:
    if not isinstance(track_id, str) or not 0 < len(track_id) <= 200:
        raise SubsonicProtocolError("a Subsonic id is text of 1 to 200 characters")
    return track_id


def _song(song: object) -> Track:
    """A ``child`` object of the API as a Track (type-checked: the server is outside data)."""
    if not isinstance(song, dict) or not isinstance(song.get("id"), str | int):
        raise SubsonicProtocolError("a song without an id")
    media_type = AUDIO_TYPES.get(str(song.get("contentType", "")).lower())
    if media_type is None:
        suffix = str(song.get("suffix", "")).lower()
        media_type = AUDIO_TYPES.get(f"audio/{suffix}", "audio/mpeg")
    title = clean_text(song.get("title", "")) or "untitled"
    suffix = clean_text(song.get("suffix", ""), 8).replace("/", "") or "mp3"
    number = _int(song.get("track"))
    cover = song.get("coverArt")
    return Track(
        id=clean_text(song["id"]),
        title=title,
        artist=clean_text(song.get("artist", "")),
        album=clean_text(song.get("album", "")),
        duration_ms=min(_int(song.get("duration")), 24 * 3600) * 1000,
        track_no=number,
        media_type=media_type,
        size=_int(song.get("size")),
        cover_art=clean_text(cover) if isinstance(cover, str | int) and cover != "" else None,
        file_name=_file_name(number, title, suffix),
    )


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return 0
    return min(value, 1 << 53)


def _file_name(number: int, title: str, suffix: str) -> str:
    safe = "".join(c if c.isalnum() or c in " -_.()" else "_" for c in title)[:80].strip(" .")
    stem = f"{number:02d} - {safe}" if number else safe
    return f"{stem or 'track'}.{suffix}"
