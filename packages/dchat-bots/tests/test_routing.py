"""Routers, filters, middleware and error handlers, fed updates through the dispatcher."""

from __future__ import annotations

import logging
import re

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dchat_bots import (
    CallbackQuery,
    ChatFilter,
    Command,
    Context,
    Dispatcher,
    Message,
    Regex,
    Router,
    Text,
    Update,
)


async def handle_all(api, dp: Dispatcher) -> list[bool]:
    async with api.bot() as bot:
        return [await dp.feed_update(bot, Update.from_json(u)) for u in api.updates]


def test_commands_match_by_name_arguments_and_mention(api, run) -> None:
    dp, seen = Dispatcher(), []

    @dp.command("start", "help")
    async def start(message: Message, ctx: Context) -> None:
        assert ctx.command is not None
        seen.append((ctx.command.name, ctx.command.args, ctx.command.mention))

    texts = ["/start", "/HELP me  now ", "/start@echo_bot x", "/start@other_bot", "/stop", "start"]
    for text in texts:
        api.text(text)
    assert run(handle_all, api, dp) == [True, True, True, False, False, False]
    assert seen == [("start", "", None), ("HELP", "me  now", None), ("start", "x", "echo_bot")]


def test_text_regex_and_chat_filters_and_their_combinations(api, run) -> None:
    dp, seen = Dispatcher(), []

    @dp.message(Text("hi", "hello", ignore_case=True) & ChatFilter(1, 2))
    async def greet(message: Message, ctx: Context) -> None:
        seen.append(("greet", message.chat.id))

    @dp.message(Regex(r"order (\d+)") | Text(startswith="#"))
    async def order(message: Message, ctx: Context) -> None:
        seen.append(("order", ctx.match.group(1) if ctx.match else message.text))

    @dp.message(~Command(), Text(contains="bye"))
    async def bye(message: Message, ctx: Context) -> None:
        seen.append(("bye", message.text))

    @dp.message(lambda message, ctx: message.caption is not None)
    async def caption(message: Message, ctx: Context) -> None:
        seen.append(("caption", message.caption))

    api.text("HELLO", chat=2)
    api.text("hello", chat=3)  # not in the chats
    api.text("my order 42 please")
    api.text("#7")
    api.text("/bye")  # a command, not a goodbye
    api.text("goodbye")
    api.push({"message": {**api_message(), "text": None, "caption": "a photo"}})
    assert run(handle_all, api, dp) == [True, False, True, True, False, True, True]
    assert seen == [
        ("greet", 2),
        ("order", "42"),
        ("order", "#7"),
        ("bye", "goodbye"),
        ("caption", "a photo"),
    ]


def api_message() -> dict:
    return {"message_id": 1, "chat": {"id": 1, "type": "private"}, "date": 1}


def test_the_first_matching_handler_wins_own_handlers_before_child_routers(api, run) -> None:
    dp, seen = Dispatcher(), []
    first, second = Router("first"), Router("second")
    dp.include_router(first)
    dp.include_router(second)

    @second.message(Text())
    async def in_second(message: Message, ctx: Context) -> None:
        seen.append("second")

    @first.message(Text("x"))
    async def in_first(message: Message, ctx: Context) -> None:
        seen.append("first")

    @dp.message(Text("root"))
    async def in_root(message: Message, ctx: Context) -> None:
        seen.append("root")

    for text in ["x", "y", "root"]:
        api.text(text)
    run(handle_all, api, dp)
    assert seen == ["first", "second", "root"]
    with pytest.raises(ValueError, match="already included"):
        dp.include_router(first)
    with pytest.raises(ValueError, match="loop"):
        first.include_router(dp)


def test_callback_queries_go_to_callback_handlers_by_their_data(api, run) -> None:
    dp, seen = Dispatcher(), []

    @dp.callback_query(Text(startswith="vote:"))
    async def vote(query: CallbackQuery, ctx: Context) -> None:
        seen.append(query.data)
        await ctx.answer(f"counted {query.data}")

    @dp.message(Text())
    async def text(message: Message, ctx: Context) -> None:
        seen.append("text handler")

    api.press("vote:yes", chat=5)
    api.press("other")
    run(handle_all, api, dp)
    assert seen == ["vote:yes"]
    assert api.texts() == [(5, "counted vote:yes")]


def test_outer_middleware_sees_every_update_inner_only_chosen_handlers(api, run) -> None:
    dp, child, trace = Dispatcher(), Router("child"), []
    dp.include_router(child)

    @dp.outer_middleware
    async def outer(call_next, event, ctx: Context):
        trace.append(("outer", event.text))
        if event.text == "blocked":
            return False  # dropped: no filter, no handler
        ctx.data["user"] = "looked up"
        return await call_next(event, ctx)

    @dp.middleware
    async def timing(call_next, event, ctx: Context):
        trace.append(("inner root", event.text))
        return await call_next(event, ctx)

    @child.middleware
    async def inner(call_next, event, ctx: Context):
        trace.append(("inner child", ctx.data["user"]))
        return await call_next(event, ctx)

    @child.message(Text("hi"))
    async def hi(message: Message, ctx: Context) -> None:
        trace.append(("handler", message.text))

    for text in ["hi", "nobody's", "blocked"]:
        api.text(text)
    assert run(handle_all, api, dp) == [True, False, False]
    assert trace == [
        ("outer", "hi"),
        ("inner root", "hi"),
        ("inner child", "looked up"),
        ("handler", "hi"),
        ("outer", "nobody's"),
        ("outer", "blocked"),
    ]


def test_errors_go_to_the_nearest_matching_error_handler_up_the_tree(api, run) -> None:
    dp, child, caught = Dispatcher(), Router("child"), []
    dp.include_router(child)

    @child.message(Text("key"))
    async def key(message: Message, ctx: Context) -> None:
        raise KeyError("k")

    @child.message(Text("value"))
    async def value(message: Message, ctx: Context) -> None:
        raise ValueError("v")

    @child.error(KeyError)
    async def on_key(error: Exception, ctx: Context) -> None:
        caught.append(("child", type(error).__name__))

    @dp.error()
    async def on_any(error: Exception, ctx: Context) -> None:
        caught.append(("root", type(error).__name__))
        await ctx.answer("sorry, that failed")

    api.text("key")
    api.text("value", chat=8)
    run(handle_all, api, dp)
    assert caught == [("child", "KeyError"), ("root", "ValueError")]
    assert api.texts() == [(8, "sorry, that failed")]


def test_an_unhandled_error_is_logged_where_not_what(api, run, caplog) -> None:
    dp = Dispatcher()

    @dp.message(Text())
    async def broken(message: Message, ctx: Context) -> None:
        raise RuntimeError(f"cannot handle {message.text}")

    @dp.outer_middleware
    async def also_broken(call_next, event, ctx: Context):
        if event.text == "in middleware":
            raise LookupError(event.text)
        return await call_next(event, ctx)

    api.text("a private text")
    api.text("in middleware")
    with caplog.at_level(logging.ERROR, logger="dchat_bots"):
        assert run(handle_all, api, dp) == [True, True]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "RuntimeError not handled" in logged
    assert "LookupError not handled" in logged
    assert "in broken" in logged  # the frame
    assert "a private text" not in logged
    assert not re.search(r"LookupError: in", logged)


def test_an_error_handler_that_fails_is_logged_and_the_next_update_goes_on(
    api, run, caplog
) -> None:
    dp, child, seen = Dispatcher(), Router("child"), []
    dp.include_router(child)

    @child.message(Text("boom"))
    async def boom(message: Message, ctx: Context) -> None:
        raise KeyError("k")

    @child.error()
    async def clumsy(error: Exception, ctx: Context) -> None:
        raise ZeroDivisionError  # not offered again, not to the root either

    @dp.error()
    async def root(error: Exception, ctx: Context) -> None:
        seen.append(("root", type(error).__name__))

    @dp.message(Text("next"))
    async def after(message: Message, ctx: Context) -> None:
        seen.append(("next", message.text))

    api.text("boom")
    api.text("next")
    with caplog.at_level(logging.ERROR, logger="dchat_bots"):
        assert run(handle_all, api, dp) == [True, True]
    assert seen == [("next", "next")]
    assert "ZeroDivisionError not handled" in caplog.text


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=40))
def test_command_parsing_never_fails_on_any_text(new_api, text: str) -> None:
    api = new_api()
    api.text(text)
    dp, seen = Dispatcher(), []

    @dp.message(Command())
    async def any_command(message: Message, ctx: Context) -> None:
        assert ctx.command is not None
        seen.append(ctx.command)

    anyio.run(handle_all, api, dp)
    if seen:
        assert text.startswith("/")
        assert text[1:].startswith(seen[0].name)


def test_group_chats_reach_handlers_and_answers_go_back_to_the_group(api, run) -> None:
    """A group's update (the node's shape, docs/protocol.md section 44): a negative chat id,
    ``type`` group and its title; ``ctx.answer`` posts to the group."""
    dp, seen = Dispatcher(), []

    @dp.message(Command("roll"), ChatFilter(type="group"))
    async def roll(message: Message, ctx: Context) -> None:
        seen.append((message.chat.title, message.from_user.first_name if message.from_user else ""))
        await ctx.answer("4")

    @dp.message(ChatFilter(type="private"))
    async def private(message: Message, ctx: Context) -> None:
        seen.append(("private", message.text))

    group = {"id": -123456789, "type": "group", "title": "team"}
    alice = {"id": 77, "is_bot": False, "first_name": "alice"}
    api.push({"message": {**api_message(), "text": "/roll@echo_bot", "chat": group, "from": alice}})
    api.text("hello")  # a private chat
    assert run(handle_all, api, dp) == [True, True]
    assert seen == [("team", "alice"), ("private", "hello")]
    assert api.texts() == [(-123456789, "4")]
