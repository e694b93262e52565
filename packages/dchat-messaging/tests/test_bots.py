"""The bot book (scoped tokens kept hashed, revocation) and the Bot API shapes."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_messaging.bots import (
    BotApiError,
    BotBook,
    BotCommand,
    chat_number,
    error_answer,
    message_update,
    parse_commands,
    parse_get_updates,
    parse_send_message,
    stranger_name,
)

SECRET = bytes(range(32))
ALL = frozenset({"updates", "send", "manage"})


def _book() -> BotBook:
    return BotBook("echo", "dc1bot", offset=5)


def test_a_token_is_shown_once_and_kept_only_as_a_digest() -> None:
    book = _book()
    token = book.issue(ALL, SECRET, now=1.0)
    assert token.startswith("1:")
    assert len(token) == 45
    saved = book.to_json()
    assert token.split(":")[1].encode() not in saved
    assert hashlib.sha256(SECRET).hexdigest().encode() in saved
    again = BotBook.from_json(saved)
    assert again.authorize(token, "send").token_id == 1
    assert again.offset == 5


def test_revoked_forged_and_malformed_tokens_get_one_opaque_401() -> None:
    book = _book()
    token = book.issue(ALL, SECRET, now=1.0)
    other = book.issue(frozenset({"updates"}), bytes(32), now=2.0)
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    wrong_id = "2:" + token.split(":")[1]  # a real secret under another token's id
    for bad in (forged, wrong_id, "", "1:", "abc", "1:" + "=" * 43, token + "x"):
        with pytest.raises(BotApiError) as caught:
            book.authorize(bad, None)
        assert (caught.value.error_code, caught.value.description) == (401, "Unauthorized")
    book.revoke(1)
    with pytest.raises(BotApiError, match="Unauthorized"):
        book.authorize(token, None)
    assert book.authorize(other, "updates").token_id == 2


def test_a_token_is_refused_what_its_scopes_do_not_cover() -> None:
    book = _book()
    token = book.issue(frozenset({"updates"}), SECRET, now=1.0)
    with pytest.raises(BotApiError) as caught:
        book.authorize(token, "send")
    assert caught.value.error_code == 403
    with pytest.raises(BotApiError):
        book.issue(frozenset({"admin"}), SECRET, now=1.0)
    with pytest.raises(BotApiError):
        book.issue(ALL, b"short", now=1.0)


def test_the_offset_only_moves_forward_and_token_ids_are_not_reused() -> None:
    book = _book()
    book.confirm(9)
    book.confirm(3)
    assert book.offset == 9
    book.issue(ALL, SECRET, now=1.0)
    book.revoke(1)
    assert book.issue(ALL, SECRET, now=2.0).startswith("2:")
    with pytest.raises(BotApiError) as caught:
        book.revoke(7)
    assert caught.value.error_code == 404


def test_a_bot_answers_strangers_unless_turned_off_and_the_setting_is_kept() -> None:
    book = _book()
    assert book.open is True  # as on Telegram: anyone may write to a bot
    assert BotBook.from_json(book.to_json()).open is True
    book.set_open(False)
    assert book.summary()["open"] is False
    assert BotBook.from_json(book.to_json()).open is False
    older = json.loads(book.to_json())
    del older["open"]  # a book written before the setting existed
    assert BotBook.from_json(json.dumps(older).encode()).open is True


@given(st.text(min_size=1, max_size=64), st.text(min_size=8, max_size=60))
def test_a_stranger_gets_a_marked_contact_name_that_tells_two_alices_apart(
    card_name: str, identity_id: str
) -> None:
    name = stranger_name(card_name, identity_id)
    assert name.startswith("~")
    assert name.endswith(identity_id[-8:])
    assert len(name) <= 50
    other = "x" * 8 if identity_id[-8:] != "x" * 8 else "y" * 8
    assert stranger_name(card_name, identity_id[:-8] + other) != name


def test_a_damaged_book_is_a_typed_error() -> None:
    for data in (b"", b"[]", b'{"name": "x"}', b"\xff"):
        with pytest.raises(BotApiError) as caught:
            BotBook.from_json(data)
        assert caught.value.error_code == 500


def test_a_received_text_maps_to_a_telegram_update() -> None:
    update = message_update(
        42, peer_id="dc1alice", peer_name="alice", text="/start now", sent_at=1700000000.7
    )
    message = update["message"]
    assert update["update_id"] == 42
    assert message["message_id"] == 42
    assert message["chat"] == {
        "id": chat_number("dc1alice"),
        "type": "private",
        "first_name": "alice",
    }
    assert message["from"]["is_bot"] is False
    assert message["date"] == 1700000000
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert (
        "entities"
        not in message_update(1, peer_id="p", peer_name=None, text="hi", sent_at=0)["message"]
    )
    assert 0 < chat_number("dc1alice") < 2**48


def test_parameters_come_typed_from_json_or_form_text() -> None:
    assert parse_get_updates({}).offset is None
    call = parse_get_updates({"offset": "7", "limit": "3", "timeout": 20})
    assert (call.offset, call.limit, call.timeout) == (7, 3, 20)
    assert parse_send_message({"chat_id": "123", "text": "hi"}).chat_id == 123
    assert parse_send_message({"chat_id": "alice", "text": "hi"}).chat_id == "alice"
    form = json.dumps([{"command": "/start", "description": "Begin"}])
    assert parse_commands({"commands": form}) == [BotCommand("start", "Begin")]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"timeout": -1},
        {"timeout": "51"},
        {"offset": True},
        {"offset": "x"},
        {"offset": 1.5},
        {"offset": "9" * 40},
    ],
)
def test_bad_get_updates_parameters_are_400(params: dict[str, object]) -> None:
    with pytest.raises(BotApiError) as caught:
        parse_get_updates(params)
    assert error_answer(caught.value)["error_code"] == 400


@pytest.mark.parametrize(
    "params",
    [
        {"text": "hi"},
        {"chat_id": 1},
        {"chat_id": 1, "text": "   "},
        {"chat_id": 1, "text": "x" * 4097},
        {"chat_id": True, "text": "hi"},
        {"chat_id": ["a"], "text": "hi"},
        {"chat_id": "a" * 200, "text": "hi"},
    ],
)
def test_bad_send_message_parameters_are_400(params: dict[str, object]) -> None:
    with pytest.raises(BotApiError) as caught:
        parse_send_message(params)
    assert caught.value.error_code == 400


@pytest.mark.parametrize(
    "commands",
    [
        "not json",
        "{}",
        [1],
        [{"command": "Bad!", "description": "x"}],
        [{"command": "a"}],
        [{"command": "a", "description": ""}],
    ],
)
def test_bad_commands_are_400(commands: object) -> None:
    with pytest.raises(BotApiError) as caught:
        parse_commands({"commands": commands})
    assert caught.value.error_code == 400


@given(
    st.dictionaries(
        st.sampled_from(["offset", "limit", "timeout", "chat_id", "text", "commands"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(),
            st.text(max_size=50),
            st.lists(st.integers(), max_size=3),
        ),
    )
)
def test_hostile_parameters_only_ever_raise_the_typed_error(params: dict[str, object]) -> None:
    codes = set()
    for parse in (parse_get_updates, parse_send_message, parse_commands):
        try:
            parse(params)
        except BotApiError as exc:
            codes.add(exc.error_code)
    assert codes <= {400}


@given(st.text(max_size=80))
def test_any_token_text_is_authorized_or_refused_401(text: str) -> None:
    book = _book()
    book.issue(ALL, SECRET, now=1.0)
    with pytest.raises(BotApiError) as caught:
        book.authorize(text, None)
    assert caught.value.error_code == 401
