"""Long polling: offsets confirmed after handling, no duplicates, order per chat, graceful stop."""

from __future__ import annotations

import anyio
import httpx
import pytest

from dchat_bots import Context, Dispatcher, Message, Text, UnauthorizedError


def echo_bot(seen: list, stop_after: int | None = None) -> Dispatcher:
    dp = Dispatcher(poll_timeout=5)

    @dp.message(Text())
    async def echo(message: Message, ctx: Context) -> None:
        seen.append((message.chat.id, message.text))
        await ctx.answer(message.text or "")
        if stop_after is not None and len(seen) >= stop_after:
            dp.stop()

    return dp


def test_each_update_reaches_a_handler_once_and_is_confirmed_after_it(api, run) -> None:
    seen: list = []
    dp = echo_bot(seen, stop_after=4)
    first = api.text("one")
    api.text("two")

    async def main() -> None:
        async with api.bot() as bot, anyio.create_task_group() as group:
            group.start_soon(dp.start_polling, bot)
            await api.until(lambda: len(seen) >= 2)
            api.replay_next = True  # the node serves the last batch again (its answer was lost)
            await anyio.sleep(0.05)
            api.text("three", chat=2)  # arrives during a long poll
            api.push({"update_id": 0, "message": "not an object"})  # malformed: skipped
            last = api.text("four")

            await api.until(lambda: len(seen) >= 4)
            assert last > first

    run(main)
    # Chats run concurrently: the order holds per chat.
    assert [t for c, t in seen if c == 1] == ["one", "two", "four"]
    assert [t for c, t in seen if c == 2] == ["three"]
    assert sorted(api.texts()) == sorted(seen)
    # The final short getUpdates confirmed everything handled, the malformed one included.
    method, params = api.calls[-1]
    assert (method, params["offset"], params["timeout"]) == ("getUpdates", api._next_id + 1, 0)
    assert api.updates == []


def test_a_chat_s_updates_keep_their_order_while_chats_run_concurrently(api, run) -> None:
    dp, log = Dispatcher(poll_timeout=1), []
    gate = {}

    @dp.message(Text())
    async def slow(message: Message, ctx: Context) -> None:
        log.append(("start", message.chat.id, message.text))
        if message.text == "slow":
            await gate["release"].wait()  # chat 1 blocks; chat 2 must go on meanwhile
        log.append(("end", message.chat.id, message.text))
        if len([e for e in log if e[0] == "end"]) == 4:
            dp.stop()

    @dp.message()
    async def unused(message: Message, ctx: Context) -> None:
        raise AssertionError

    for chat, text in [(1, "slow"), (2, "a"), (1, "after slow"), (2, "b")]:
        api.text(text, chat=chat)

    async def main() -> None:
        gate["release"] = anyio.Event()
        async with api.bot() as bot, anyio.create_task_group() as group:
            group.start_soon(dp.start_polling, bot)
            await api.until(lambda: ("end", 2, "b") in log)
            assert ("start", 1, "after slow") not in log
            gate["release"].set()

    run(main)
    ends = [(chat, text) for kind, chat, text in log if kind == "end"]
    assert ends.index((1, "slow")) < ends.index((1, "after slow"))
    assert ends.index((2, "a")) < ends.index((2, "b")) < ends.index((1, "slow"))


def test_stop_ends_a_pending_long_poll_at_once(api, run) -> None:
    dp = echo_bot([])

    async def main() -> float:
        async with api.bot() as bot, anyio.create_task_group() as group:
            group.start_soon(dp.start_polling, bot)
            await api.until(lambda: any(m == "getUpdates" for m, _ in api.calls))
            started = anyio.current_time()
            dp.stop()
        return anyio.current_time() - started

    assert run(main) < 1  # the poll waits 5 s when nothing comes


def test_a_node_without_answer_is_retried_and_a_revoked_token_stops_polling(
    api, run, monkeypatch
) -> None:
    monkeypatch.setattr("dchat_bots._dispatcher._BACKOFF_FIRST", 0.01)
    seen: list = []
    dp = echo_bot(seen)

    def down() -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    api.script += [down, down, lambda: None, down, down]  # getMe twice (starting), 2 polls
    api.text("after the outage")

    async def main() -> None:
        async with api.bot() as bot, anyio.create_task_group() as group:
            group.start_soon(dp.start_polling, bot)
            await api.until(lambda: api.sent)
            api.revoke()

    with pytest.raises(ExceptionGroup) as raised:  # the polling task's error, through the group
        run(main)
    assert raised.group_contains(UnauthorizedError)
    assert seen == [(1, "after the outage")]
    methods = [m for m, _ in api.calls]
    assert methods[:4] == ["getMe", "getMe", "getMe", "getUpdates"]
    assert methods.count("getUpdates") >= 4  # two without answer, one answered, one refused


def test_polling_twice_at_once_is_refused(api, run) -> None:
    dp = echo_bot([])

    async def main() -> None:
        async with api.bot() as bot, anyio.create_task_group() as group:
            group.start_soon(dp.start_polling, bot)
            await api.until(lambda: dp._polling)
            with pytest.raises(RuntimeError, match="already polling"):
                await dp.start_polling(bot)
            dp.stop()

    run(main)
