"""Typed updates: unknown fields ignored, malformed shapes a typed error naming the field."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_bots import CallbackQuery, MalformedReplyError, Message, Update, User

NODE_UPDATE = {  # as the node sends it (docs/protocol.md section 34), plus fields of the future
    "update_id": 57,
    "message": {
        "message_id": 57,
        "from": {"id": 11, "is_bot": False, "first_name": "alice", "language_code": "en"},
        "chat": {"id": 11, "type": "private", "first_name": "alice"},
        "date": 1_700_000_000,
        "text": "/start hello",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        "photo": [{"file_id": "x"}],
        "reply_markup": {"inline_keyboard": []},
    },
}


def test_a_node_update_parses_and_unknown_fields_are_ignored() -> None:
    update = Update.from_json(NODE_UPDATE)
    assert update.kind == "message"
    assert isinstance(update.event, Message)
    assert update.event.text == "/start hello"
    assert update.event.from_user == User(11, False, "alice")
    assert update.event.entities[0].type == "bot_command"
    assert (update.chat_id, update.user_id) == (11, 11)


def test_an_update_of_an_unknown_kind_keeps_its_id_only() -> None:
    update = Update.from_json({"update_id": 3, "poll": {"id": "p"}})
    assert (update.update_id, update.kind, update.event, update.chat_id) == (3, None, None, None)


def test_a_callback_query_belongs_to_its_message_s_chat() -> None:
    query = {
        "id": "q1",
        "from": {"id": 5, "is_bot": False, "first_name": "bob"},
        "data": "vote:yes",
        "message": {"message_id": 9, "chat": {"id": 6, "type": "private"}, "date": 1},
    }
    update = Update.from_json({"update_id": 1, "callback_query": query})
    assert isinstance(update.event, CallbackQuery)
    assert (update.event.data, update.chat_id, update.user_id) == ("vote:yes", 6, 5)


@pytest.mark.parametrize(
    ("update", "named"),
    [
        ([], "update must be an object"),
        ({"update_id": "1"}, "update.update_id"),
        ({"update_id": True}, "update.update_id"),
        ({"update_id": 1, "message": "hi"}, "update.message must be an object"),
        ({"update_id": 1, "message": {"message_id": 1, "date": 1}}, "update.message.chat"),
        (
            {"update_id": 1, "message": {**NODE_UPDATE["message"], "text": 5}},
            "update.message.text",
        ),
        (
            {"update_id": 1, "message": {**NODE_UPDATE["message"], "entities": {}}},
            "update.message.entities",
        ),
        ({"update_id": 1, "callback_query": {"id": "q", "from": 1}}, "update.callback_query.from"),
    ],
)
def test_malformed_updates_raise_a_typed_error_naming_the_field(update: object, named: str) -> None:
    with pytest.raises(MalformedReplyError, match=named) as raised:
        Update.from_json(update)
    assert isinstance(raised.value, ValueError)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["update_id", "message", "chat", "from", "id", "text", "date", "type"])
            | st.sampled_from(["message_id", "first_name", "entities", "callback_query", "is_bot"]),
            inner,
            max_size=6,
        )
    ),
    max_leaves=30,
)


@given(JSON)
def test_any_json_value_parses_or_raises_the_typed_error(value: object) -> None:
    try:
        update = Update.from_json(value)
    except MalformedReplyError:
        return
    assert isinstance(update.update_id, int)
