"""The event stream: SSE decoding, resuming by cursor, the sync and async clients.

A scripted node (``httpx.MockTransport``) serves a fixed event log and hangs
up mid-stream, so reconnection is exercised without processes.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_sdk import (
    ApiError,
    AsyncRemoteClient,
    DchatSdkError,
    Event,
    NodeUnreachableError,
    RemoteClient,
)
from dchat_sdk._events import Backoff, EventReader
from dchat_sdk._sse import SseDecoder, SseFormatError, SseFrame

BASE = "http://127.0.0.1:8470"
MESSAGE = {
    "message_id": "dcmsg1abc",
    "direction": "in",
    "peer_id": "dcid1xyz",
    "peer_name": "bob",
    "text": "hi",
    "sent_at": 1.5,
    "stored_at": 2.0,
}
LOG = [(c, "message" if c % 3 else "request", {**MESSAGE, "text": f"m{c}"}) for c in range(1, 8)]


def _frame(cursor: int, kind: str, data: dict[str, Any]) -> str:
    return f"id: {cursor}\nevent: {kind}\ndata: {json.dumps(data)}\n\n"


class LogNode:
    """Serves ``LOG`` after the requested cursor, hanging up after ``per_connection`` events."""

    def __init__(self, per_connection: int = 2, *, replay: bool = False) -> None:
        self.per_connection = per_connection
        self.replay = replay  # a misbehaving node: sends again the event at the cursor
        self.afters: list[int | None] = []

    def body(self, request: httpx.Request) -> tuple[int, list[bytes]]:
        after = request.url.params.get("after")
        self.afters.append(None if after is None else int(after))
        start = 0 if after is None else max(0, int(after) - self.replay)
        chunks = [f"retry: 0\nid: {start}\n\n".encode()]
        rest = [e for e in LOG if e[0] > start][: self.per_connection]
        for cursor, kind, data in rest:
            text = _frame(cursor, kind, data).encode()
            chunks += [text[:7], text[7:]]  # a frame torn across chunks
        return len(rest), chunks

    def sync(self, request: httpx.Request) -> httpx.Response:
        sent, chunks = self.body(request)

        def stream() -> Iterator[bytes]:
            yield from chunks
            if sent:
                raise httpx.ReadError("connection dropped")
            raise httpx.ReadTimeout("nothing more to say")

        return httpx.Response(200, content=stream(), headers={"content-type": "text/event-stream"})

    async def asynchronous(self, request: httpx.Request) -> httpx.Response:
        _sent, chunks = self.body(request)

        async def stream() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk
            raise httpx.ReadError("connection dropped")

        return httpx.Response(200, content=stream(), headers={"content-type": "text/event-stream"})


def _texts(events: list[Event]) -> list[str]:
    return [e.data["text"] for e in events]


# -- SSE decoding ------------------------------------------------------------------------


def test_the_decoder_follows_the_event_stream_rules() -> None:
    decoder = SseDecoder()
    text = (
        ": a comment\r\nretry: 1500\nid: 7\n\n"  # no data: only the id takes effect
        "event: message\ndata: one\ndata:two\r\n\r"
        "\ndata: bare\nid: 9\x00\nunknown: x\n\n"
    )
    assert decoder.feed(text) == [
        SseFrame("message", "one\ntwo", "7"),
        SseFrame("message", "bare", "7"),
    ]
    assert decoder.retry_ms == 1500
    assert decoder.last_event_id == "7"  # an id holding NUL is ignored


frames_strategy = st.lists(
    st.tuples(
        st.integers(0, 10**12),
        st.from_regex(r"[a-z_]{1,10}", fullmatch=True),
        st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",))),
    ),
    max_size=6,
)


@given(frames=frames_strategy, cuts=st.lists(st.integers(0, 400), max_size=8))
def test_frames_survive_any_chunking(frames: list[tuple[int, str, str]], cuts: list[int]) -> None:
    text = "".join(f"id: {c}\r\nevent: {k}\r\ndata: {d}\r\n\r\n" for c, k, d in frames)
    decoder, decoded = SseDecoder(), []
    start = 0
    for cut in [*sorted({min(c, len(text)) for c in cuts}), len(text)]:
        decoded += decoder.feed(text[start:cut])
        start = cut
    assert decoded == [SseFrame(k, d, str(c)) for c, k, d in frames]


@given(st.text(max_size=300))
def test_any_text_decodes_or_fails_typed(text: str) -> None:
    decoder = SseDecoder(max_frame=64)
    try:
        frames = decoder.feed(text)
    except SseFormatError:
        return
    assert all(isinstance(f, SseFrame) for f in frames)


def test_a_frame_over_the_limit_is_refused() -> None:
    with pytest.raises(SseFormatError):
        SseDecoder(max_frame=100).feed("data: " + "x" * 200)
    with pytest.raises(SseFormatError):
        SseDecoder(max_frame=100).feed("data: x\n" * 60)


# -- the reader --------------------------------------------------------------------------


def test_the_reader_never_repeats_and_learns_where_a_stream_began() -> None:
    reader = EventReader()
    assert reader.request()[0] == {}
    assert reader.feed("retry: 0\nid: 4\n\n") == []
    assert reader.cursor == 4
    events = reader.feed(_frame(5, "message", MESSAGE) + _frame(5, "message", MESSAGE))
    assert [e.cursor for e in events] == [5]
    assert events[0].message is not None
    assert events[0].message.text == "hi"
    reader.connected()
    assert reader.request()[0] == {"after": 5}
    assert reader.feed(_frame(3, "message", MESSAGE)) == []


@pytest.mark.parametrize(
    "stream",
    [
        "id: x1\nevent: message\ndata: {}\n\n",
        "id: 1\nevent: message\ndata: not json\n\n",
        "id: 1\nevent: message\ndata: [1]\n\n",
        "event: message\ndata: {}\n\n",  # no id at all
        "event: error\ndata: nonsense\n\n",
    ],
)
def test_a_broken_stream_is_a_typed_error(stream: str) -> None:
    with pytest.raises(ValueError, match=r"event|error frame"):
        EventReader().feed(stream)


def test_an_error_frame_is_an_api_error() -> None:
    error = {"error": {"code": "cursor_expired", "message": "too old"}}
    with pytest.raises(ApiError) as caught:
        EventReader(3).feed(f"event: error\ndata: {json.dumps(error)}\n\n")
    assert (caught.value.status, caught.value.code) == (410, "cursor_expired")


def test_backoff_doubles_to_a_cap_and_resets() -> None:
    backoff = Backoff(first=0.5, cap=3.0)
    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next_delay(hint=2.0) == 2.0


# -- the clients -------------------------------------------------------------------------


def test_sync_events_resume_after_drops_without_missing_or_repeating() -> None:
    node = LogNode(per_connection=2)
    with RemoteClient(BASE, "t", transport=httpx.MockTransport(node.sync)) as client:
        stream = client.events(after=0)
        events = [next(stream) for _ in range(len(LOG))]
        stream.close()
    assert [e.cursor for e in events] == [c for c, _, _ in LOG]
    assert [e.kind for e in events] == [k for _, k, _ in LOG]
    assert _texts(events) == [f"m{c}" for c, _, _ in LOG]
    assert node.afters[:4] == [0, 2, 4, 6]


def test_a_node_that_replays_cannot_make_the_client_repeat() -> None:
    node = LogNode(per_connection=3, replay=True)
    with RemoteClient(BASE, "t", transport=httpx.MockTransport(node.sync)) as client:
        stream = client.events()
        events = [next(stream) for _ in range(5)]
        stream.close()
    assert [e.cursor for e in events] == [1, 2, 3, 4, 5]


def test_refusals_are_raised_not_retried() -> None:
    for status, code in ((401, "unauthorized"), (410, "cursor_expired"), (422, "invalid_request")):
        body = {"error": {"code": code, "message": "no"}}
        transport = httpx.MockTransport(lambda _, s=status, b=body: httpx.Response(s, json=b))
        with RemoteClient(BASE, "t", transport=transport) as client:
            with pytest.raises(ApiError) as refused:
                next(client.events(after=1))
            assert (refused.value.status, refused.value.code) == (status, code)


def test_giving_up_after_the_retries() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        RemoteClient(f"http://127.0.0.1:{port}", "t", timeout=2) as client,
        pytest.raises(NodeUnreachableError),
    ):
        next(client.events(retries=1))


def test_event_and_message_pages() -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/events":
            assert request.url.params["format"] == "json"
            events = [{"cursor": 3, "kind": "message", "data": MESSAGE}]
            return httpx.Response(200, json={"events": events, "next": 3})
        if "peer" in request.url.params:  # a conversation: the node counts its gaps
            return httpx.Response(200, json={"messages": [], "after": 0, "missing": 2})
        assert request.url.params["before"] == "9"
        return httpx.Response(200, json={"messages": [MESSAGE], "before": None, "after": 8})

    with RemoteClient(BASE, "t", transport=httpx.MockTransport(reply)) as client:
        events, cursor = client.event_page(after=2)
        assert (cursor, events[0].cursor, events[0].kind) == (3, 3, "message")
        page = client.message_page(before=9)
        assert (len(page.messages), page.before, page.after) == (1, None, 8)
        assert page.missing is None
        assert client.message_page("bob").missing == 2


# Hanging up mid-stream abandons httpx's nested async generators (text, bytes): trio
# reports each as a ResourceWarning when collected; they hold nothing after the close.
@pytest.mark.filterwarnings(r"ignore:Async generator 'http(x|core)\.:ResourceWarning")
async def test_async_events_resume_after_drops() -> None:
    node = LogNode(per_connection=3)
    transport = httpx.MockTransport(node.asynchronous)
    events: list[Event] = []
    async with (
        AsyncRemoteClient(BASE, "t", transport=transport) as client,
        aclosing(client.events(after=1)) as stream,
    ):
        async for event in stream:
            events.append(event)
            if len(events) == len(LOG) - 1:
                break
    assert [e.cursor for e in events] == [c for c, _, _ in LOG[1:]]
    assert node.afters == [1, 4]


async def test_async_pages() -> None:
    def reply(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/events":
            return httpx.Response(200, json={"events": [], "next": 12})
        assert request.url.params["after"] == "4"
        return httpx.Response(200, json={"messages": [MESSAGE], "before": 5, "after": 5})

    async with AsyncRemoteClient(BASE, "t", transport=httpx.MockTransport(reply)) as client:
        assert await client.event_page() == ([], 12)
        page = await client.message_page(after=4)
    assert (page.messages[0].text, page.before, page.after) == ("hi", 5, 5)


# -- stealth_received (docs/protocol.md §43) --------------------------------------------------


def test_a_stealth_event_reads_as_a_payment_and_other_kinds_as_none() -> None:
    data = {"account": "ab" * 32, "amount": 40, "height": 12}
    found = Event(3, "stealth_received", data).stealth
    assert found is not None
    assert (found.account, found.amount, found.height) == ("ab" * 32, 40, 12)
    assert Event(4, "message", data).stealth is None
    assert found.identity is None  # a node from before burners' stealth payments


def test_a_stealth_event_names_the_identity_or_burner_paid() -> None:
    data = {"account": "ab" * 32, "amount": 40, "height": 12, "identity": "burner-id"}
    found = Event(3, "stealth_received", data).stealth
    assert found is not None
    assert found.identity == "burner-id"
    with pytest.raises(DchatSdkError):
        _ = Event(3, "stealth_received", {**data, "identity": 7}).stealth


@given(
    data=st.dictionaries(
        st.sampled_from(["account", "amount", "height", "identity"]),
        st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=70)),
    )
)
def test_a_malformed_stealth_event_is_a_typed_error(data: dict[str, Any]) -> None:
    try:
        found = Event(1, "stealth_received", data).stealth
    except DchatSdkError:
        return
    assert found is not None
    assert len(found.account) == 64
    assert min(found.amount, found.height) >= 0
