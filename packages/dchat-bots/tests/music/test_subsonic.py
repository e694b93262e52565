"""SubsonicClient against a real supysonic server, and against hostile servers.

One supysonic process serves one test (xdist would start one per worker for a
module fixture). It speaks API 1.12 (no token auth): the client talks to it
with ``auth="password"`` over the loopback, and token auth is checked against
the API documentation's own example and on the wire (httpx.MockTransport), as
are replies no honest server sends.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_bots.music import (
    InvalidQueryError,
    SubsonicApiError,
    SubsonicAuthError,
    SubsonicClient,
    SubsonicError,
    SubsonicForbiddenError,
    SubsonicNotFoundError,
    SubsonicProtocolError,
    SubsonicUnreachableError,
    SubsonicVersionError,
    TrackTooLargeError,
    share_track,
    subsonic_token,
)
from dchat_core import PeerError, TransportError

SERVER = Path(__file__).with_name("_supysonic_server.py")
USER, PASSWORD = "alice", "correct horse"
START_TIMEOUT = 90


@pytest.fixture
def subsonic(tmp_path_factory: pytest.TempPathFactory, audio) -> Iterator[tuple[str, Path]]:
    """(base URL, music dir) of a supysonic server on a free loopback port."""
    work = tmp_path_factory.mktemp("supysonic")
    album = work / "music" / "The Testers" / "Tones"
    blue = audio.write_wav(album / "01 blue.wav")
    audio.tag_wav(blue, title="Blue Moon", artist="The Testers", album="Tones", track="1/2")
    red = audio.write_wav(album / "02 red.wav", seconds=1.0, freq=660)
    audio.tag_wav(red, title="Red Sun", artist="The Testers", album="Tones", track="2/2")
    (album / "cover.png").write_bytes(audio.png)
    command = [sys.executable, str(SERVER), str(work), str(work / "music"), USER, PASSWORD]
    with (work / "server.log").open("wb") as log:
        server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log)
    try:
        port = _first_line(server, START_TIMEOUT)
        yield f"http://127.0.0.1:{port}", work / "music"
    finally:
        server.kill()
        server.wait(timeout=10)
        assert server.stdout is not None
        server.stdout.close()


def _first_line(process: subprocess.Popen[bytes], timeout: float) -> int:
    assert process.stdout is not None
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    assert lines, "supysonic did not start"
    assert lines[0].strip().isdigit(), f"supysonic did not start: {lines}"
    return int(lines[0])


def _client(url: str, **options) -> SubsonicClient:
    return SubsonicClient(url, USER, options.pop("password", PASSWORD), auth="password", **options)


async def test_against_a_real_supysonic_server(subsonic: tuple[str, Path]) -> None:
    await anyio.to_thread.run_sync(_search_get_stream_open_and_cover, *subsonic)
    await anyio.to_thread.run_sync(_errors_become_typed_errors, subsonic[0])
    await _a_track_is_shared_from_a_temporary_copy(*subsonic)


def _search_get_stream_open_and_cover(url: str, music: Path) -> None:
    with _client(url) as client:
        assert client.ping() == "1.12.0"
        assert PASSWORD not in repr(client)
        (blue,) = client.search("moon")
        assert (blue.title, blue.artist, blue.album, blue.track_no) == (
            "Blue Moon", "The Testers", "Tones", 1,
        )  # fmt: skip
        assert (blue.media_type, blue.file_name) == ("audio/wav", "01 - Blue Moon.wav")
        assert client.get(blue.id) == blue
        original = (music / "The Testers" / "Tones" / "01 blue.wav").read_bytes()
        assert blue.size == len(original)
        assert b"".join(client.stream(blue.id)) == original
        with client.open(blue.id) as path:
            assert path.read_bytes() == original
        assert not path.exists()  # the temporary copy is gone
        assert (
            client.cover_art(blue.id)
            == (music / "The Testers" / "Tones" / "cover.png").read_bytes()
        )
        assert sorted(t.title for t in client.search("n")) == ["Blue Moon", "Red Sun"]


class _Sender:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, dict]] = []

    async def send_file(self, to: str, path: Path, **options) -> dict:
        self.sent.append((to, await anyio.Path(path).read_bytes(), options))
        self.path = path
        return {"message_id": "m1"}


async def _a_track_is_shared_from_a_temporary_copy(url: str, music: Path) -> None:
    sender = _Sender()
    with _client(url) as client:
        (red,) = await anyio.to_thread.run_sync(lambda: client.search("sun"))
        await share_track(sender, "peer", client, red)
    ((to, data, options),) = sender.sent
    original = await anyio.Path(music / "The Testers" / "Tones" / "02 red.wav").read_bytes()
    assert (to, data) == ("peer", original)
    assert options == {
        "kind": "audio",
        "media_type": "audio/wav",
        "caption": "The Testers - Red Sun (0:01)",
        "duration_ms": 1000,
    }
    assert not await anyio.Path(sender.path).exists()


def _errors_become_typed_errors(url: str) -> None:
    with _client(url, password="wrong") as client, pytest.raises(SubsonicAuthError) as denied:
        client.ping()
    assert denied.value.code == 40
    assert isinstance(denied.value, PeerError)
    # supysonic (API 1.12) has no token auth: the error says what to do, no fallback.
    with SubsonicClient(url, USER, PASSWORD) as token, pytest.raises(SubsonicAuthError) as old:
        token.ping()
    assert 'auth="password"' in old.value.message
    with _client(url) as client:
        with pytest.raises(SubsonicNotFoundError) as missing:
            client.get("00000000-0000-0000-0000-000000000000")
        assert (missing.value.code, isinstance(missing.value, LookupError)) == (70, True)
        with pytest.raises(SubsonicNotFoundError):
            b"".join(client.stream("00000000-0000-0000-0000-000000000000"))
        with pytest.raises(SubsonicApiError) as malformed:
            client.get("not-an-id")
        assert malformed.value.code == 0
        with pytest.raises(InvalidQueryError):
            client.search("")
    with _client(url, max_track_bytes=1000) as capped:
        (blue,) = capped.search("moon")
        with pytest.raises(TrackTooLargeError):
            b"".join(capped.stream(blue.id))


def test_an_unreachable_server_is_a_transport_error_without_the_token() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = SubsonicClient(f"http://127.0.0.1:{port}", USER, PASSWORD, timeout=2)
    with client, pytest.raises(SubsonicUnreachableError) as down:
        client.ping()
    assert isinstance(down.value, TransportError)
    assert "t=" not in str(down.value)
    assert PASSWORD not in str(down.value)


# Token auth and hostile replies, on the wire.


def test_the_token_is_the_apis_documented_example() -> None:
    # The Subsonic API documentation: password "sesame", salt "c19b2d".
    assert subsonic_token("sesame", "c19b2d") == "26719a1196d2a940705a59634eb18eab"


def _mock(handler, **options) -> SubsonicClient:
    return SubsonicClient(
        "http://music.test", USER, "sesame", transport=httpx.MockTransport(handler), **options
    )


def _ok(**fields) -> httpx.Response:
    return httpx.Response(
        200, json={"subsonic-response": {"status": "ok", "version": "1.16.1", **fields}}
    )


def test_the_credentials_never_reach_httpx_log(caplog: pytest.LogCaptureFixture) -> None:
    for auth in ("token", "password"):
        with caplog.at_level("INFO", logger="httpx"), _mock(lambda _: _ok(), auth=auth) as client:
            client.ping()
    assert caplog.text.count("HTTP Request: GET http://music.test/rest/ping?u=alice") == 2
    assert "t=" not in caplog.text
    assert "p=enc" not in caplog.text


def test_token_auth_sends_a_fresh_salt_and_never_the_password() -> None:
    seen: list[httpx.QueryParams] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params)
        return _ok()

    salts = iter(["c19b2d", "a1b2c3"])
    with _mock(handler, salt=lambda: next(salts)) as client:
        assert client.ping() == "1.16.1"
        client.ping()
    first, second = seen
    assert (first["s"], first["t"], first["v"]) == (
        "c19b2d",
        "26719a1196d2a940705a59634eb18eab",
        "1.13.0",
    )
    assert second["s"] == "a1b2c3"
    assert "p" not in first
    assert all("sesame" not in str(params) for params in seen)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (0, SubsonicApiError),
        (20, SubsonicVersionError),
        (30, SubsonicVersionError),
        (40, SubsonicAuthError),
        (44, SubsonicAuthError),
        (50, SubsonicForbiddenError),
        (70, SubsonicNotFoundError),
        (99, SubsonicApiError),
    ],
)
def test_each_error_code_has_its_type(code: int, error: type[SubsonicApiError]) -> None:
    failed = {
        "subsonic-response": {
            "status": "failed",
            "version": "1.16.1",
            "error": {"code": code, "message": "no\nway\x1b[31m"},
        }
    }
    with (
        _mock(lambda _: httpx.Response(200, json=failed)) as client,
        pytest.raises(error) as raised,
    ):
        client.ping()
    assert type(raised.value) is error
    assert (raised.value.code, raised.value.message) == (code, "no way [31m")


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(200, content=b"<html>not json</html>"),
        httpx.Response(200, json=["subsonic-response"]),
        httpx.Response(200, json={"subsonic-response": {"status": "maybe"}}),
        httpx.Response(
            200, json={"subsonic-response": {"status": "failed", "error": {"code": "40"}}}
        ),
        httpx.Response(200, content=b"[" * 100_000),
        httpx.Response(200, content=b'{"x": "' + b"a" * (5 * 1024 * 1024) + b'"}'),
        httpx.Response(200, json={"subsonic-response": {"status": "ok", "song": {"id": ["x"]}}}),
        httpx.Response(
            200, json={"subsonic-response": {"status": "ok", "searchResult3": {"song": {}}}}
        ),
    ],
)
def test_malformed_replies_are_protocol_errors(reply: httpx.Response) -> None:
    with _mock(lambda _: reply) as client, pytest.raises(SubsonicProtocolError) as bad:
        client.get("1") if b"searchResult3" not in reply.content else client.search("x")
    assert isinstance(bad.value, PeerError)


def test_hostile_song_fields_are_cleaned_and_bounded() -> None:
    song = {
        "id": 7,
        "title": "A\nB" + "x" * 10_000,
        "artist": None,
        "duration": -5,
        "track": True,
        "size": 2**80,
        "suffix": "../mp3",
        "contentType": "text/html",
    }
    with _mock(lambda _: _ok(song=song)) as client:
        track = client.get("7")
    assert (track.id, track.title[:4], len(track.title)) == ("7", "A Bx", 200)
    assert (track.duration_ms, track.track_no, track.size) == (0, 0, 1 << 53)
    assert track.media_type == "audio/mpeg"
    assert "/" not in track.file_name


def test_streams_are_capped_whether_or_not_the_length_is_declared() -> None:
    def declared(_: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            headers={"content-type": "audio/mpeg", "content-length": "5000"},
            content=bytes(5000),
        )

    def undeclared(_: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-type": "audio/mpeg"}, content=iter([bytes(600)] * 10)
        )

    for handler in (declared, undeclared):
        with _mock(handler, max_track_bytes=4000) as client, pytest.raises(TrackTooLargeError):
            b"".join(client.stream("1"))
    with (
        _mock(lambda _: httpx.Response(500, content=b"boom")) as client,
        pytest.raises(SubsonicProtocolError),
    ):
        b"".join(client.stream("1"))


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
KEYS = st.sampled_from(
    ["id", "title", "track", "duration", "size", "coverArt", "suffix", "contentType"]
)


@settings(max_examples=50, deadline=None)
@given(
    envelope=st.dictionaries(
        st.sampled_from(["status", "version", "error", "song", "searchResult3"]), JSON
    ),
    song=st.dictionaries(KEYS, JSON),
)
def test_any_json_reply_gives_tracks_or_a_subsonic_error(envelope: dict, song: dict) -> None:
    bodies = [
        envelope,
        {**envelope, "status": "ok", "song": song},
        {"status": "ok", "searchResult3": {"song": [song]}},
    ]
    replies = iter(bodies * 2)
    with _mock(lambda _: httpx.Response(200, json={"subsonic-response": next(replies)})) as client:
        for _ in bodies:
            with contextlib.suppress(SubsonicError):
                client.get("1")
            with contextlib.suppress(SubsonicError):
                client.search("x")


def test_a_timeout_is_a_transport_error() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with _mock(slow) as client, pytest.raises(SubsonicUnreachableError):
        client.ping()


def test_only_http_urls_and_known_auth_schemes() -> None:
    with pytest.raises(ValueError, match="http"):
        SubsonicClient("file:///etc/passwd", USER, PASSWORD)
    with pytest.raises(ValueError, match="auth"):
        SubsonicClient("http://x", USER, PASSWORD, auth="plain")  # type: ignore[arg-type]
