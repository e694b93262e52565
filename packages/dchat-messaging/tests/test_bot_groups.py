"""The Bot API's group shapes and what a bot asks for in groups (its book, the commands answer)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_core import MessageId
from dchat_messaging.bots import (
    COMMANDS_KIND,
    BotBook,
    BotControlError,
    BotGrant,
    bot_user,
    chat_number,
    decode_control,
    encode_control,
    group_chat_number,
    group_message_update,
    group_sent_message,
    message_number,
    parse_send_message,
)
from dchat_messaging.webhooks import update_lane

GID = "ab" * 32


@given(st.binary(min_size=32, max_size=32))
def test_a_groups_chat_number_is_negative_and_never_a_contacts(raw: bytes) -> None:
    number = group_chat_number(raw.hex())
    assert -(2**48) < number < 0
    assert number == group_chat_number(raw.hex().upper())
    assert number != -chat_number(raw.hex())


def test_a_group_message_is_a_telegram_group_update() -> None:
    mid = MessageId.random()
    event = {
        "group": GID, "by": "alice-id", "message_id": str(mid), "text": "/roll 2d6",
        "title": "team", "sent_at_ms": 1_700_000_000_500, "sender_name": "alice", "command": True,
    }  # fmt: skip
    update = group_message_update(41, event)
    message = update["message"]
    assert update["update_id"] == 41
    assert message["chat"] == {"id": group_chat_number(GID), "type": "group", "title": "team"}
    assert message["from"] == {
        "id": chat_number("alice-id"),
        "is_bot": False,
        "first_name": "alice",
    }
    assert message["message_id"] == message_number(bytes(mid))
    assert message["date"] == 1_700_000_000
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 5}]
    assert update_lane(update) == f"chat:{group_chat_number(GID)}"  # a webhook lane per group
    sent = group_sent_message(
        bytes(mid), bot_id="bot-id", bot_name="helper", group_id=GID, title="team", text="7",
        at=5.0,
    )  # fmt: skip
    assert sent["chat"]["id"] == group_chat_number(GID)
    assert sent["from"]["is_bot"] is True


@pytest.mark.parametrize("chat", [group_chat_number(GID), str(group_chat_number(GID))])
def test_send_message_takes_a_groups_negative_chat_id(chat: object) -> None:
    assert parse_send_message({"chat_id": chat, "text": "hi"}).chat_id == group_chat_number(GID)


def test_what_a_bot_asks_for_in_groups_is_kept_and_shown() -> None:
    book = BotBook("helper", "bot-id")
    assert book.groups == BotGrant(read_all=False, post=True, admin=False)  # privacy mode
    book.set_groups(BotGrant(read_all=True, post=True, admin=True))
    again = BotBook.from_json(book.to_json())
    assert again.groups == book.groups
    assert again.summary()["groups"] == {"read": "all", "post": True, "admin": True}
    old = json.loads(book.to_json())
    del old["groups"]  # a book saved before group grants
    assert BotBook.from_json(json.dumps(old).encode()).groups == BotGrant()
    assert bot_user("bot-id", "helper", reads_all=True)["can_read_all_group_messages"] is True


def test_the_commands_answer_carries_the_description_and_the_grant_asked() -> None:
    q = bytes(16)
    data = encode_control(COMMANDS_KIND, {"q": q, "c": [], "about": "rolls dice", "grant": 3})
    fields = decode_control(COMMANDS_KIND, data)
    assert fields["grant"] == BotGrant(read_all=True, post=True, admin=False)
    assert fields["about"] == "rolls dice"
    assert "grant" not in decode_control(
        COMMANDS_KIND, encode_control(COMMANDS_KIND, {"q": q, "c": []})
    )
    for bad in (8, -1, True, "3", b"\x03"):
        with pytest.raises(BotControlError):
            encode_control(COMMANDS_KIND, {"q": q, "c": [], "grant": bad})
    with pytest.raises(BotControlError):
        encode_control(COMMANDS_KIND, {"q": q, "c": [], "about": "x" * 513})
