"""A bot on its own node: a user writes to it, a Bot API client answers (real processes)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from typer.testing import CliRunner

from dchat_node.cli import app
from dchat_storage.testing import image_bytes, media_samples

from ._webhook_scenario import check_webhooks

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from dchat_node import NodeProcess
    from dchat_sdk import RemoteClient

runner = CliRunner()


def _bot(node: NodeProcess, token: str, method: str, **params: Any) -> httpx.Response:
    url = f"{node.info['url']}/bot{token}/{method}"
    return httpx.post(url, json=params, timeout=30)


def _upload(
    node: NodeProcess, token: str, method: str, field: str, data: bytes, **params: Any
) -> Any:
    """A multipart upload, as Telegram's clients send an ``InputFile``."""
    url = f"{node.info['url']}/bot{token}/{method}"
    files = {field: ("upload.bin", data, "application/octet-stream")}
    return httpx.post(url, data=params, files=files, timeout=30).json()


def _updates(node: NodeProcess, token: str, offset: int, count: int) -> list[dict[str, Any]]:
    """Long-poll from ``offset`` until ``count`` updates are there (at most 20 s each poll)."""
    found: list[dict[str, Any]] = []
    for _ in range(5):
        answer = _bot(node, token, "getUpdates", offset=offset, timeout=20).json()["result"]
        found = answer
        if len(found) >= count:
            break
    return found


def _files_and_edits(
    alice: RemoteClient,
    bot: NodeProcess,
    token: str,
    offset: int,
    tmp: Path,
    wait_until: Callable[..., None],
) -> None:
    """Files, locations and edits both ways through the Bot API (section 34)."""
    notes = tmp / "notes.bin"
    notes.write_bytes(os.urandom(3000))  # a generic document: its bytes make no claim
    first = alice.send("echo", "speling")
    alice.send_file("echo", notes)
    alice.send_location("echo", 52.52, 13.405)
    updates = _updates(bot, token, offset, 3)
    document, location = updates[1]["message"]["document"], updates[2]["message"]["location"]
    assert document["file_size"] == 3000
    assert location == {"latitude": 52.52, "longitude": 13.405}
    alice.edit("echo", first, "spelling")
    [edit] = _updates(bot, token, updates[-1]["update_id"] + 1, 1)
    assert edit["edited_message"]["text"] == "spelling"
    assert edit["edited_message"]["message_id"] == updates[0]["message"]["message_id"]
    chat = edit["edited_message"]["chat"]["id"]

    # getFile fetches the sealed blob from the relay; the bot's node opens it.
    got = _bot(bot, token, "getFile", file_id=document["file_id"]).json()["result"]
    url = f"{bot.info['url']}/file/bot{token}/{got['file_path']}"
    assert httpx.get(url, timeout=30).content == notes.read_bytes()
    assert httpx.get(url.replace(token, token[:-2] + "xx"), timeout=30).status_code == 401

    photo = _upload(
        bot, token, "sendPhoto", "photo", image_bytes("PNG"), chat_id=chat, caption="red"
    )
    assert photo["result"]["photo"][0]["width"] == 64
    again = _bot(bot, token, "sendDocument", chat_id=chat, document=document["file_id"]).json()
    assert again["result"]["document"]["file_size"] == 3000
    where = _bot(bot, token, "sendLocation", chat_id=chat, latitude=1.5, longitude=-2.25).json()
    assert where["result"]["location"] == {"latitude": 1.5, "longitude": -2.25}
    samples = media_samples()  # uploaded without a type: the node reads it from the bytes
    voice = _upload(
        bot, token, "sendVoice", "voice", samples["audio/ogg"], chat_id=chat, duration=3
    )
    assert (voice["result"]["voice"]["mime_type"], voice["result"]["voice"]["duration"]) == (
        "audio/ogg",
        3,
    )
    song = _upload(bot, token, "sendAudio", "audio", samples["audio/mpeg"], chat_id=chat)
    assert song["result"]["audio"]["mime_type"] == "audio/mpeg"
    draft = _bot(bot, token, "sendMessage", chat_id=chat, text="draft").json()["result"]
    edited = _bot(
        bot, token, "editMessageText", chat_id=chat, message_id=draft["message_id"], text="final"
    )
    assert edited.json()["result"]["text"] == "final"

    def shown() -> dict[str, str]:  # what alice's conversation view shows (edits applied)
        rows = alice.conversation("echo")["messages"]
        return {r["text"]: r["message_id"] for r in rows if r["direction"] == "in"}

    wait_until(lambda: {"red", "final", "[location 1.500000,-2.250000]"} <= set(shown()))
    assert alice.attachment(shown()["red"])["kind"] == "image"
    gone = _bot(bot, token, "deleteMessage", chat_id=chat, message_id=draft["message_id"])
    assert gone.json() == {"ok": True, "result": True}
    wait_until(lambda: "final" not in shown())

    # Hostile and impossible calls: Telegram's envelope with its code, nothing crashes.
    theirs = updates[0]["message"]["message_id"]
    refused = {
        ("editMessageText", "can't be edited"): {"message_id": theirs, "text": "mine now"},
        ("deleteMessage", "can't be deleted"): {"message_id": theirs},
        ("deleteMessage", "to delete not found"): {"message_id": draft["message_id"]},
        ("sendPhoto", "wrong file identifier"): {"photo": "AgACAgIAAxkBAAIB"},
        ("sendPhoto", "by URL"): {"photo": "http://127.0.0.1:1/x.png"},
        ("getFile", "invalid file_id"): {"file_id": "dcf1" + "A" * 22},
        ("sendLocation", "latitude"): {"latitude": 91, "longitude": 0},
    }
    for (method, why), params in refused.items():
        answer = _bot(bot, token, method, chat_id=chat, **params).json()
        assert (answer["error_code"], why in answer["description"]) == (400, True), answer
    unknown = _bot(bot, token, "sendDocument", chat_id=1, document=document["file_id"]).json()
    assert unknown["description"] == "Bad Request: chat not found"
    lie = _upload(bot, token, "sendPhoto", "photo", b"not a picture at all", chat_id=chat)
    assert lie["error_code"] == 400
    huge = _upload(bot, token, "sendPhoto", "photo", b"\0" * (10 * 2**20 + 1), chat_id=chat)
    assert huge == {"ok": False, "error_code": 413, "description": "Request Entity Too Large"}


def _a_stranger_writes(
    carol: RemoteClient,
    b: RemoteClient,
    bot: NodeProcess,
    token: str,
    wait_until: Callable[..., None],
) -> None:
    """Someone who is not the bot's contact writes: a request while closed, answered when open."""
    carol.create_identity("carol")
    carol.add_contact("echo", b.card())  # carol has the bot's card; the bot has not hers
    closed = runner.invoke(app, ["--data-dir", str(bot.data_dir), "bot", "set-open", "off"])
    assert closed.exit_code == 0, closed.output
    carol.send("echo", "anyone there?")
    wait_until(lambda: [r["name"] for r in b.requests()] == ["carol"], timeout=20)
    [request] = b.requests()
    refused = _bot(bot, token, "sendMessage", chat_id=request["identity_id"], text="hi")
    assert refused.json()["description"] == "Bad Request: chat not found"

    # Blocked stays blocked, open or not: the message is dropped, no contact is made.
    b.block(request["identity_id"])
    b.set_bot_open(True)  # the SDK's call; on is also the default of a new bot
    offset = b.request("GET", "/v1/bot")["offset"]
    refused_before = b.status()["refusals"].get("BlockedSenderError", 0)
    carol.send("echo", "let me in")
    wait_until(
        lambda: b.status()["refusals"].get("BlockedSenderError", 0) > refused_before, timeout=20
    )
    assert request["identity_id"] not in [c.identity_id for c in b.contacts()]
    b.unblock(request["identity_id"])
    carol.send("echo", "/start")

    def heard() -> list[dict[str, Any]]:
        got = _bot(bot, token, "getUpdates", offset=offset, timeout=5).json()["result"]
        texts = [u.get("message", {}).get("text") for u in got]
        assert "let me in" not in texts
        return [u for u in got if u.get("message", {}).get("text") == "/start"]

    wait_until(heard, timeout=30)
    [update] = heard()
    strangers = b.bot()["strangers"]  # carol's texts were a stranger's: limited, not refused
    assert strangers["admitted"] >= 2
    assert (strangers["pending"], sum(strangers["refused"].values())) == (0, 0)  # all taken
    sent = _bot(bot, token, "sendMessage", chat_id=update["message"]["chat"]["id"], text="hi carol")
    assert sent.json()["ok"] is True
    wait_until(lambda: "hi carol" in [m.text for m in carol.messages(peer="echo")], timeout=20)
    assert b.requests() == []  # accepted, as `dchat request accept` would
    [stranger] = [c for c in b.contacts() if c.identity_id == request["identity_id"]]
    assert stranger.name.startswith("~carol ")  # marked: the bot accepted, not its owner
    _bot(bot, token, "getUpdates", offset=update["update_id"] + 1)


@pytest.mark.slow
def test_a_user_talks_to_a_bot_through_the_bot_api(
    make_user: Callable[[str], NodeProcess], wait_until: Callable[..., None], tmp_path: Path
) -> None:
    alice, bot = make_user("alice"), make_user("echo")
    with alice.client() as a, bot.client() as b:
        a.create_identity("alice")
        b.create_identity("echo")
        a.add_contact("echo", b.card())
        b.add_contact("alice", a.card())
        created = runner.invoke(app, ["--data-dir", str(bot.data_dir), "bot", "create", "echo"])
        assert created.exit_code == 0, created.output
        token = created.output.split("token: ", 1)[1].split()[0]
        b.set_bot_commands({"start": "Begin"})  # the SDK's management calls
        narrow = b.bot_token(["updates"])
        assert _bot(bot, narrow, "getMyCommands").json()["result"] == [
            {"command": "start", "description": "Begin"}
        ]
        assert _bot(bot, narrow, "sendMessage", chat_id=1, text="x").status_code == 403
        me = _bot(bot, token, "getMe").json()
        assert me["ok"] is True
        assert me["result"]["is_bot"] is True

        a.send("echo", "/start hello")
        updates = _bot(bot, token, "getUpdates", timeout=20).json()["result"]
        assert [u["message"]["text"] for u in updates] == ["/start hello"]
        # A short poll (Telegram's default, timeout 0) answers what waits, too.
        assert _bot(bot, token, "getUpdates").json()["result"] == updates
        assert _bot(bot, token, "getUpdates", timeout=0).json()["result"] == updates
        update = updates[0]
        chat = update["message"]["chat"]["id"]
        sent = _bot(bot, token, "sendMessage", chat_id=chat, text="hello, alice")
        assert sent.json()["ok"] is True

        def answered() -> bool:
            texts = [m.text for m in a.messages(peer="echo")]
            return "hello, alice" in texts

        wait_until(answered, timeout=20)
        # Confirmed updates are not served again; the offset survives in the book.
        again = _bot(bot, token, "getUpdates", offset=update["update_id"] + 1).json()
        assert again == {"ok": True, "result": []}
        assert b.request("GET", "/v1/bot")["offset"] == update["update_id"] + 1
        _files_and_edits(a, bot, token, update["update_id"] + 1, tmp_path, wait_until)
        with make_user("carol").client() as c:
            _a_stranger_writes(c, b, bot, token, wait_until)

        check_webhooks(bot, token, a, wait_until)  # restarts the bot's node (b is stale after)

        # Hostile and revoked: Telegram's envelope with the right code, never the admin API.
        assert _bot(bot, token[:-2] + "xx", "getMe").status_code == 401
        assert _bot(bot, token, "noSuchMethod").json()["error_code"] == 404
        assert _bot(bot, token, "sendMessage", chat_id=1, text="x").json()["error_code"] == 400
        form = httpx.post(
            f"{bot.info['url']}/bot{token}/getUpdates",
            content=b"limit=500",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert form.json() == {
            "ok": False,
            "error_code": 400,
            "description": "Bad Request: limit must be between 1 and 100",
        }
        for body, kind in ((b"[" * 60_000, "application/json"), (b"\xff", "text/plain")):
            hostile = httpx.post(
                f"{bot.info['url']}/bot{token}/sendMessage",
                content=body,
                headers={"content-type": kind},
            )
            assert hostile.json()["error_code"] == 400
        admin = httpx.get(f"{bot.info['url']}/v1/bot", headers={"authorization": f"Bearer {token}"})
        assert admin.status_code == 401
        revoked = runner.invoke(app, ["--data-dir", str(bot.data_dir), "bot", "revoke", "1"])
        assert revoked.exit_code == 0, revoked.output
        assert _bot(bot, token, "getMe").json() == {
            "ok": False,
            "error_code": 401,
            "description": "Unauthorized",
        }


def test_set_open_takes_on_or_off(tmp_path: Path) -> None:
    refused = runner.invoke(app, ["--data-dir", str(tmp_path), "bot", "set-open", "yes"])
    assert refused.exit_code == 1
    assert "say on or off" in refused.output
