"""The Bot API's uploads, files, locations, edits and deletes: parsing and Telegram's objects."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_messaging import Attachment
from dchat_messaging.bots import (
    MAX_FORM,
    BotApiError,
    Upload,
    chat_number,
    edited_update,
    file_id,
    file_object,
    find_chat,
    incoming_update,
    media_message,
    message_number,
    parse_delete_message,
    parse_edit_text,
    parse_file_id,
    parse_file_path,
    parse_form,
    parse_get_file,
    parse_send_location,
    parse_send_media,
)

if TYPE_CHECKING:
    from collections.abc import Callable

MID = bytes(range(16))
PEER = "dc1alice"


BOUNDARY = "dchat-test-7b2f"


def _encoded(fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    """A multipart body written by RFC 7578's rules, fields first (as httpx writes it)."""
    out = bytearray()
    for name, value in fields.items():
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    for name, (filename, data, kind) in files.items():
        disposition = f'form-data; name="{name}"; filename="{filename}"'
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        out += f"Content-Type: {kind}\r\n\r\n".encode() + data + b"\r\n"
    out += f"--{BOUNDARY}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={BOUNDARY}"


# What httpx 0.28 (python-telegram-bot's transport) writes for a photo upload.
HTTPX_BODY = (
    b'--9f3c2b\r\nContent-Disposition: form-data; name="chat_id"\r\n\r\n42\r\n'
    b'--9f3c2b\r\nContent-Disposition: form-data; name="caption"\r\n\r\na "cat"\r\n'
    b'--9f3c2b\r\nContent-Disposition: form-data; name="photo"; filename="cat.png"\r\n'
    b"Content-Type: image/png\r\n\r\n\x89PNG\r\n\r\n--9f3c2b--\r\n"
)


def test_a_real_clients_upload_parses() -> None:
    parsed = parse_form(HTTPX_BODY, 'multipart/form-data; boundary="9f3c2b"')
    assert parsed == {
        "chat_id": "42",
        "caption": 'a "cat"',
        "photo": Upload("cat.png", "image/png", b"\x89PNG\r\n"),
    }
    call = parse_send_media("sendphoto", parsed)
    assert (call.chat_id, call.caption, call.upload) == (42, 'a "cat"', parsed["photo"])


def _code(call: Callable[[], object]) -> int:
    """200 if ``call`` answers, else its BotApiError's code (any other exception escapes)."""
    try:
        call()
    except BotApiError as exc:
        return exc.error_code
    return 200


_names = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)


@given(
    st.dictionaries(_names, st.text(max_size=40), max_size=5),
    st.dictionaries(_names.map(lambda n: "f" + n), st.binary(max_size=300), max_size=3),
)
def test_a_form_an_http_client_writes_parses_back(
    fields: dict[str, str], blobs: dict[str, bytes]
) -> None:
    files = {name: ("x.bin", data, "image/png") for name, data in blobs.items()}
    body, kind = _encoded(fields, files)
    parsed = parse_form(body, kind)
    texts = {k: v for k, v in parsed.items() if isinstance(v, str)}
    assert texts == fields
    uploads = {k: v for k, v in parsed.items() if isinstance(v, Upload)}
    assert {k: u.data for k, u in uploads.items()} == blobs
    assert all(u.media_type == "image/png" and u.filename == "x.bin" for u in uploads.values())


@given(st.binary(max_size=400), st.sampled_from(["b", "xyz", "a'b", ""]))
def test_any_body_parses_or_is_refused_with_a_400(body: bytes, boundary: str) -> None:
    kind = f"multipart/form-data; boundary={boundary}"
    assert _code(lambda: parse_form(body, kind)) in (200, 400)


@given(st.binary(max_size=200))
def test_a_body_around_a_real_delimiter_parses_or_is_refused(noise: bytes) -> None:
    body, kind = _encoded({"chat_id": "1"}, {"photo": ("p.png", b"x", "image/png")})
    for hostile in (noise + body, body[:-4] + noise, body.replace(b"\r\n\r\n", noise, 1)):
        assert _code(lambda: parse_form(hostile, kind)) in (200, 400)  # noqa: B023


def test_malformed_forms_are_refused_by_name() -> None:
    body, kind = _encoded({"a": "1"}, {})
    boundary = kind.split("boundary=")[1].encode()
    cases = {
        "has no close delimiter": body.replace(b"--" + boundary + b"--", b""),
        "names 'a' twice": body.replace(
            b"--" + boundary + b"--", b"--" + boundary + body.split(boundary, 1)[1]
        ),
        "that is not UTF-8": body.replace(b"\r\n\r\n1\r\n", b"\r\n\r\n\xff\r\n"),
    }
    for what, hostile in cases.items():
        with pytest.raises(BotApiError, match=what):
            parse_form(hostile, kind)
    for content_type in ("multipart/form-data", "multipart/form-data; boundary=a b ", "text/plain"):
        with pytest.raises(BotApiError, match=r"multipart"):
            parse_form(body, content_type)
    with pytest.raises(BotApiError) as caught:
        parse_form(b"x" * (MAX_FORM + 1), kind)
    assert caught.value.error_code == 413


def test_file_ids_round_trip_and_nothing_else_passes() -> None:
    assert parse_file_id(file_id(MID)) == MID
    assert parse_get_file({"file_id": file_id(MID)}) == MID
    assert parse_file_path("photos/" + file_id(MID)) == MID
    for wrong in (None, 5, "", "dcf1", file_id(MID) + "A", "dcf2" + file_id(MID)[4:]):
        with pytest.raises(BotApiError, match="wrong file identifier"):
            parse_file_id(wrong)
    with pytest.raises(BotApiError, match="invalid file_id"):
        parse_get_file({"file_id": "AgACAgIAAxkBAAIB"})  # a Telegram file id
    for path in ("../" + file_id(MID), "photos/x", "etc/" + file_id(MID)):
        with pytest.raises(BotApiError) as caught:
            parse_file_path(path)
        assert caught.value.error_code == 404


@given(st.text(max_size=40))
def test_any_file_id_text_is_a_message_id_or_a_400(text: str) -> None:
    assert _code(lambda: parse_file_id(text)) in (200, 400)


def test_a_media_call_takes_an_upload_a_file_id_or_an_attach_reference() -> None:
    photo = Upload("p.png", "image/png", b"\x89PNG")
    call = parse_send_media("sendphoto", {"chat_id": "7", "photo": photo, "caption": "hi"})
    assert (call.chat_id, call.kind, call.upload, call.caption) == (7, "image", photo, "hi")
    attached = parse_send_media("sendvoice", {"chat_id": 7, "voice": "attach://v", "v": photo})
    assert attached.upload == photo
    assert attached.kind == "voice"
    again = parse_send_media("senddocument", {"chat_id": "bob", "document": file_id(MID)})
    assert (again.source, again.upload) == (MID, None)
    audio = parse_send_media("sendaudio", {"chat_id": 7, "audio": photo, "duration": "61"})
    assert audio.duration_ms == 61_000


@pytest.mark.parametrize(
    ("params", "code", "text"),
    [
        ({"photo": "x"}, 400, "chat_id is required"),
        ({"chat_id": 1}, 400, "there is no photo"),
        ({"chat_id": 1, "photo": "https://example.com/a.png"}, 400, "by URL"),
        ({"chat_id": 1, "photo": "AgACAgIAAxkBAAIB"}, 400, "wrong file identifier"),
        ({"chat_id": 1, "photo": Upload("p", "", b"")}, 400, "empty file"),
        ({"chat_id": 1, "photo": Upload("p", "", b"x" * (10 * 2**20 + 1))}, 413, "Too Large"),
        ({"chat_id": 1, "photo": file_id(MID), "caption": "x" * 1025}, 400, "too long"),
        ({"chat_id": 1, "photo": file_id(MID), "duration": -1}, 400, "duration"),
        ({"chat_id": True, "photo": file_id(MID)}, 400, "chat_id"),
    ],
)
def test_bad_media_calls_get_telegrams_envelope(
    params: dict[str, object], code: int, text: str
) -> None:
    with pytest.raises(BotApiError, match=text) as caught:
        parse_send_media("sendphoto", params)
    assert caught.value.error_code == code


def test_a_document_may_be_larger_than_a_photo_up_to_telegrams_limit() -> None:
    big = Upload("d.bin", "", b"x" * (10 * 2**20 + 1))
    assert parse_send_media("senddocument", {"chat_id": 1, "document": big}).upload == big


def test_locations_edits_and_deletes_parse_and_refuse() -> None:
    where = parse_send_location({"chat_id": "3", "latitude": "52.5", "longitude": -13.25})
    assert (where.chat_id, where.latitude, where.longitude) == (3, 52.5, -13.25)
    for lat, lon in (("91", 0), (0, 181), ("nan", 0), (0, "inf"), ("x", 0), (True, 0)):
        with pytest.raises(BotApiError, match=r"latitude|longitude"):
            parse_send_location({"chat_id": 3, "latitude": lat, "longitude": lon})
    edit = parse_edit_text({"chat_id": 3, "message_id": "99", "text": "new"})
    assert (edit.chat_id, edit.message_id, edit.text) == (3, 99, "new")
    assert parse_delete_message({"chat_id": 3, "message_id": 5}).message_id == 5
    for bad in (
        {"chat_id": 3, "message_id": 0, "text": "t"},
        {"chat_id": 3, "message_id": 1 << 48, "text": "t"},
        {"chat_id": 3, "message_id": 1, "text": " "},
        {"chat_id": 3, "message_id": 1, "text": "x" * 4097},
        {"inline_message_id": "abc", "text": "t"},
        # Digits that str.isdigit() takes and int() does not (found by hypothesis in CI).
        {"chat_id": 3, "message_id": "\u00b2", "text": "t"},
    ):
        with pytest.raises(BotApiError) as caught:
            parse_edit_text(bad)
        assert caught.value.error_code == 400


@given(st.dictionaries(st.sampled_from(["chat_id", "message_id", "text"]), st.text(max_size=20)))
def test_any_edit_parameters_parse_or_are_refused_with_a_400(params: dict[str, str]) -> None:
    assert _code(lambda: parse_edit_text(params)) in (200, 400)


def test_find_chat_takes_a_number_a_name_or_an_identity_id() -> None:
    contacts = [("dc1bob", "bob"), (PEER, "alice")]
    for chat in (chat_number(PEER), "alice", PEER):
        assert find_chat(chat, contacts) == PEER
    with pytest.raises(BotApiError, match="chat not found"):
        find_chat(12345, contacts)


def _photo() -> Attachment:
    return Attachment(
        "image",
        "a cat",
        blob_id=bytes(32),
        key=bytes(32),
        size=1234,
        sealed_size=1300,
        media_type="image/png",
        relay="127.0.0.1:1",
        width=64,
        height=48,
    )


def test_a_received_photo_is_a_telegram_photo_with_its_caption() -> None:
    update = incoming_update(
        41, MID, peer_id=PEER, peer_name="alice", text="a cat", sent_at=9.5, attachment=_photo()
    )
    message = update["message"]
    assert update["update_id"] == 41
    assert message["message_id"] == message_number(MID) == int.from_bytes(MID[:6], "big")
    assert "text" not in message
    assert message["caption"] == "a cat"
    [size] = message["photo"]
    assert size == {
        "file_id": file_id(MID),
        "file_unique_id": "AAAAAAAAAAAA",
        "file_size": 1234,
        "width": 64,
        "height": 48,
    }
    assert file_object(MID, _photo())["file_path"] == "photos/" + file_id(MID)


def test_voice_audio_documents_and_locations_get_their_objects() -> None:
    voice = Attachment(
        "voice",
        blob_id=bytes(32),
        key=bytes(32),
        size=10,
        sealed_size=50,
        media_type="audio/ogg",
        relay="r:1",
        duration_ms=4500,
    )
    shown = media_message(
        MID, bot_id="dc1bot", bot_name="echo", peer_id=PEER, at=1, attachment=voice
    )
    assert shown["voice"]["duration"] == 4
    assert shown["voice"]["mime_type"] == "audio/ogg"
    assert shown["from"]["is_bot"] is True
    where = Attachment.location(52.52, 13.405)
    update = incoming_update(
        1, MID, peer_id=PEER, peer_name=None, text="", sent_at=1, attachment=where
    )
    assert update["message"]["location"] == {"latitude": 52.52, "longitude": 13.405}
    with pytest.raises(BotApiError, match="location has no file"):
        file_object(MID, where)
    text = incoming_update(2, MID, peer_id=PEER, peer_name=None, text="/start x", sent_at=1)
    assert text["message"]["text"] == "/start x"
    assert text["message"]["entities"][0]["type"] == "bot_command"


def test_an_edit_is_an_edited_message_of_the_same_number() -> None:
    update = edited_update(
        50, MID, peer_id=PEER, peer_name="alice", text="fixed", sent_at=10.0, edited_at=20.9
    )
    edited = update["edited_message"]
    assert "message" not in update
    assert (edited["message_id"], edited["text"], edited["date"], edited["edit_date"]) == (
        message_number(MID),
        "fixed",
        10,
        20,
    )
    answer = media_message(
        MID, bot_id="dc1bot", bot_name="echo", peer_id=PEER, at=5, text="t", edited_at=6
    )
    assert (answer["message_id"], answer["edit_date"]) == (message_number(MID), 6)
