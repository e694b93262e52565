"""``Bot``: typed calls over the envelope; typed errors; the token kept out of repr and logs."""

from __future__ import annotations

import logging

import httpx
import pytest

from dchat_bots import (
    BadRequestError,
    Bot,
    BotApiError,
    BotCommand,
    BotNetworkError,
    ConflictError,
    ForbiddenError,
    MalformedReplyError,
    MethodNotFoundError,
    UnauthorizedError,
)


def test_typed_methods_round_trip(api, run) -> None:
    async def main() -> None:
        async with api.bot() as bot:
            me = await bot.me()
            assert (me.id, me.is_bot, me.username) == (4242, True, "echo_bot")
            assert await bot.me() is me  # asked once
            assert await bot.set_my_commands({"start": "Begin"}) is True
            assert await bot.get_my_commands() == [BotCommand("start", "Begin")]
            api.text("hi", chat=9)
            (update,) = await bot.get_updates()
            sent = await bot.send_message(update.chat_id or 0, "hello")
            assert (sent.chat.id, sent.text) == (9, "hello")

    run(main)
    assert api.texts() == [(9, "hello")]
    assert [name for name, _ in api.calls].count("getMe") == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequestError),
        (401, UnauthorizedError),
        (403, ForbiddenError),
        (404, MethodNotFoundError),
        (409, ConflictError),
        (429, BotApiError),
    ],
)
def test_refusals_are_typed_by_error_code(api, run, status: int, error) -> None:
    api.script.append(lambda: api.envelope(status, f"Refused: {status}"))

    async def main() -> None:
        async with api.bot() as bot:
            with pytest.raises(error) as raised:
                await bot.call("anything")
            assert raised.value.error_code == status
            assert raised.value.description == f"Refused: {status}"

    run(main)


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(502, text="<html>bad gateway</html>"),
        httpx.Response(200, json=[1, 2]),
        httpx.Response(200, json={"ok": True}),
        httpx.Response(200, content=b"[" * 100_000),
        httpx.Response(200, json={"ok": True, "result": {"id": "me"}}),
    ],
)
def test_answers_that_are_not_the_envelope_raise_malformed_reply(
    api, run, answer: httpx.Response
) -> None:
    api.script.append(lambda: answer)

    async def main() -> None:
        async with api.bot() as bot:
            with pytest.raises(MalformedReplyError):
                await bot.get_me()

    run(main)


def test_an_oversized_answer_is_refused_before_it_is_parsed(api, run, monkeypatch) -> None:
    monkeypatch.setattr("dchat_bots._bot.MAX_REPLY", 1000)
    api.script.append(lambda: api.envelope(200, "x" * 2000))

    async def main() -> None:
        async with api.bot() as bot:
            with pytest.raises(MalformedReplyError, match="over 1000 bytes"):
                await bot.call("getMe")

    run(main)


def test_no_answer_is_a_network_error_that_does_not_show_the_token(api, run) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    async def main() -> None:
        async with Bot(api.token, api.url, transport=httpx.MockTransport(refuse)) as bot:
            with pytest.raises(BotNetworkError) as raised:
                await bot.get_me()
            assert api.token not in str(raised.value)
            assert raised.value.__cause__ is None

    run(main)


def test_the_token_is_not_in_repr_nor_in_httpx_s_request_log(
    api, run, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        async with api.bot() as bot:
            assert api.token not in repr(bot)
            await bot.get_me()

    with caplog.at_level(logging.INFO, logger="httpx"):
        run(main)
    logged = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert logged, "httpx logs its requests at INFO (the filter has something to hide)"
    assert all(api.token not in line and "/bot<token>/getMe" in line for line in logged)


@pytest.mark.parametrize("token", ["", "1:a/b", "1:a b", "1:a?x"])
def test_a_token_that_cannot_be_in_a_path_is_refused(token: str) -> None:
    with pytest.raises(ValueError, match="bot token"):
        Bot(token, "http://bot-node.test")
