"""``GET /v1/events`` and cursor paging of ``GET /v1/messages`` on real node processes.

The stream is followed through the SDK (``AsyncRemoteClient`` under trio,
``RemoteClient``) and, for the framing, as raw bytes.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import aclosing
from typing import Any

import httpx
import pytest
import trio

from dchat_node import NodeProcess
from dchat_node.cli._watch import describe
from dchat_node.user._attachments import AttachmentService
from dchat_sdk import ApiError, AsyncRemoteClient, Event, RemoteClient
from dchat_storage import LifecyclePolicy, open_database
from dchat_testing.pytest_plugin import PASSPHRASE

pytestmark = pytest.mark.slow


def _get(node: NodeProcess, path: str, token: str | None = "", **kw: Any) -> httpx.Response:
    token = node.info["token"] if token == "" else token
    headers = dict(kw.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    with httpx.Client(base_url=node.info["url"], timeout=10) as http:
        return http.get(path, headers=headers, **kw)


async def _take(stream: AsyncGenerator[Event, None], n: int) -> list[Event]:
    """The next ``n`` message events of ``stream``; then it is closed (the connection hung up).

    Other kinds (the node's relay ``status``) are passed over.
    """
    taken: list[Event] = []
    with trio.fail_after(30):
        async with aclosing(stream) as events:
            async for event in events:
                if event.kind != "message":
                    continue
                taken.append(event)
                if len(taken) == n:
                    break
    return taken


# Hanging up mid-stream abandons httpx's own nested async generators (text, bytes,
# raw, the transport's): trio reports each as a ResourceWarning when collected.
# They hold nothing once the response is closed; the SDK's generator is closed.
@pytest.mark.filterwarnings(r"ignore:Async generator 'http(x|core)\.:ResourceWarning")
async def test_the_stream_resumes_from_a_cursor_with_nothing_missed_or_repeated(
    make_user: Callable[[str], NodeProcess],
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    with alice.client() as a, bob.client() as b:
        a.create_identity("alice")
        b.create_identity("bob")
        a.add_contact("bob", b.card())
        b.add_contact("alice", a.card())
        async with AsyncRemoteClient(bob.info["url"], bob.info["token"]) as api:
            for n in range(3):
                a.send("bob", f"m{n}")
            first = await _take(api.events(after=0), 2)  # read two, then hang up
            for n in range(3, 6):
                a.send("bob", f"m{n}")
            rest = await _take(api.events(after=first[-1].cursor), 4)
    seen = first + rest
    texts = [e.message.text for e in seen if e.message is not None]
    assert [e.kind for e in seen] == ["message"] * 6
    assert texts == [f"m{n}" for n in range(6)]
    assert [e.cursor for e in seen] == sorted({e.cursor for e in seen})
    assert all(e.message is not None and e.message.peer_name == "alice" for e in seen)


def _frames(response: httpx.Response) -> Iterator[str]:
    """The frames (and comments) of an SSE answer, as they complete."""
    text = ""
    for chunk in response.iter_text():
        text += chunk
        while "\n\n" in text:
            frame, text = text.split("\n\n", 1)
            yield frame


def test_a_stream_without_a_cursor_starts_at_the_end_and_wakes_at_once(
    carol: NodeProcess,
) -> None:
    headers = {"Authorization": f"Bearer {carol.info['token']}"}
    with carol.client() as api:
        api.send("dave", "old")
        _, head = api.event_page(after=0)
        with (
            httpx.Client(base_url=carol.info["url"], timeout=10) as http,
            http.stream("GET", "/v1/events", headers=headers) as response,
        ):
            frames = _frames(response)
            assert next(frames) == f"retry: 2000\nid: {head}"  # starts at the end
            started = time.monotonic()
            api.send("dave", "new")
            frame = next(frames)
            waited = time.monotonic() - started
    assert frame.startswith(f"id: {head + 1}\nevent: message\ndata: ")
    assert json.loads(frame.split("data: ", 1)[1])["text"] == "new"
    assert waited < 5  # woken by the send, not by the 15 s keep-alive re-read


def test_sse_framing(carol: NodeProcess) -> None:
    with carol.client() as api:
        api.send("dave", "framed")
        _, head = api.event_page(after=0, limit=1000)
    headers = {"Authorization": f"Bearer {carol.info['token']}", "Last-Event-ID": "0"}
    with (
        httpx.Client(base_url=carol.info["url"], timeout=10) as http,
        http.stream("GET", "/v1/events", headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        frames = _frames(response)
        opening = next(frames)
        frame = next(f for f in frames if "\nevent: message\n" in f)  # past relay status
    assert opening == "retry: 2000\nid: 0"
    lines = frame.split("\n")
    assert lines[0] == f"id: {head}"
    assert lines[1] == "event: message"
    assert lines[2].startswith("data: ")
    data = json.loads(lines[2].removeprefix("data: "))
    assert set(data) == {
        "message_id",
        "direction",
        "peer_id",
        "peer_name",
        "text",
        "sent_at",
        "stored_at",
    }
    assert data["text"] == "framed"


def test_json_pages_follow_the_log(carol: NodeProcess) -> None:
    with carol.client() as api:
        events, head = api.event_page()
        assert events == []
        for n in range(5):
            api.send("dave", f"p{n}")
        seen: list[Event] = []
        cursor = head
        while True:
            page, cursor = api.event_page(after=cursor, limit=2)
            if not page:
                break
            seen += page
        assert [e.message.text for e in seen if e.message] == [f"p{n}" for n in range(5)]
        reply = _get(
            carol, "/v1/events", params={"after": 0}, headers={"Accept": "application/json"}
        )
        kinds = [e["kind"] for e in reply.json()["events"]]
        assert [k for k in kinds if k != "status"] == ["message"] * 5
        assert reply.json()["next"] == cursor


def test_message_paging_by_cursor_keeps_the_default(carol: NodeProcess) -> None:
    with carol.client() as api:
        for n in range(7):
            api.send("dave", f"t{n}")
        assert [m.text for m in api.messages(limit=3)] == ["t4", "t5", "t6"]
        page = api.message_page(limit=3)
        pages = [[m.text for m in page.messages]]
        while page.before is not None:
            page = api.message_page(limit=3, before=page.before)
            pages.insert(0, [m.text for m in page.messages])
        assert [text for page_texts in pages for text in page_texts] == [f"t{n}" for n in range(7)]
        first = api.message_page(limit=2, after=0)
        assert [m.text for m in first.messages] == ["t0", "t1"]
        newer = api.message_page(limit=10, after=first.after)
        assert [m.text for m in newer.messages] == [f"t{n}" for n in range(2, 7)]
        assert api.message_page(after=newer.after).messages == []


@pytest.mark.parametrize(
    "query",
    [
        {"after": "-1"},
        {"after": "abc"},
        {"after": str(1 << 63)},
        {"limit": "0"},
        {"limit": "5000"},
        {"format": "xml"},
    ],
)
def test_malformed_cursors_and_limits_get_422(
    module_carol: NodeProcess, query: dict[str, str]
) -> None:
    for path in ("/v1/events", "/v1/messages"):
        if path == "/v1/messages" and "format" in query:
            continue
        reply = _get(module_carol, path, params={"format": "json", **query})
        assert reply.status_code == 422, (path, query)
        assert reply.json()["error"]["code"] == "invalid_request"
    bad_id = _get(module_carol, "/v1/events", headers={"Last-Event-ID": "12x"})
    assert bad_id.status_code == 422
    assert "Last-Event-ID" in bad_id.json()["error"]["message"]


def test_events_need_the_token(module_carol: NodeProcess) -> None:
    for token in (None, "wrong"):
        for params in ({}, {"format": "json"}):
            reply = _get(module_carol, "/v1/events", token=token, params=params)
            assert reply.status_code == 401
            assert reply.json()["error"]["code"] == "unauthorized"
    with (
        RemoteClient(module_carol.info["url"], "wrong") as stranger,
        pytest.raises(ApiError) as refused,
    ):
        next(stranger.events())
    assert refused.value.code == "unauthorized"


def test_a_cursor_behind_retention_is_expired(carol: NodeProcess) -> None:
    with carol.client() as api:
        api.send("dave", "soon pruned")
        # Retention runs in the node's sweep; run one with a short TTL on its database.
        with open_database(carol.data_dir / "node.db", passphrase=PASSPHRASE) as db:
            db.lifecycle.sweep(time.time() + 10, LifecyclePolicy(event_ttl=1.0))
        for params in ({"after": 0, "format": "json"}, {"after": 0}):
            reply = _get(carol, "/v1/events", params=params)
            assert reply.status_code == 410
            assert reply.json()["error"]["code"] == "cursor_expired"
        with pytest.raises(ApiError) as expired:
            next(api.events(after=0))
        assert (expired.value.status, expired.value.code) == (410, "cursor_expired")
        _, head = api.event_page()
        api.send("dave", "after the prune")
        page, _ = api.event_page(after=head)
        assert [e.message.text for e in page if e.message] == ["after the prune"]


def _not_status(events: list[Event]) -> list[Event]:
    """``events`` without the node's relay ``status`` events (they come as links change)."""
    return [e for e in events if e.kind != "status"]


class Watch:
    """``dchat watch`` as a user starts it, in its own process, its lines read by a thread."""

    def __init__(self, node: NodeProcess, *args: str) -> None:
        # A process started from a background job of a non-interactive shell (as CI
        # runs) inherits SIGINT ignored, and Python then never turns Ctrl-C into
        # KeyboardInterrupt; a terminal's `dchat watch` does not. Restore it first.
        start = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)"
        command = [sys.executable, "-c", f"{start}; from dchat_node.cli import main; main()"]
        command += ["--data-dir", str(node.data_dir), "watch", *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))

    def lines(self, n: int, timeout: float = 30.0, *, skip: str | None = None) -> list[str]:
        """The next ``n`` lines it prints, passing over those holding ``skip``.

        The test fails after ``timeout`` seconds without a line.
        """
        taken: list[str] = []
        while len(taken) < n:
            line = self._lines.get(timeout=timeout)
            if skip is None or skip not in line:
                taken.append(line)
        return taken

    def interrupt(self) -> int:
        """Ctrl-C; returns its exit status."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=15)
        finally:
            self.process.kill()
            self._reader.join(timeout=15)
            assert self.process.stdout is not None
            self.process.stdout.close()


def test_requests_are_events_and_dchat_watch_prints_them(
    make_user: Callable[[str], NodeProcess], wait_until: Callable[..., object]
) -> None:
    bob_node, alice_node = make_user("bob"), make_user("alice")
    with bob_node.client() as bob, alice_node.client() as alice:
        bob.create_identity("bob")
        alice_id = alice.create_identity("alice")
        alice.add_contact("bob", bob.card())
        alice.send("bob", "hi bob, from a stranger")
        wait_until(lambda: len(_not_status(bob.event_page(after=0)[0])) == 2)
        bob.accept_request(alice_id, "alice")
        events = _not_status(bob.event_page(after=0)[0])
    assert [(e.kind, e.data.get("state")) for e in events] == [
        ("message", None),
        ("request", "open"),
        ("request", "accepted"),
    ]
    assert events[1].data["identity_id"] == alice_id
    assert events[0].message is not None
    assert events[0].message.peer_name == "alice"  # the name as it is now

    as_json = Watch(bob_node, "--json", "--after", "0")
    printed = [json.loads(line) for line in as_json.lines(3, skip='"kind": "status"')]
    assert as_json.interrupt() == 0
    assert [p["cursor"] for p in printed] == [e.cursor for e in events]
    assert [p["kind"] for p in printed] == ["message", "request", "request"]
    assert printed[0]["data"]["text"] == "hi bob, from a stranger"

    for_people = Watch(bob_node, "--after", str(events[0].cursor - 1))
    first = for_people.lines(2, skip=" relay ")
    assert for_people.interrupt() == 0
    assert first[0].endswith("<- alice: hi bob, from a stranger")
    assert first[1].endswith(f"request from {alice_id}: open")


def test_dchat_watch_describes_relay_status_events() -> None:
    assert describe(Event(7, "status", {"relay": "unreachable"})).endswith("relay unreachable")
    assert describe(Event(8, "status", {"relay": "connected"})).endswith("relay connected")


def test_dchat_watch_describes_anchored_group_events() -> None:
    g = "ab" * 32
    anchored = Event(3, "group_anchored", {"group": g, "first": 0, "last": 63})
    assert describe(anchored).endswith(f"[group {g[:12]}] anchored on the chain: 0..63")
    caught = {"group": g, "evidence": "fork", "accused": "cd" * 32, "why": "two messages"}
    assert "EQUIVOCATION (fork) by cdcdcdcd" in describe(Event(4, "group_equivocation", caught))
    gap = Event(5, "group_gap", {"group": g, "sender": "ef" * 32, "missing": [2, 3]})
    assert describe(gap).endswith("missing messages [2, 3] of efefefefefefefef")


def test_dchat_watch_describes_invite_link_events() -> None:
    g = "ab" * 32
    refused = Event(6, "group_join_refused", {"group": g, "by": "cd" * 32, "why": "link_used"})
    assert describe(refused).endswith(f"[group {g[:12]}] join by link refused: link_used")
    joined = Event(7, "group_link", {"group": g, "by": "ef" * 32, "op": "joined"})
    assert describe(joined).endswith("invite link: joined efefefefefefefef")


def test_dchat_watch_describes_conversation_events() -> None:
    receipt = Event(9, "receipt", {"peer": "p", "by": "bob", "ids": ["m1", "m2"], "read": True})
    assert describe(receipt).endswith("bob read m1, m2")
    delivered = Event(10, "receipt", {"peer": "p", "by": "bob", "ids": ["m1"], "read": False})
    assert describe(delivered).endswith("bob received m1")
    reaction = Event(
        11, "reaction", {"peer": "p", "by": "bob", "ids": ["m1"], "emoji": "👍", "on": True}
    )
    assert describe(reaction).endswith("bob reacted 👍 to m1")
    assert describe(Event(12, "typing", {"by": "bob", "ids": [], "on": True})).endswith("is typing")
    timer = Event(13, "timer", {"peer": "p", "by": "bob", "ids": [], "seconds": 60})
    assert describe(timer).endswith("bob set disappearing messages to 60s")
    off = Event(14, "timer", {"peer": "p", "by": "bob", "ids": [], "seconds": 0})
    assert describe(off).endswith("bob set disappearing messages to off")


def test_dchat_watch_describes_group_events() -> None:
    data = {"peer": "group:ab", "by": "dcid1bob", "ids": [], "group": "ab" * 32}
    posted = Event(10, "group_message", {**data, "message_id": "m", "text": "hi all", "seq": 1})
    assert describe(posted).endswith(f"[group {'ab' * 6}] dcid1bob: hi all")
    changed = Event(11, "group_update", {**data, "op": "invited", "version": 3})
    assert describe(changed).endswith("dcid1bob: invited (v3)")


async def test_an_expiry_wakes_the_event_followers() -> None:
    """Expiry logs ``expired`` events from a background task: followers are woken at once."""
    woken: list[float] = []

    class Keeper:
        expired_total = expiry_failures = 0

        def expire(self, now: float) -> list[tuple[str, bytes]]:
            self.expired_total += 1 if now >= 0 else 0  # one text gone each second
            return []

    class User:
        def now(self) -> float:
            return trio.current_time()

        async def run(self, step: Callable[..., object], *args: object) -> object:
            return step(*args)

        def events_logged(self) -> None:
            woken.append(trio.current_time())

    service = AttachmentService.__new__(AttachmentService)
    service._user, service.keeper = User(), Keeper()  # type: ignore[assignment]
    with trio.move_on_after(1.5):
        await service.run_expiry()
    assert len(woken) == 2
