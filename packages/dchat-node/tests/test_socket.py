"""``/v1/socket``: the user node's API over one WebSocket, on real node processes.

Through the SDK (``RemoteSocket``, ``AsyncRemoteSocket`` under trio) for what
a client does, and as raw wsproto frames for what a hostile one sends.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import aclosing
from typing import Any, ClassVar

import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    RejectConnection,
    Request,
    TextMessage,
)

from dchat_node import NodeProcess
from dchat_sdk import ApiError, AsyncRemoteSocket, Event, RemoteSocket

pytestmark = pytest.mark.slow


def _messages(events: Iterator[Event], n: int) -> list[Event]:
    """The next ``n`` message events (the relay's ``status`` events are passed over)."""
    taken = []
    for event in events:
        if event.kind == "message":
            taken.append(event)
            if len(taken) == n:
                return taken
    raise AssertionError("the stream ended")


def test_sends_and_events_share_a_socket_and_resume_from_a_cursor(
    user_pair: tuple[NodeProcess, NodeProcess],
) -> None:
    alice, bob = user_pair
    with alice.client() as a, bob.client() as b:
        _, start = b.event_page()
        with a.socket() as sender, b.socket() as follower:
            events = follower.events(after=start)
            ids = [sender.send("bob", f"m{i}") for i in range(3)]
            got = _messages(events, 2)
        # The follower hung up after two; a new socket resumes after the second.
        ids.append(a.send("bob", "m3"))
        with b.socket() as again:
            got += _messages(again.events(after=got[-1].cursor), 2)
        assert [e.data["text"] for e in got] == ["m0", "m1", "m2", "m3"]
        assert [e.data["message_id"] for e in got] == ids
        assert [e.data["direction"] for e in got] == ["in"] * 4
        cursors = [e.cursor for e in got]
        assert cursors == sorted(set(cursors))  # nothing repeated, in log order
        # The sender's own log has its sends as events, on the socket it sends on.
        with a.socket() as both:
            own = both.events(after=0)
            assert [e.data["text"] for e in _messages(own, 4)] == ["m0", "m1", "m2", "m3"]
            status = both.call("status")
        assert status["role"] == "user"
        assert "outbox" in status


async def test_many_tasks_send_on_one_async_socket(
    user_pair: tuple[NodeProcess, NodeProcess],
) -> None:
    alice, bob = user_pair
    ids: list[str] = []

    async def send(sock: AsyncRemoteSocket, i: int) -> None:
        ids.append(await sock.send("bob", f"t{i}"))

    with trio.fail_after(60):
        async with (
            AsyncRemoteSocket(alice.info["url"], alice.info["token"]) as sock,
            trio.open_nursery() as nursery,
        ):
            for i in range(20):
                nursery.start_soon(send, sock, i)
        async with (
            AsyncRemoteSocket(bob.info["url"], bob.info["token"]) as follower,
            aclosing(follower.events(after=0)) as events,
        ):
            texts = set()
            async for event in events:
                if event.kind == "message":
                    texts.add(event.data["text"])
                    if len(texts) == 20:
                        break
    assert len(set(ids)) == 20
    assert texts == {f"t{i}" for i in range(20)}


class Raw:
    """A bare WebSocket client: sends any frame, reads answers and the close."""

    opened_sockets: ClassVar[list[socket.socket]] = []

    def __init__(self, node: NodeProcess, token: str | None = None) -> None:
        host, port = node.info["url"].removeprefix("http://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        Raw.opened_sockets.append(self.sock)
        self.ws = WSConnection(ConnectionType.CLIENT)
        token = node.info["token"] if token is None else token
        auth = [(b"authorization", f"Bearer {token}".encode())]
        self.sock.sendall(self.ws.send(Request(host=host, target="/v1/socket", extra_headers=auth)))
        self.opened: bool | None = None
        self.closed: int | None = None
        self.frames: list[dict[str, Any]] = []
        while self.opened is None:
            self._read()

    def _read(self) -> None:
        data = self.sock.recv(65536)
        self.ws.receive_data(data or None)
        for event in self.ws.events():
            if isinstance(event, AcceptConnection):
                self.opened = True
            elif isinstance(event, RejectConnection):
                self.opened = False
            elif isinstance(event, TextMessage):
                self.frames.append(json.loads(event.data))
            elif isinstance(event, CloseConnection):
                self.closed = event.code
        if not data and self.opened is None:
            self.opened = False

    def send(self, frame: str | bytes) -> None:
        message = BytesMessage(frame) if isinstance(frame, bytes) else TextMessage(frame)
        self.sock.sendall(self.ws.send(message))

    def answer(self) -> dict[str, Any]:
        while not self.frames and self.closed is None:
            self._read()
        return self.frames.pop(0)

    def wait_closed(self) -> int:
        while self.closed is None:
            self._read()
        return self.closed


@pytest.fixture(autouse=True)
def _close_raw_sockets() -> Iterator[None]:
    yield
    while Raw.opened_sockets:
        Raw.opened_sockets.pop().close()


HOSTILE = [
    ("not json", None),
    ("[1, 2]", None),
    ('"a string"', None),
    ('{"op": "send", "to": "dave", "text": "x"}', None),
    ('{"id": -1, "op": "status"}', None),
    ('{"id": true, "op": "status"}', None),
    ('{"id": 1.5, "op": "status"}', None),
    ('{"id": 9007199254740992, "op": "status"}', None),
    ('{"id": 7}', 7),
    ('{"id": 7, "op": 3}', 7),
    ('{"id": 7, "op": "drop_tables"}', 7),
    ('{"id": 7, "op": "send", "to": "dave"}', 7),
    ('{"id": 7, "op": "send", "to": "dave", "text": ""}', 7),
    ('{"id": 7, "op": "send", "to": "dave", "text": "x", "bcc": "eve"}', 7),
    ('{"id": 7, "op": "send", "to": ["dave"], "text": "x"}', 7),
    ('{"id": 7, "op": "send", "to": "dave", "text": "' + "x" * 16001 + '"}', 7),
    ('{"id": 7, "op": "follow", "after": -1}', 7),
    ('{"id": 7, "op": "follow", "after": "5"}', 7),
    ('{"id": 7, "op": "follow", "after": 9223372036854775808}', 7),
]


def test_hostile_frames_get_typed_answers_and_the_socket_goes_on(module_carol: NodeProcess) -> None:
    with module_carol.client() as api:
        before = len(api.messages())
    raw = Raw(module_carol)
    assert raw.opened
    for frame, rid in HOSTILE:
        raw.send(frame)
        answer = raw.answer()
        assert answer["id"] == rid, frame
        assert answer["error"]["code"] == "invalid_request", frame
        assert answer["status"] == 422
    raw.send('{"id": 8, "op": "send", "to": "nobody", "text": "x"}')
    assert raw.answer()["error"]["code"] == "unknown_contact"
    raw.send('{"id": 9, "op": "follow", "after": null}')
    assert "after" in raw.answer()["ok"]
    raw.send('{"id": 10, "op": "follow", "after": 0}')
    assert raw.answer()["error"]["code"] == "invalid_request"  # one stream per socket
    raw.send('{"id": 11, "op": "send", "to": "dave", "text": "still here"}')
    frames = [raw.answer(), raw.answer()]  # the answer and the sent message's event
    sent = next(f for f in frames if f.get("id") == 11)
    event = next(f for f in frames if "event" in f)
    assert event["event"]["data"]["message_id"] == sent["ok"]["message_id"]
    with module_carol.client() as api:
        texts = [m.text for m in api.messages()]
    assert len(texts) == before + 1
    assert texts[-1] == "still here"


def test_hostile_frames_answer_in_order_when_pipelined(module_carol: NodeProcess) -> None:
    raw = Raw(module_carol)
    for i in range(50):
        raw.send(json.dumps({"id": i, "op": "status"}) if i % 2 else "{broken")
    answers = [raw.answer() for _ in range(50)]
    assert [a["id"] for a in answers] == [None if i % 2 == 0 else i for i in range(50)]


def test_binary_and_oversized_frames_close_the_socket(module_carol: NodeProcess) -> None:
    raw = Raw(module_carol)
    raw.send(b"\x00\x01")
    assert raw.wait_closed() == 1003
    raw = Raw(module_carol)
    raw.send("x" * (4 * 1024 * 1024 + 1))  # over api_max_body
    assert raw.wait_closed() == 1009
    with module_carol.client() as api:
        assert api.health()["status"] == "ok"


def test_the_socket_needs_the_token(module_carol: NodeProcess) -> None:
    assert Raw(module_carol, token="wrong").opened is False
    with pytest.raises(ApiError):
        RemoteSocket(module_carol.info["url"], "wrong")


def test_another_role_says_wrong_role(module_relay: NodeProcess) -> None:
    raw = Raw(module_relay)
    assert raw.opened
    answer = raw.answer()
    assert answer["error"]["code"] == "wrong_role"
    assert answer["id"] is None
    assert raw.wait_closed() == 1008
