"""Privacy, payment and the other later calls of ``Client``, against an embedded node.

One user node runs inside the test process for the whole module (no extra
process): its home relay and onion relays are closed loopback ports, and it
has no currency chain, so the calls that need the chain answer their typed
refusal. Each test is one group of methods.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from dchat_sdk import ApiError, Client, SyncClient
from dchat_testing.pytest_plugin import PASSPHRASE

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

pytestmark = pytest.mark.slow


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    data_dir = tmp_path_factory.mktemp("embedded")
    onion = [_closed_port(), _closed_port()]
    node = Client.embedded(data_dir, PASSPHRASE, relay=_closed_port(), onion_relays=onion)
    anyio.run(node.open)
    try:
        anyio.run(node.create_identity, "alice")
        yield node
    finally:
        anyio.run(node.aclose)


def _run(program: Callable[[], Awaitable[Any]]) -> None:
    async def timed() -> None:
        with anyio.fail_after(30):
            await program()

    anyio.run(timed)


def test_cover_traffic_on_off_and_a_refused_budget(client: Client) -> None:
    async def program() -> None:
        assert (await client.cover_traffic())["on"] is False
        on = await client.set_cover_traffic(True, 300)
        assert (on["on"], on["budget"], on["source"]) == (True, 300, "set")
        assert (await client.cover_traffic())["budget"] == 300
        with pytest.raises(ApiError) as refused:
            await client.set_cover_traffic(True, 0)
        assert refused.value.status == 422
        off = await client.set_cover_traffic(False)
        assert (off["on"], off["budget"]) == (False, 0)

    _run(program)


def test_onion_mode_and_put_auth(client: Client) -> None:
    async def program() -> None:
        me = str((await client.status())["identity_id"])
        modes = await client.onion_mode()
        assert modes["onion"]["identities"] == {me: False}
        assert len(modes["onion"]["relays"]) == 2
        blocks = modes["onion"]["reply_blocks"]  # protocol §45: none given or held yet
        assert (blocks["held"], blocks["given"], blocks["supply"]) == (0, 0, 3)
        assert (await client.set_onion_mode(True))["onion"]["identities"][me] is True
        assert (await client.onion_mode())["onion"]["identities"][me] is True
        with pytest.raises(ApiError) as refused:
            await client.set_onion_mode(True, identity="dcid1-not-a-burner")
        assert refused.value.code == "not_found"
        assert (await client.set_onion_mode(False))["onion"]["identities"][me] is False
        auth = await client.put_auth()
        assert auth["mode"] in {"token", "proof"}
        assert auth["ring_size"] >= 0

    _run(program)


def test_stealth_calls(client: Client) -> None:
    async def program() -> None:
        meta = await client.stealth_address()
        assert meta.startswith("dchat-stealth:")
        idle = {"scanned_to": 0, "received": 0, "scan_interval": 0, "held_burners": []}
        assert await client.stealth_status() == idle
        with pytest.raises(ApiError) as unknown:
            await client.stealth_pay("nobody", 5)
        assert unknown.value.code == "unknown_contact"
        for refused in (client.stealth_scan(), client.stealth_sweep("00" * 32)):
            with pytest.raises(ApiError) as no_chain:
                await refused
            assert no_chain.value.code == "no_chain"

    _run(program)


def test_payments_and_paid_tokens(client: Client) -> None:
    async def program() -> None:
        assert await client.payments() == {"pending": [], "unsent": []}
        assert await client.tokens() == {"total": 0, "relays": [], "pending": []}
        with pytest.raises(ApiError) as no_chain:
            await client.pay("nobody", 5)
        assert no_chain.value.code == "no_chain"
        with pytest.raises(ApiError) as unavailable:
            await client.buy_tokens(_closed_port(), 2)
        assert unavailable.value.status >= 400

    _run(program)


def test_channels_groups_and_search_calls(client: Client) -> None:
    async def program() -> None:
        assert await client.channels() == []
        assert isinstance(await client.rebuild_search(), int)
        assert (await client.app_login_link()).startswith("http")

    _run(program)


def test_the_sync_facade_has_the_same_typed_calls(client: Client) -> None:
    with SyncClient.connect(*client.api) as sync:
        assert sync.cover_traffic()["source"] in {"config", "set"}
        assert sync.stealth_address() == anyio.run(client.stealth_address)
        assert sync.tokens()["total"] == 0
        assert sync.put_auth()["mode"] in {"token", "proof"}


def test_event_page_types_the_relay_status_event(client: Client) -> None:
    async def program() -> None:
        events, _ = await client.event_page(after=0)
        statuses = [e.relay for e in events if e.kind == "status"]
        assert statuses
        assert statuses[0] == {"relay": "unreachable"}

    _run(program)
