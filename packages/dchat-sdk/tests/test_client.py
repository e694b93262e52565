"""``Client`` in both modes, from an asyncio program and from a trio program.

Connect mode drives two user node processes; embedded mode runs a user node
inside the test process (dchat-node's runtime on a background thread) and
chats with a node process through a relay.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import TYPE_CHECKING

import anyio
import pytest
import trio

from dchat_sdk import (
    Client,
    ContactInfo,
    DataDirLockedError,
    Event,
    MessageInfo,
    NodeUnreachableError,
    SyncClient,
    WrongPassphraseError,
)
from dchat_testing.pytest_plugin import PASSPHRASE

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from dchat_node import NodeProcess

pytestmark = pytest.mark.slow


async def _next_message(client: Client, after: int | None) -> Event:
    """The first ``message`` event after ``after`` (20 s at most)."""
    with anyio.fail_after(20):
        async with aclosing(client.events(after=after)) as events:
            async for event in events:
                if event.message is not None:
                    return event
    raise AssertionError("the event stream ended")


def _connect(node: NodeProcess) -> Client:
    return Client.connect(node.info["url"], node.info["token"])


def test_asyncio_program_chats_through_two_node_processes(
    user_pair: tuple[NodeProcess, NodeProcess],
) -> None:
    alice_node, bob_node = user_pair

    async def program() -> None:
        async with _connect(alice_node) as alice, _connect(bob_node) as bob:
            start = (await bob.event_page())[1]
            message_id = await alice.send("bob", "hello from asyncio")
            event = await _next_message(bob, start)
            assert isinstance(event.message, MessageInfo)
            assert (event.message.message_id, event.message.text) == (
                message_id,
                "hello from asyncio",
            )
            assert [c.name for c in await bob.contacts()] == ["alice"]
            # Resuming after the event's cursor does not repeat it.
            page, _ = await bob.event_page(after=event.cursor)
            assert message_id not in {e.message.message_id for e in page if e.message}
            assert isinstance(await bob.reply("alice", message_id, "got it"), str)
            # Privacy and payment calls reach the node process too (typed replies).
            assert await alice.stealth_address("bob") == await bob.stealth_address()
            assert (await bob.cover_traffic())["on"] is False
            assert (await alice.tokens())["total"] == 0
            assert (await alice.payments())["unsent"] == []
            async with alice.socket() as sock:  # the API's WebSocket, from Client too
                assert isinstance(await sock.send("bob", "over the socket"), str)

    anyio.run(program, backend="asyncio")


def test_a_closed_client_refuses_calls() -> None:
    async def program() -> None:
        client = Client.connect("http://127.0.0.1:9", "token")
        with pytest.raises(NodeUnreachableError):
            await client.card()

    anyio.run(program, backend="asyncio")


# Leaving a stream early leaves httpx's inner byte iterators to the collector
# (httpx and httpcore nest async generators without closing them); trio reports
# each as a ResourceWarning. They hold nothing once the response is closed.
@pytest.mark.filterwarnings(r"ignore:Async generator 'http(x|core)\.:ResourceWarning")
def test_trio_program_embeds_a_node_and_chats_through_a_relay(
    tmp_path: Path, relay: NodeProcess, make_user: Callable[[str], NodeProcess]
) -> None:
    bob_node = make_user("bob")
    with bob_node.client() as bob:
        bob.create_identity("bob")
        bob_card = bob.card()
    link = relay.info["link"]

    async def program() -> None:
        data_dir = tmp_path / "alice"
        async with Client.embedded(data_dir, PASSPHRASE, relay=link, poll_interval=0.2) as alice:
            assert (data_dir / "api.json").exists()  # as a node process has
            await alice.create_identity("alice")
            assert await alice.add_contact("bob", bob_card) == ContactInfo(
                "bob", bob_card_id(bob_node)
            )
            with bob_node.client() as bob:
                bob.add_contact("alice", await alice.card())
                bob.send("alice", "hello, embedded alice")
            event = await _next_message(alice, 0)
            assert event.message is not None
            assert event.message.text == "hello, embedded alice"
            await alice.send("bob", "hello, bob")
            with trio.fail_after(20), bob_node.client() as bob:
                while "hello, bob" not in [m.text for m in bob.messages("alice")]:  # noqa: ASYNC110
                    await trio.sleep(0.2)
            with pytest.raises(DataDirLockedError):
                SyncClient.embedded(data_dir, PASSPHRASE)
        assert not (data_dir / "api.json").exists()  # a clean stop
        with pytest.raises(WrongPassphraseError):
            async with Client.embedded(data_dir, "not the passphrase"):
                pass

    trio.run(program)


def bob_card_id(node: NodeProcess) -> str:
    with node.client() as client:
        return str(client.status()["identity_id"])
