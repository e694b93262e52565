"""Bots as processes: updates/s to a long-polling bot and to a webhook, echo round trips.

A relay, a user node (alice) and a bot node (bob, made a bot with the SDK's
``create_bot``, as ``dchat bot create`` does) run as processes
(``_common.start_nodes``). alice sends 1 KiB texts to the bot through her
node's API, 16 senders on the API's WebSocket (``bench_e2e``'s senders). In one
run, the same N texts each time:

- **plain path** (the baseline): the time from the first send until the bot's
  node holds all N (its ``received`` counter), as ``bench_e2e`` measures;
- **long polling**: a bot program (httpx, one keep-alive connection) calls
  ``getUpdates`` with offsets, ``limit=100`` and a 10 s timeout; the time from
  the first send until it has been handed all N updates;
- **webhook**: the bot's webhook (set with the SDK, pending updates dropped)
  points at a receiver on 127.0.0.1 (a free port) that checks every delivery
  with ``dchat_sdk.verify_webhook`` and answers 401 to a bad one; the time from
  the first send until it has accepted N distinct update ids;
- **echo round trip**: alice sends a text and waits for the reply's ``message``
  event on her node's socket; the bot program (long polling) answers each update
  with ``sendMessage``. Sequential round trips, p50 and p99. Baseline: the same
  round trips with a plain echo on bob's node instead (a client following bob's
  events on a socket, answering with ``POST /v1/messages``).

The last printed line is ``bots: plain <A> msg/s, long polling <B> updates/s,
webhook <C> updates/s, echo p50 <D> ms p99 <E> ms (plain echo p50 <F> ms)``.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

import _common
import bench_e2e

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from dchat_node import NodeProcess

NAME = "bench_bots"
TEXT = bench_e2e.TEXT
SENDERS = bench_e2e.SENDERS
WAIT = 300.0  # upper bound on any phase
POLL_TIMEOUT = 10  # getUpdates long-poll seconds


# -- the bot program -------------------------------------------------------------------------


class BotProgram:
    """A Bot API client as a bot author writes one: httpx, ``getUpdates`` with offsets."""

    def __init__(self, node: NodeProcess, token: str) -> None:
        self._base = f"{node.info['url']}/bot{token}"
        self._http = httpx.Client(timeout=POLL_TIMEOUT + 30)
        self.offset = 0

    def call(self, method: str, **params: Any) -> Any:
        answer = self._http.post(f"{self._base}/{method}", json=params).json()
        if not answer.get("ok"):
            raise RuntimeError(f"{method}: {answer}")
        return answer["result"]

    def poll(self, timeout: int = POLL_TIMEOUT) -> list[dict[str, Any]]:
        """One ``getUpdates`` from the offset (confirming what came before); moves it on."""
        updates: list[dict[str, Any]] = self.call(
            "getUpdates", offset=self.offset, limit=100, timeout=timeout
        )
        if updates:
            self.offset = int(updates[-1]["update_id"]) + 1
        return updates

    def drain(self) -> None:
        """Take and confirm every update waiting now.

        With ``timeout=1``: the node answers ``timeout=0`` with no updates even
        when some are waiting (a bug this benchmark found; reported).
        """
        while self.poll(timeout=1):
            pass

    def close(self) -> None:
        self._http.close()


# -- the webhook receiver --------------------------------------------------------------------


class Receiver:
    """An HTTP receiver on 127.0.0.1 that accepts only deliveries signed with ``secret``."""

    def __init__(self) -> None:
        self.secret = ""
        self.ids: set[int] = set()
        self.refused = 0
        self.target = 0
        self.done = threading.Event()
        self.done_at = 0.0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a production receiver would
            timeout = 30

            def do_POST(self) -> None:
                from dchat_sdk import WebhookSignatureError, verify_webhook

                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                try:
                    verify_webhook(body, self.headers.get("x-dchat-signature"), receiver.secret)
                except WebhookSignatureError:
                    receiver.refused += 1
                    self.send_response(401)
                else:
                    update = json.loads(body)
                    text = str((update.get("message") or {}).get("text", ""))
                    if text.startswith("webhook "):  # this run's texts only
                        receiver.accept(int(update["update_id"]))
                    self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def accept(self, update_id: int) -> None:
        with self._lock:
            self.ids.add(update_id)
            if self.target and len(self.ids) >= self.target and not self.done.is_set():
                self.done_at = time.monotonic()
                self.done.set()

    def expect(self, count: int) -> None:
        """From now on, count ``count`` distinct update ids as done."""
        with self._lock:
            self.ids.clear()
            self.target = count
            self.done.clear()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# -- phases 1 to 3: the same N texts, three ways of receiving them --------------------------


def tagged(tag: str, i: int) -> str:
    """The ``i``-th 1 KiB text of a phase, ``tag`` and the number first."""
    head = f"{tag} {i:06d} "
    return head + TEXT[len(head) :]


def blast(nodes: dict[str, NodeProcess], count: int, tag: str) -> float:
    """Send ``count`` texts to bob with :data:`SENDERS` socket senders; the first send's time."""
    clients = [bench_e2e.sender(nodes["alice"], "socket") for _ in range(SENDERS)]
    began = time.monotonic()
    try:
        with ThreadPoolExecutor(SENDERS) as pool:
            shares = [range(k, count, SENDERS) for k in range(SENDERS)]
            list(pool.map(lambda s: [clients[s.start].send(tagged(tag, i)) for i in s], shares))
    finally:
        for client in clients:
            client.close()
    return began


def plain(nodes: dict[str, NodeProcess], count: int) -> float:
    """Seconds until the bot's node holds ``count`` new messages."""
    with bench_e2e.api(nodes["bob"]) as bob:
        base = bench_e2e.received(bob)
        began = blast(nodes, count, "plain")
        return bench_e2e.wait_received(bob, base + count) - began


def long_polling(nodes: dict[str, NodeProcess], token: str, count: int) -> float:
    """Seconds until a long-polling bot program has been handed ``count`` new updates."""
    bot = BotProgram(nodes["bob"], token)
    bot.drain()
    got: list[float] = []

    def run() -> None:
        seen: set[str] = set()
        deadline = time.monotonic() + WAIT
        while len(seen) < count and time.monotonic() < deadline:
            texts = [u["message"].get("text", "") for u in bot.poll() if "message" in u]
            seen.update(t for t in texts if t.startswith("polling "))
        if len(seen) >= count:
            got.append(time.monotonic())

    poller = threading.Thread(target=run, daemon=True)
    poller.start()
    began = blast(nodes, count, "polling")
    poller.join(WAIT)
    bot.call("getUpdates", offset=bot.offset, limit=1, timeout=1)  # confirm the last page
    bot.close()
    if not got:
        raise SystemExit("the long-polling bot did not get every update")
    return got[0] - began


def webhook(nodes: dict[str, NodeProcess], count: int) -> tuple[float, int]:
    """Seconds until the receiver has accepted ``count`` signed updates; and its refusals."""
    receiver = Receiver()
    try:
        with nodes["bob"].client() as b:
            receiver.secret = b.set_bot_webhook(receiver.url, drop_pending_updates=True)[
                "signing_secret"
            ]
            receiver.expect(count)
            began = blast(nodes, count, "webhook")
            if not receiver.done.wait(WAIT):
                raise SystemExit(f"the webhook delivered {len(receiver.ids)} of {count}")
            b.delete_bot_webhook()
        return receiver.done_at - began, receiver.refused
    finally:
        receiver.stop()


# -- phase 4: echo round trips ---------------------------------------------------------------


class Replies:
    """alice's incoming ``message`` events, followed on her node's socket in a thread."""

    def __init__(self, alice: NodeProcess) -> None:
        self._seen: dict[str, float] = {}
        self._cond = threading.Condition()
        self._client = alice.client(timeout=60)
        self._socket = self._client.socket()
        _, start = self._client.event_page()
        threading.Thread(target=self._follow, args=(start,), daemon=True).start()

    def _follow(self, start: int) -> None:
        from dchat_sdk import NodeUnreachableError

        with contextlib.suppress(NodeUnreachableError):  # closed when the run is over
            for event in self._socket.events(after=start):
                if event.kind == "message" and event.data.get("direction") == "in":
                    with self._cond:
                        self._seen.setdefault(event.data["text"], time.monotonic())
                        self._cond.notify_all()

    def wait(self, text: str) -> float:
        with self._cond:
            if not self._cond.wait_for(lambda: text in self._seen, timeout=60):
                raise SystemExit(f"no reply to {text[:12]!r} within 60 s")
            return self._seen[text]

    def close(self) -> None:
        self._socket.close()
        self._client.close()


def round_trips(nodes: dict[str, NodeProcess], count: int, tag: str) -> list[float]:
    """``count`` sequential round trips (after 5 unmeasured); each one's seconds."""
    replies = Replies(nodes["alice"])
    alice = bench_e2e.sender(nodes["alice"], "socket")
    times: list[float] = []
    try:
        for i in range(count + 5):
            text = tagged(tag, i)
            sent = time.monotonic()
            alice.send(text)
            if i >= 5:
                times.append(replies.wait(text) - sent)
            else:
                replies.wait(text)
    finally:
        alice.close()
        replies.close()
    return times


def with_echo(start: Callable[[threading.Event], None], measure: Callable[[], Any]) -> Any:
    """Run the echo ``start(stop)`` in a thread while ``measure()`` runs; then stop it."""
    stop = threading.Event()
    failed: list[BaseException] = []

    def guarded() -> None:
        try:
            start(stop)
        except Exception as exc:  # shown if the round trips then fail
            failed.append(exc)
            raise

    echo = threading.Thread(target=guarded, daemon=True)
    echo.start()
    try:
        return measure()
    except SystemExit as exc:
        raise SystemExit(f"{exc} (the echo: {failed or 'running'})") from None
    finally:
        stop.set()
        echo.join(POLL_TIMEOUT + 5)


def bot_echo(nodes: dict[str, NodeProcess], token: str, count: int) -> list[float]:
    """Round trips answered by a long-polling bot program with ``sendMessage``."""
    bot = BotProgram(nodes["bob"], token)
    bot.drain()

    def answer(stop: threading.Event) -> None:
        while not stop.is_set():
            for update in bot.poll(timeout=1):
                message = update.get("message")
                if message and not stop.is_set():
                    bot.call("sendMessage", chat_id=message["chat"]["id"], text=message["text"])

    try:
        times: list[float] = with_echo(answer, lambda: round_trips(nodes, count, "bot"))
    finally:
        bot.close()
    return times


def plain_echo(nodes: dict[str, NodeProcess], count: int) -> list[float]:
    """Round trips answered by a client of bob's node API (events in, ``POST`` out)."""
    client = nodes["bob"].client(timeout=60)
    socket = client.socket()
    _, start = client.event_page()

    def answer(stop: threading.Event) -> None:
        from dchat_sdk import NodeUnreachableError

        with bench_e2e.api(nodes["bob"]) as bob, contextlib.suppress(NodeUnreachableError):
            for event in socket.events(after=start):
                if stop.is_set():
                    return
                if event.kind == "message" and event.data.get("direction") == "in":
                    bob.call("POST", "/v1/messages", {"to": "alice", "text": event.data["text"]})

    try:
        times: list[float] = with_echo(answer, lambda: round_trips(nodes, count, "plain"))
    finally:
        socket.close()
        client.close()
    return times


# -- the run ---------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dchat-bench-bots-") as tmp:
        nodes = _common.start_nodes(Path(tmp))
        try:
            with nodes["bob"].client() as b:
                token = b.create_bot("bob", "benchmark echo")
            bench_e2e.warm_up(nodes)  # the session and the links
            n: int = args.messages
            refused: list[int] = []

            def hook() -> float:
                seconds, bad = webhook(nodes, n)
                refused.append(bad)
                return n / seconds

            runs = {
                "plain": lambda: n / plain(nodes, n),
                "polling": lambda: n / long_polling(nodes, token, n),
                "webhook": hook,
            }
            rates = _common.interleaved_rounds(runs, args.repeats)
            result: dict[str, Any] = {key: max(values) for key, values in rates.items()}
            result["rates"], result["refused"] = rates, sum(refused)
            result["bot_echo"] = bot_echo(nodes, token, args.round_trips)
            result["plain_echo"] = plain_echo(nodes, args.round_trips)
            return result
        finally:
            for node in nodes.values():
                node.stop()


def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


def section(result: dict[str, Any], args: argparse.Namespace, argv: list[str]) -> str:
    start, end = _common.markers(NAME)
    bot50, bot99 = percentiles(result["bot_echo"])
    plain50, plain99 = percentiles(result["plain_echo"])

    def rounds(key: str) -> str:
        return ", ".join(f"{rate:,.0f}" for rate in result["rates"][key])

    def ratio(key: str) -> str:
        return f"{result[key] / result['plain']:.0%}"

    lines = [
        start,
        "## Bots: long polling, webhook and echo round trips (relay + user node + bot node)",
        "",
        *_common.run_lines(
            NAME,
            argv,
            f"load average {_common.load_averages()} at the start",
            _common.load_at_end(),
            "shared with other jobs (the figures include their contention)",
        ),
        "",
        f"1 KiB texts from alice to the bot through alice's API ({SENDERS} senders on the "
        f"API's WebSocket); N = {args.messages} per row and round, {args.repeats} rounds with "
        "the three rows in turn, the best round shown (all rounds in the last column). "
        f"Round trips: {args.round_trips} sequential, after 5 unmeasured.",
        "",
        "| measure | value | rounds |",
        "|---|---|---|",
        f"| plain path: delivered to the bot's node (its `received` counter) | "
        f"{result['plain']:,.0f} msg/s | {rounds('plain')} |",
        f"| long polling: updates handed to a `getUpdates` bot program | "
        f"{result['polling']:,.0f} updates/s | {rounds('polling')} |",
        f"| webhook: signed updates accepted by a local receiver | "
        f"{result['webhook']:,.0f} updates/s | {rounds('webhook')} |",
        f"| long polling / plain path (best rounds) | {ratio('polling')} | |",
        f"| webhook / plain path (best rounds) | {ratio('webhook')} | |",
        f"| echo round trip through the Bot API (`getUpdates` + `sendMessage`), p50 | "
        f"{bot50:.1f} ms | |",
        f"| echo round trip through the Bot API, p99 | {bot99:.1f} ms | |",
        f"| baseline: plain echo (bob's events, `POST /v1/messages`), p50 | {plain50:.1f} ms | |",
        f"| baseline: plain echo, p99 | {plain99:.1f} ms | |",
        "",
        "Each row times from alice's first send until the last message is at its destination, "
        "so all include the message path; the ratios show what the bot's delivery adds. The "
        "webhook posts one chat's updates one at a time (the next after the previous one's "
        "2xx, section 36), so one user's burst goes at one HTTP round trip per update; "
        f"the receiver refused {result['refused']} deliveries (bad signature). A round trip is "
        "from just before alice's send until the reply's event reaches a client following "
        "alice's events on a socket. Long polling at or above the plain path is noise: both "
        "rows wait for the same messages (the plain row reads the node's counter every 25 ms). "
        "Measured on a 2-core machine shared with other jobs (the load averages above): "
        "compare the rows of one run, not runs.",
        end,
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = _common.arg_parser(__doc__)
    parser.add_argument("--messages", type=int, default=500, help="N per throughput row")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of the three rows")
    parser.add_argument("--round-trips", type=int, default=100, help="echo round trips per row")
    args = parser.parse_args(argv)
    result = run(args)
    _common.publish(NAME, section(result, args, argv), args)
    bot50, bot99 = percentiles(result["bot_echo"])
    plain50, _ = percentiles(result["plain_echo"])
    print(
        f"bots: plain {result['plain']:.0f} msg/s, long polling {result['polling']:.0f} "
        f"updates/s, webhook {result['webhook']:.0f} updates/s, echo p50 {bot50:.1f} ms "
        f"p99 {bot99:.1f} ms (plain echo p50 {plain50:.1f} ms)"
    )


if __name__ == "__main__":
    main()
