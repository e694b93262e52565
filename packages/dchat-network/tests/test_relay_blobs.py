"""The relay's blob requests: codec, the server's answers, and resumable transfers over a link."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from dchat_core import MailboxId, NodeId, RelayAddress
from dchat_crypto import SigningKey
from dchat_network import (
    Link,
    LinkClosedError,
    RelayBusyError,
    RelayError,
    RelayLimits,
    RelayProtocolError,
    RelayServer,
    relay_session,
    serve_links,
)
from dchat_network.lowlevel import (
    MAX_BLOB_PIECE,
    BlobAt,
    BlobData,
    BlobDelete,
    BlobGet,
    BlobGone,
    BlobOpen,
    BlobPut,
    RelayBusy,
    RelayGuard,
    decode_relay_message,
    download_blob,
    drop_blobs,
    encode_relay_message,
    upload_blob,
)
from dchat_storage import NotFoundError
from dchat_storage.lowlevel import BlobLimits, RelayBlobStore, blob_hasher
from dchat_testing import MemoryMailboxStore

if TYPE_CHECKING:
    from pathlib import Path

SERVER = SigningKey.generate()
ALICE, BOB = b"a" * 32, b"b" * 32
WAIT = 20


def blob_id(data: bytes) -> bytes:
    hasher = blob_hasher()
    hasher.update(data)
    digest: bytes = hasher.digest()
    return digest


def server_with(store: RelayBlobStore | None) -> RelayServer:
    return RelayServer(MemoryMailboxStore(), lambda env: env[:32], blobs=store)


def ask(server: RelayServer, owner: bytes, message: object) -> object:
    return server.handle(owner, encode_relay_message(message), 0.0).message  # type: ignore[arg-type]


IDS = st.binary(min_size=32, max_size=32)
MESSAGES = st.one_of(
    st.builds(BlobOpen, st.integers(0, 2**63 - 1), IDS, st.integers(1, 2**40)),
    st.builds(
        BlobPut,
        st.integers(0, 9),
        IDS,
        st.integers(0, 2**40),
        st.binary(min_size=1, max_size=100),
    ),
    st.builds(BlobAt, st.integers(0, 9), IDS, st.just(5), st.just(10)),
    st.builds(BlobGet, st.integers(0, 9), IDS, st.integers(0, 2**40), st.integers(1, 2**19)),
    st.builds(BlobData, st.integers(0, 9), st.just(3), st.just(10), st.binary(max_size=7)),
    st.builds(BlobDelete, st.integers(0, 9), IDS),
    st.builds(BlobGone, st.integers(0, 9), st.integers(0, 1)),
)


@given(MESSAGES)
def test_blob_messages_round_trip(message: object) -> None:
    assert decode_relay_message(encode_relay_message(message)) == message  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "body",
    [
        {"t": "blob_open", "rid": 1, "id": b"x" * 31, "size": 5},
        {"t": "blob_open", "rid": 1, "id": b"x" * 32, "size": 0},
        {"t": "blob_put", "rid": 1, "id": b"x" * 32, "off": 0, "data": b""},
        {"t": "blob_put", "rid": 1, "id": b"x" * 32, "off": 0, "data": b"x" * (MAX_BLOB_PIECE + 1)},
        {"t": "blob_get", "rid": 1, "id": b"x" * 32, "off": 0, "max": 0},
        {"t": "blob_at", "rid": 1, "id": b"x" * 32, "held": 11, "size": 10},
        {"t": "blob_data", "rid": 1, "off": 8, "size": 10, "data": b"abc"},
        {"t": "blob_get", "rid": 1, "id": b"x" * 32, "off": 0, "max": 5, "extra": 1},
        {"t": "blob_del", "rid": 1, "id": b"x" * 33},
        {"t": "blob_gone", "rid": 1, "n": 2},
    ],
)
def test_malformed_blob_messages_are_protocol_errors(body: dict[str, object]) -> None:
    from dchat_core import canonical_encode

    with pytest.raises(RelayProtocolError):
        decode_relay_message(canonical_encode(body))


def test_the_server_stores_and_serves_a_blob(tmp_path: Path) -> None:
    server = server_with(RelayBlobStore(tmp_path))
    data = os.urandom(1000)
    ident = blob_id(data)
    assert ask(server, ALICE, BlobOpen(1, ident, 1000)) == BlobAt(1, ident, 0, 1000)
    assert ask(server, ALICE, BlobPut(2, ident, 0, data[:600])) == BlobAt(2, ident, 600, 1000)
    assert ask(server, ALICE, BlobOpen(3, ident, 1000)) == BlobAt(3, ident, 600, 1000)
    assert ask(server, ALICE, BlobPut(4, ident, 600, data[600:])) == BlobAt(4, ident, 1000, 1000)
    assert ask(server, BOB, BlobGet(5, ident, 100, 50)) == BlobData(5, 100, 1000, data[100:150])


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (BlobPut(2, b"i" * 32, 0, b"x"), "no_blob"),  # never opened
        (BlobGet(2, b"i" * 32, 0, 10), "no_blob"),
        (BlobOpen(2, b"j" * 32, 2000), "blob_size"),
        (BlobOpen(2, b"k" * 32, 1500), "blob_quota"),
    ],
)
def test_refusals_have_their_codes(tmp_path: Path, message: object, code: str) -> None:
    limits = BlobLimits(max_size=1999, mailbox_quota=1500 + 100, disk_budget=10_000)
    server = server_with(RelayBlobStore(tmp_path, limits))
    assert isinstance(ask(server, ALICE, BlobOpen(1, b"q" * 32, 200)), BlobAt)
    answer = ask(server, ALICE, message)
    assert isinstance(answer, RelayError)
    assert answer.code == code


def test_only_the_uploaders_link_deletes_a_blob(tmp_path: Path) -> None:
    store = RelayBlobStore(tmp_path)
    server = server_with(store)
    ident = blob_id(b"gone soon")
    ask(server, ALICE, BlobOpen(1, ident, 9))
    ask(server, ALICE, BlobPut(2, ident, 0, b"gone soon"))
    assert ask(server, BOB, BlobDelete(3, ident)) == BlobGone(3, 0)
    assert store.state(ident) is not None
    assert ask(server, ALICE, BlobDelete(4, ident)) == BlobGone(4, 1)
    assert store.state(ident) is None
    assert ask(server, ALICE, BlobDelete(5, ident)) == BlobGone(5, 0)


def test_forged_bytes_another_uploader_and_a_wrong_offset_are_refused(tmp_path: Path) -> None:
    server = server_with(RelayBlobStore(tmp_path))
    ident = blob_id(b"real")
    ask(server, ALICE, BlobOpen(1, ident, 4))
    wrong = ask(server, ALICE, BlobPut(2, ident, 1, b"x"))
    assert isinstance(wrong, RelayError)
    assert wrong.code == "bad_offset"
    other = ask(server, BOB, BlobPut(3, ident, 0, b"real"))
    assert isinstance(other, RelayError)
    assert other.code == "no_blob"
    forged = ask(server, ALICE, BlobPut(4, ident, 0, b"fake"))
    assert isinstance(forged, RelayError)
    assert forged.code == "bad_blob"


def test_a_full_relay_is_busy_and_a_relay_without_a_store_unsupported(tmp_path: Path) -> None:
    server = server_with(RelayBlobStore(tmp_path, BlobLimits(disk_budget=10)))
    busy = ask(server, ALICE, BlobOpen(1, b"i" * 32, 11))
    assert isinstance(busy, RelayBusy)
    assert busy.reason == "disk"
    none = ask(server_with(None), ALICE, BlobOpen(1, b"i" * 32, 11))
    assert isinstance(none, RelayError)
    assert none.code == "unsupported"


@asynccontextmanager
async def relay(
    store: RelayBlobStore, limits: RelayLimits | None = None
) -> AsyncIterator[tuple[str, int]]:
    server = server_with(store)
    guard = RelayGuard(limits) if limits else None

    async def handle(link: Link) -> None:
        owner = bytes(MailboxId.derive(link.peer_key.to_bytes()))
        budget = guard.budget(link.source, trio.current_time()) if guard else None
        while True:
            try:
                data = await link.receive()
            except LinkClosedError:
                return
            reply = server.handle(owner, data, trio.current_time(), budget)
            await link.send(reply.data)
            if reply.close:
                await link.aclose()
                return

    async with trio.open_nursery() as nursery:
        address = await nursery.start(
            lambda task_status: serve_links(
                handle, "127.0.0.1", 0, node_key=SERVER, task_status=task_status
            )
        )
        yield address
        nursery.cancel_scope.cancel()


class Interrupted(Exception):
    pass


async def test_an_upload_cut_off_resumes_and_a_download_resumes_from_its_offset(
    tmp_path: Path,
) -> None:
    data = os.urandom(3 * MAX_BLOB_PIECE + 1234)
    ident, size = blob_id(data), len(data)
    key = SigningKey.generate()  # the uploader's mailbox key: its link pays for the blob

    def source(stop_after: int | None) -> object:
        async def pieces(offset: int) -> AsyncIterator[bytes]:
            for start in range(offset, size, 100_000):
                if stop_after is not None and start >= stop_after:
                    raise Interrupted
                yield data[start : start + 100_000]

        return pieces

    with trio.fail_after(WAIT):
        async with relay(RelayBlobStore(tmp_path)) as (host, port):
            async with relay_session(host, port, node_key=key) as session:
                with pytest.raises(Interrupted):
                    await upload_blob(session, ident, size, source(2 * MAX_BLOB_PIECE))  # type: ignore[arg-type]
            async with relay_session(host, port, node_key=key) as session:
                sent = await upload_blob(session, ident, size, source(None))  # type: ignore[arg-type]
            assert sent == size - 2 * MAX_BLOB_PIECE  # only the rest went again
            got = bytearray()

            async def sink(piece: bytes) -> None:
                got.extend(piece)
                if len(got) >= MAX_BLOB_PIECE and len(got) < size:
                    raise Interrupted

            async with relay_session(host, port) as reader:
                with pytest.raises(Interrupted):
                    await download_blob(reader, ident, 0, sink)

                async def rest(piece: bytes) -> None:
                    got.extend(piece)

                total = await download_blob(reader, ident, len(got), rest, expected_size=size)
                assert total == size
            async with relay_session(host, port, node_key=key) as session:
                assert await session.blob_delete(ident)
            assert bytes(got) == data


async def test_a_full_relay_says_busy_to_the_uploader(tmp_path: Path) -> None:
    store = RelayBlobStore(tmp_path, BlobLimits(disk_budget=10))
    with trio.fail_after(WAIT):
        async with relay(store) as (host, port), relay_session(host, port) as session:
            with pytest.raises(RelayBusyError):
                await session.blob_open(b"i" * 32, 11)


async def test_an_upload_over_the_links_byte_rate_waits_and_completes(tmp_path: Path) -> None:
    # 1 MiB/s with the minimum burst: 2.5 MiB cannot go at once; the uploader waits it out.
    limits = RelayLimits(link_bytes=1024 * 1024, burst=1.0, source_bytes=0)
    data = os.urandom(5 * MAX_BLOB_PIECE)
    ident = blob_id(data)

    async def pieces(offset: int) -> AsyncIterator[bytes]:
        yield data[offset:]

    store = RelayBlobStore(tmp_path)
    with trio.fail_after(WAIT):
        async with relay(store, limits) as (host, port), relay_session(host, port) as session:
            start = trio.current_time()
            assert await upload_blob(session, ident, len(data), pieces) == len(data)
            assert trio.current_time() - start > 0.5  # it did wait for the buckets
    assert store.read(ident, 0, 10)[0] == data[:10]


async def test_drop_blobs_deletes_ours_and_skips_relays_that_fail(tmp_path: Path) -> None:
    data = os.urandom(1000)
    ident, key = blob_id(data), SigningKey.generate()

    async def pieces(offset: int) -> AsyncIterator[bytes]:
        yield data[offset:]

    store = RelayBlobStore(tmp_path)
    with trio.fail_after(WAIT):
        async with relay(store) as (host, port):
            async with relay_session(host, port, node_key=key) as session:
                await upload_blob(session, ident, len(data), pieces)
            pinned = str(RelayAddress(host, port, NodeId.derive(SERVER.public_key.to_bytes())))
            with socket.socket() as closed:
                closed.bind(("127.0.0.1", 0))
                down = f"127.0.0.1:{closed.getsockname()[1]}"
            stranger = SigningKey.generate()  # not the uploader: the relay keeps the blob
            assert await drop_blobs([(pinned, ident)], stranger) == 0
            assert store.read(ident, 0, 10)[0] == data[:10]
            blobs = [(down, ident), ("not an address", ident), (pinned, ident)]
            assert await drop_blobs(blobs, key) == 1
            assert await drop_blobs([(pinned, ident)], key) == 0  # already gone
    with pytest.raises(NotFoundError):
        store.read(ident, 0, 10)
