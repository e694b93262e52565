"""A bot node's webhook against a real local HTTP receiver (test_bots.py runs it on its nodes).

The receiver listens on 127.0.0.1 (a free port), checks every delivery with
``dchat_sdk.verify_webhook`` and Telegram's secret-token header, and records
what it accepted. The scenario: set the webhook with the CLI, a delivery,
a receiver outage during which the bot's node restarts with updates waiting,
the recovery (retries deliver everything, in order, duplicates only with the
same update id), and back to polling.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from typer.testing import CliRunner

from dchat_node.cli import app
from dchat_sdk import WebhookSignatureError, verify_webhook

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_node import NodeProcess
    from dchat_sdk import RemoteClient

TELEGRAM_TOKEN = "tg-compat_1"
CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)


@dataclass
class Delivery:
    update_id: int
    text: str
    body: bytes
    signature: str


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 that accepts only deliveries signed with ``secret``."""

    secret: str = ""
    port: int = 0
    accepted: list[Delivery] = field(default_factory=list)
    refused: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/dchat-hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 5

            def do_POST(self) -> None:
                size = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(min(size, 1 << 21))
                try:
                    verify_webhook(body, self.headers.get("x-dchat-signature"), receiver.secret)
                    good = self.headers.get("x-telegram-bot-api-secret-token") == TELEGRAM_TOKEN
                except WebhookSignatureError:
                    good = False
                if not good:
                    receiver.refused += 1
                    self.send_response(401)
                else:
                    update = json.loads(body)
                    text = str((update.get("message") or {}).get("text"))
                    signature = self.headers["x-dchat-signature"]
                    receiver.accepted.append(Delivery(update["update_id"], text, body, signature))
                    self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def texts(self) -> list[str]:
        return [d.text for d in self.accepted]


def _bot(node: NodeProcess, token: str, method: str, **params: Any) -> dict[str, Any]:
    answer = httpx.post(f"{node.info['url']}/bot{token}/{method}", json=params, timeout=30)
    reply: dict[str, Any] = answer.json()
    assert reply.get("error_code", answer.status_code) == answer.status_code
    return reply


def check_webhooks(
    bot: NodeProcess, token: str, alice: RemoteClient, wait_until: Callable[..., None]
) -> None:
    """The scenario of the module docstring (the bot is ``echo``, alice its contact)."""
    receiver = Receiver()
    receiver.start()
    try:
        _deliver_signed_updates(bot, token, alice, receiver, wait_until)
        _survive_an_outage_and_a_restart(bot, token, alice, receiver, wait_until)
        with bot.client() as b:
            assert b.bot_webhook_dead_letters() == []
            assert b.retry_bot_webhook_dead_letters() == []
            assert b.bot_webhook()["delivered"] >= 3
        cli = ["--data-dir", str(bot.data_dir), "bot", "webhook"]
        for command, shown in (("show", receiver.url), ("dead-letters", '"dead_letters": []')):
            result = CliRunner().invoke(app, [*cli, command])
            assert result.exit_code == 0, result.output
            assert shown in result.output
        assert _bot(bot, token, "deleteWebhook") == {"ok": True, "result": True}
        assert _bot(bot, token, "getUpdates") == {"ok": True, "result": []}  # delivered: confirmed
    finally:
        receiver.stop()


def _deliver_signed_updates(
    bot: NodeProcess,
    token: str,
    alice: RemoteClient,
    receiver: Receiver,
    wait_until: Callable[..., None],
) -> None:
    runner = CliRunner()
    args = ["--data-dir", str(bot.data_dir), "bot", "webhook", "set", receiver.url]
    # --drop-pending: updates the test before left unconfirmed are not this one's
    result = runner.invoke(app, [*args, "--secret-token", TELEGRAM_TOKEN, "--drop-pending"])
    assert result.exit_code == 0, result.output
    receiver.secret = result.output.split("signing secret (shown once): ")[1].split()[0]
    with bot.client() as b:
        shown = b.bot_webhook()
    assert shown["webhook"]["url"] == receiver.url
    assert "signing_secret" not in shown  # shown once, by the set
    refused = runner.invoke(
        app, ["--data-dir", str(bot.data_dir), "bot", "webhook", "set", "ftp://x"]
    )
    assert refused.exit_code != 0
    assert "an http or https URL must be given" in refused.output
    conflict = {"ok": False, "error_code": 409, "description": CONFLICT}
    assert _bot(bot, token, "getUpdates") == conflict

    alice.send("echo", "hook 1")
    wait_until(lambda: receiver.texts() == ["hook 1"], timeout=30)
    first = receiver.accepted[0]
    with pytest.raises(WebhookSignatureError):  # the receiver's check refuses a wrong secret
        verify_webhook(first.body, first.signature, receiver.secret[::-1])
    info = _bot(bot, token, "getWebhookInfo")["result"]
    assert (info["url"], info["max_connections"]) == (receiver.url, 40)
    bad = _bot(bot, token, "setWebhook", url="javascript:alert(1)")
    assert bad["description"] == "Bad Request: bad webhook: an http or https URL must be given"
    assert _bot(bot, token, "setWebhook", url=receiver.url, max_connections=0)["error_code"] == 400
    again = {"secret_token": TELEGRAM_TOKEN, "signing_secret": receiver.secret}
    again["max_connections"] = "4"
    assert _bot(bot, token, "setWebhook", url=receiver.url, **again)["result"] is True
    assert _bot(bot, token, "getWebhookInfo")["result"]["max_connections"] == 4


def _survive_an_outage_and_a_restart(
    bot: NodeProcess,
    token: str,
    alice: RemoteClient,
    receiver: Receiver,
    wait_until: Callable[..., None],
) -> None:
    receiver.stop()  # the receiver is down: connections are refused
    alice.send("echo", "hook 2")
    alice.send("echo", "hook 3")

    def failing() -> bool:
        info = _bot(bot, token, "getWebhookInfo")["result"]
        return info["pending_update_count"] >= 1 and "last_error_message" in info

    wait_until(failing, timeout=30)
    assert _bot(bot, token, "getWebhookInfo")["result"]["last_error_message"] == "Connection failed"
    bot.stop()  # with updates waiting: they are in bot-webhook.json
    receiver.start()  # the same port
    bot.start()
    wait_until(lambda: {"hook 2", "hook 3"} <= set(receiver.texts()), timeout=60)
    by_id: dict[int, set[str]] = {}
    for delivery in receiver.accepted:
        by_id.setdefault(delivery.update_id, set()).add(delivery.text)
    assert sorted(t for texts in by_id.values() for t in texts) == ["hook 1", "hook 2", "hook 3"]
    first_seen = list(dict.fromkeys(d.update_id for d in receiver.accepted))
    assert first_seen == sorted(first_seen)  # one chat: in order
    assert receiver.refused == 0
