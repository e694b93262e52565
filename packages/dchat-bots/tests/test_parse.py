"""The field tables behind ``from_json``: each matches its dataclass, and hostile JSON in
any field of any object is the typed error and nothing else."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_bots import (
    Audio,
    BotCommand,
    CallbackQuery,
    Chat,
    Document,
    File,
    InlineKeyboardMarkup,
    InlineQuery,
    Location,
    MalformedReplyError,
    Message,
    MessageEntity,
    PhotoSize,
    Update,
    User,
    Video,
    Voice,
)
from dchat_bots._parse import BOOL, FLOAT, INT, STR, ArrayOf, Field

PARSED = (Audio, BotCommand, CallbackQuery, Chat, Document, File, InlineQuery, Location)
PARSED += (Message, MessageEntity, PhotoSize, Update, User, Video, Voice)

BEYOND_FLOAT = st.integers(min_value=2**1024, max_value=2**1100).map(lambda n: n * (-1) ** n)
SCALARS: dict[str, st.SearchStrategy[Any]] = {
    INT: st.integers() | BEYOND_FLOAT,
    STR: st.text(max_size=8),
    BOOL: st.booleans(),
    FLOAT: st.floats(allow_nan=False) | st.integers() | BEYOND_FLOAT,
}
KEYS = sorted({f.key for cls in PARSED for f in cls._FIELDS} | {"inline_keyboard", "url"})
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner),
    max_leaves=12,
)
BUTTON = st.fixed_dictionaries({}, optional={k: st.text(max_size=3) | JSON for k in KEYS})
KEYBOARD = st.fixed_dictionaries({"inline_keyboard": st.lists(st.lists(BUTTON, max_size=3))})


def _right_kind(field: Field) -> st.SearchStrategy[Any]:
    kind = field.kind
    if isinstance(kind, str):
        return SCALARS[kind]
    if isinstance(kind, ArrayOf):
        return st.lists(_shaped(kind.item), max_size=3)
    return KEYBOARD if kind is InlineKeyboardMarkup else _shaped(kind)


@functools.cache
def _shaped(cls: Any) -> st.SearchStrategy[Any]:
    """Mostly the object's shape, any field (or the whole) possibly replaced by junk."""
    fields = {f.key: _right_kind(f) | JSON for f in cls._FIELDS}
    return st.fixed_dictionaries({}, optional=fields) | JSON


@pytest.mark.parametrize("cls", PARSED)
def test_each_table_lists_the_dataclass_fields_in_order(cls: Any) -> None:
    assert [f.name for f in cls._FIELDS] == [f.name for f in dataclasses.fields(cls)]


@pytest.mark.parametrize("cls", PARSED)
@settings(max_examples=40)  # each class: the fields' checks, not the generator, are under test
@given(st.data())
def test_hostile_json_in_any_field_is_the_typed_error_only(cls: Any, data: st.DataObject) -> None:
    value = data.draw(_shaped(cls))
    try:
        parsed = cls.from_json(value)
    except MalformedReplyError as exc:  # any other exception fails the test
        error = str(exc)
    else:
        assert isinstance(parsed, cls)
        return
    assert error.startswith(cls._WHERE)


MINIMAL = {INT: 1, STR: "a", BOOL: False, FLOAT: 1.0}


def _minimal(cls: Any) -> dict[str, Any]:
    """The object with its required fields only, each of the right kind."""
    return {
        f.key: MINIMAL[f.kind] if isinstance(f.kind, str) else _minimal(f.kind)
        for f in cls._FIELDS
        if f.required
    }


SCALAR_ROWS = [(cls, f) for cls in PARSED for f in cls._FIELDS if isinstance(f.kind, str)]


@given(st.sampled_from(SCALAR_ROWS), st.data())
def test_a_well_typed_scalar_is_kept_as_sent(row: tuple[Any, Field], data: st.DataObject) -> None:
    cls, field = row
    good = {FLOAT: st.floats(allow_nan=False) | st.integers(-(2**60), 2**60)}
    value = data.draw(good.get(field.kind, SCALARS[field.kind]))  # type: ignore[call-overload]
    raw = _minimal(cls)
    parsed = cls.from_json({**raw, field.key: value})
    assert getattr(parsed, field.name) == value


@pytest.mark.parametrize(
    ("cls", "value", "message"),
    [
        (Location, {"latitude": 10**400, "longitude": 0}, "location.latitude must be a number"),
        (User, {"id": 1, "first_name": "a", "is_bot": None}, "user.is_bot must be a boolean"),
        (
            Update,
            {"update_id": 1, "message": {"message_id": 1, "chat": {"id": 2, "type": "private"}}},
            r"^update\.message\.date must be an integer$",
        ),
        (
            Update,
            {
                "update_id": 1,
                "callback_query": {
                    "id": "q",
                    "from": {"id": 1, "first_name": "a"},
                    "message": {
                        "message_id": 1,
                        "chat": {"id": 2, "type": "private"},
                        "date": 1,
                        "photo": [{"file_id": "p"}, {"file_id": 7}],
                    },
                },
            },
            r"^update\.callback_query\.message\.photo\[1\]\.file_id must be a string$",
        ),
    ],
)
def test_errors_name_the_full_path(cls: Any, value: object, message: str) -> None:
    with pytest.raises(MalformedReplyError, match=message):
        cls.from_json(value)


def test_missing_or_null_optionals_take_their_defaults_and_where_names_the_caller() -> None:
    assert User.from_json({"id": 1, "first_name": "a"}) == User(1, False, "a")
    query = InlineQuery.from_json({"id": "q", "from": {"id": 1, "first_name": "a"}, "query": ""})
    assert query.offset == ""
    message = {"message_id": 1, "chat": {"id": 2, "type": "group"}, "date": 3, "entities": None}
    assert Message.from_json(message).entities == ()
    with pytest.raises(MalformedReplyError, match=r"^getMe\.id must be an integer$"):
        User.from_json({"first_name": "a"}, "getMe")
