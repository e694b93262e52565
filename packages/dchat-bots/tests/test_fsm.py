"""Conversation state: a form filled over several messages, per chat and user, in both storages."""

from __future__ import annotations

import math
import sqlite3

import pytest

from dchat_bots import (
    Command,
    Context,
    Dispatcher,
    InState,
    MemoryStorage,
    Message,
    Regex,
    SQLiteStorage,
    State,
    StateDataError,
    StatesGroup,
    StateStorageError,
    StorageKey,
    Text,
    Update,
)


class Form(StatesGroup):
    name = State()
    age = State()


def form_bot(storage) -> Dispatcher:
    dp = Dispatcher(storage=storage)

    @dp.command("form")
    async def begin(message: Message, ctx: Context) -> None:
        await ctx.state.set(Form.name)
        await ctx.answer("name?")

    @dp.message(InState(Form.name), Text())
    async def name(message: Message, ctx: Context) -> None:
        await ctx.state.update_data(name=message.text)
        await ctx.state.set(Form.age)
        await ctx.answer("age?")

    @dp.message(InState(Form.age), Regex(r"^\d+$"))
    async def age(message: Message, ctx: Context) -> None:
        data = await ctx.state.update_data(age=int(message.text or 0))
        await ctx.state.clear()
        await ctx.answer(f"{data['name']} is {data['age']}")

    @dp.message(InState(Form.age))
    async def not_a_number(message: Message, ctx: Context) -> None:
        await ctx.answer("a number, please")

    @dp.message(InState(None), ~Command())
    async def idle(message: Message, ctx: Context) -> None:
        await ctx.answer("send /form")

    return dp


@pytest.fixture(params=["memory", "sqlite"])
def storage(request, tmp_path):
    return MemoryStorage() if request.param == "memory" else SQLiteStorage(tmp_path / "s.db")


def test_a_form_over_several_messages_keeps_state_per_chat_and_user(api, run, storage) -> None:
    dp = form_bot(storage)
    for chat, text in [
        (1, "hello"),
        (1, "/form"),
        (2, "/form"),  # another person, her own conversation
        (1, "Ada"),
        (2, "Bob"),
        (1, "old"),
        (1, "36"),
        (2, "7"),
        (1, "again"),
    ]:
        api.text(text, chat=chat)

    async def main() -> None:
        async with api.bot() as bot:
            for raw in api.updates:
                await dp.feed_update(bot, Update.from_json(raw))
            key = StorageKey(api.bot_id, 1, 1)
            assert (await storage.get_state(key), await storage.get_data(key)) == (None, {})
        await storage.aclose()

    run(main)
    assert [t for c, t in api.texts() if c == 1] == [
        "send /form",
        "name?",
        "age?",
        "a number, please",
        "Ada is 36",
        "send /form",
    ]
    assert [t for c, t in api.texts() if c == 2] == ["name?", "age?", "Bob is 7"]


def test_sqlite_state_survives_a_restart_and_is_separate_per_bot(run, tmp_path) -> None:
    path = tmp_path / "state.db"
    key, other_bot = StorageKey(1, 2, 3), StorageKey(9, 2, 3)

    async def write() -> None:
        storage = SQLiteStorage(path)
        await storage.set_state(key, Form.age.name)
        await storage.set_data(key, {"name": "Ada", "tags": ["a", 1, None], "n": 1.5})
        await storage.aclose()

    async def read() -> tuple:
        storage = SQLiteStorage(path)
        found = (
            await storage.get_state(key),
            await storage.get_data(key),
            await storage.get_state(other_bot),
            await storage.get_data(other_bot),
        )
        await storage.set_state(key, None)
        await storage.set_data(key, {})
        await storage.aclose()
        return found

    run(write)
    assert path.stat().st_mode & 0o777 == 0o600
    assert run(read) == ("Form:age", {"name": "Ada", "tags": ["a", 1, None], "n": 1.5}, None, {})
    with sqlite3.connect(path) as db:  # a finished conversation leaves no row
        assert db.execute("SELECT count(*) FROM dchat_bots_state").fetchone() == (0,)


@pytest.mark.parametrize("bad", [{"f": object()}, {"n": math.nan}, {1: "x"}, ["list"]])
def test_data_that_is_not_json_is_a_typed_error_in_both_storages(run, tmp_path, bad) -> None:
    async def main() -> None:
        for storage in (MemoryStorage(), SQLiteStorage(tmp_path / "s.db")):
            with pytest.raises(StateDataError) as raised:
                await storage.set_data(StorageKey(1, 1, 1), bad)
            assert isinstance(raised.value, TypeError)
            await storage.aclose()

    run(main)


def test_a_database_that_is_not_sqlite_is_a_typed_error(tmp_path) -> None:
    path = tmp_path / "not.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateStorageError):
        SQLiteStorage(path)
    with pytest.raises(StateStorageError):
        SQLiteStorage(tmp_path / "no such folder" / "s.db")


def test_state_names_come_from_the_group_and_unnamed_states_refuse() -> None:
    assert (Form.name.name, Form.age.name) == ("Form:name", "Form:age")
    assert Form.states() == (Form.name, Form.age)
    assert State("custom").name == "custom"
    with pytest.raises(TypeError):
        _ = State().name
