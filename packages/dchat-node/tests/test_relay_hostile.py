"""A real relay process under hostile input: each bad connection ends with a typed
error in the relay's log, and the relay keeps serving well-behaved clients."""

from __future__ import annotations

import contextlib
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dchat_core import MailboxId
from dchat_crypto import SigningKey
from dchat_identity import ContactCard, Identity
from dchat_messaging import SealedEnvelope
from dchat_network import LinkClosedError, RelayError, open_link
from dchat_network.lowlevel import (
    LinkConnection,
    RelayAck,
    RelayBatch,
    RelayFetch,
    RelayPut,
    RelayStored,
    decode_relay_message,
    encode_relay_message,
)
from dchat_node import NodeProcess, free_port
from dchat_testing import wait_until_async

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """One relay for the whole module: every test also shows it survived the others."""
    node = NodeProcess(
        tmp_path_factory.mktemp("hostile") / "relay",
        "relay",
        passphrase=secrets.token_urlsafe(12),
        listen=f"127.0.0.1:{free_port()}",
    )
    node.start()
    yield node
    node.kill()


def _address(relay: NodeProcess) -> tuple[str, int]:
    host, port = relay.info["link"].rsplit(":", 1)
    return host, int(port)


def _log(relay: NodeProcess) -> str:
    return (Path(relay.data_dir) / "node.log").read_text(errors="replace")


async def _wait_for_log(relay: NodeProcess, needle: str) -> None:
    await wait_until_async(lambda: needle in _log(relay), timeout=10, what=repr(needle))


def _opaque(card: ContactCard) -> SealedEnvelope:
    """A well-formed envelope for ``card``'s mailbox (a relay never sees more)."""
    return SealedEnvelope(card.mailbox, secrets.token_bytes(300))


async def _assert_still_serving(relay: NodeProcess) -> None:
    """A sender deposits, the owner fetches: the relay is healthy."""
    host, port = _address(relay)
    bob = Identity.generate()
    card = ContactCard.issue(bob, name="bob", relay=relay.info["link"])
    envelope = _opaque(card)
    with trio.fail_after(20):
        stream = await trio.open_tcp_stream(host, port)
        sender = await open_link(stream, initiator=True, node_key=SigningKey.generate())
        put = RelayPut(1, bytes(envelope.mailbox), envelope.to_bytes())
        reply = decode_relay_message(await sender.request(encode_relay_message(put)))
        assert isinstance(reply, RelayStored)
        await sender.aclose()
        stream = await trio.open_tcp_stream(host, port)
        owner = await open_link(stream, initiator=True, node_key=bob.mailbox_key)
        fetch = RelayFetch(2, bytes(bob.mailbox_id), 8)
        reply = decode_relay_message(await owner.request(encode_relay_message(fetch)))
        assert isinstance(reply, RelayBatch)
        assert [env for _, env in reply.items] == [envelope.to_bytes()]
        await owner.aclose()


async def _closed_by_peer(stream: trio.SocketStream) -> bool:
    with trio.fail_after(10):
        try:
            while await stream.receive_some(65536):
                pass
        except trio.BrokenResourceError:
            pass
    await stream.aclose()
    return True


async def test_truncated_handshake_then_close(relay: NodeProcess) -> None:
    stream = await trio.open_tcp_stream(*_address(relay))
    conn = LinkConnection(initiator=True, node_key=SigningKey.generate())
    first = conn.data_to_send()
    await stream.send_all(first[: len(first) // 2])
    await stream.aclose()
    await _wait_for_log(relay, "HandshakeFailedError")
    await _assert_still_serving(relay)


async def test_wrong_handshake_message_is_refused(relay: NodeProcess) -> None:
    stream = await trio.open_tcp_stream(*_address(relay))
    conn = LinkConnection(initiator=True, node_key=SigningKey.generate())
    await stream.send_all(conn.data_to_send())
    await stream.receive_some(65536)  # message 2 (assumed whole: it is small)
    forged = bytes(64)  # a message 3 of the right shape that cannot authenticate
    await stream.send_all(len(forged).to_bytes(2, "big") + forged)
    assert await _closed_by_peer(stream)
    await _wait_for_log(relay, "HandshakeFailedError")
    await _assert_still_serving(relay)


class _LyingProof(LinkConnection):
    """Signs a static key other than its own: the binding must not verify."""

    def _proof(self) -> bytes:
        real, self._static_public = self._static_public, bytes(32)
        try:
            return super()._proof()
        finally:
            self._static_public = real


async def test_bad_identity_signature_is_refused(relay: NodeProcess) -> None:
    stream = await trio.open_tcp_stream(*_address(relay))
    conn = _LyingProof(initiator=True, node_key=SigningKey.generate())
    with trio.fail_after(10):
        await stream.send_all(conn.data_to_send())
        while conn.next_event() is None:
            conn.receive_data(bytes(await stream.receive_some(65536)))
            await stream.send_all(conn.data_to_send())
    assert await _closed_by_peer(stream)
    await _wait_for_log(relay, "peer identity proof failed")
    await _assert_still_serving(relay)


async def test_oversized_frame_ends_the_link(relay: NodeProcess) -> None:
    stream = await trio.open_tcp_stream(*_address(relay))
    link = await open_link(
        stream, initiator=True, node_key=SigningKey.generate(), max_message=4 << 20
    )
    with contextlib.suppress(LinkClosedError):  # the relay may hang up mid-write
        await link.send(b"\x00" * (2 << 20))
    with pytest.raises(LinkClosedError):
        await link.receive(timeout=10)
    await link.aclose()
    await _wait_for_log(relay, "FrameTooLargeError")
    await _assert_still_serving(relay)


async def test_malformed_request_gets_typed_error_then_close(relay: NodeProcess) -> None:
    stream = await trio.open_tcp_stream(*_address(relay))
    link = await open_link(stream, initiator=True, node_key=SigningKey.generate())
    reply = decode_relay_message(await link.request(b"\xa1\x61t\x63bad", timeout=10))
    assert isinstance(reply, RelayError)
    assert reply.code == "malformed"
    with pytest.raises(LinkClosedError):
        await link.receive(timeout=10)
    await link.aclose()
    await _assert_still_serving(relay)


async def test_put_for_a_mailbox_the_envelope_does_not_name_is_refused(
    relay: NodeProcess,
) -> None:
    bob = Identity.generate()
    card = ContactCard.issue(bob, name="bob", relay=relay.info["link"])
    envelope = _opaque(card)
    other = MailboxId.derive(SigningKey.generate().public_key.to_bytes())
    stream = await trio.open_tcp_stream(*_address(relay))
    link = await open_link(stream, initiator=True, node_key=SigningKey.generate())
    put = RelayPut(5, bytes(other), envelope.to_bytes())
    reply = decode_relay_message(await link.request(encode_relay_message(put), timeout=10))
    assert getattr(reply, "code", None) == "bad_envelope"
    await link.aclose()
    await _assert_still_serving(relay)


@pytest.mark.parametrize("kind", ["fetch", "ack"])
async def test_someone_elses_mailbox_is_forbidden(relay: NodeProcess, kind: str) -> None:
    bob = Identity.generate()
    card = ContactCard.issue(bob, name="bob", relay=relay.info["link"])
    envelope = _opaque(card)
    host, port = _address(relay)
    sender = await open_link(
        await trio.open_tcp_stream(host, port), initiator=True, node_key=SigningKey.generate()
    )
    put = RelayPut(1, bytes(envelope.mailbox), envelope.to_bytes())
    stored = decode_relay_message(await sender.request(encode_relay_message(put)))
    assert isinstance(stored, RelayStored)
    await sender.aclose()
    thief = await open_link(
        await trio.open_tcp_stream(host, port), initiator=True, node_key=SigningKey.generate()
    )
    request = (
        RelayFetch(2, bytes(bob.mailbox_id), 64)
        if kind == "fetch"
        else RelayAck(2, bytes(bob.mailbox_id), (stored.entry_id,))
    )
    reply = decode_relay_message(await thief.request(encode_relay_message(request), timeout=10))
    assert isinstance(reply, RelayError)
    assert reply.code == "forbidden"
    with pytest.raises(LinkClosedError):
        await thief.receive(timeout=10)
    await thief.aclose()
    await _wait_for_log(relay, "request refused: forbidden")
    # The envelope is still there for its owner.
    owner = await open_link(
        await trio.open_tcp_stream(host, port), initiator=True, node_key=bob.mailbox_key
    )
    fetch = RelayFetch(3, bytes(bob.mailbox_id), 64)
    batch = decode_relay_message(await owner.request(encode_relay_message(fetch)))
    assert isinstance(batch, RelayBatch)
    assert [env for _, env in batch.items] == [envelope.to_bytes()]
    await owner.aclose()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(garbage=st.binary(min_size=1, max_size=4096))
def test_random_bytes_never_take_the_relay_down(relay: NodeProcess, garbage: bytes) -> None:
    with socket.create_connection(_address(relay), timeout=10) as sock:
        sock.sendall(garbage)
        sock.shutdown(socket.SHUT_WR)
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass
    # The listener is alive and completes a real handshake.
    trio.run(_handshake_ok, relay)


async def _handshake_ok(relay: NodeProcess) -> None:
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream(*_address(relay))
        link = await open_link(stream, initiator=True, node_key=SigningKey.generate())
        await link.aclose()
