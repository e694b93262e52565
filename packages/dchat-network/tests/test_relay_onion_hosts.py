"""Onion deposits over three real relay hosts on loopback (in-memory stores)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from dchat_core import MailboxId, NodeId, RelayAddress
from dchat_crypto import SigningKey
from dchat_network import RelayHost, RelayLimits, RelayReply, RelayServer, relay_session
from dchat_network.lowlevel import (
    ONION_PACKET_SIZE,
    OnionFetchError,
    OnionKeyRecord,
    OnionKeys,
    OnionPool,
    TokenSettings,
    TokenShop,
    build_onion_put,
    buy_request,
    onion_route,
    reply_route,
    split_reply_route,
)
from dchat_privacy import ReplyBook
from dchat_privacy.lowlevel import MAX_REPLY_DATA, ReplayedPacketError, ReplyGift
from dchat_testing import MemoryMailboxStore, MemoryPrekeyStore

from .test_token_shop import MemoryTokenStore

WAIT = 20
SHOP_KEY = SigningKey.generate()
SHOP_RELAY = bytes(NodeId.derive(SHOP_KEY.public_key.to_bytes()))


def _mailbox_of(envelope: bytes) -> bytes | None:
    return envelope[:32] if len(envelope) >= 32 else None


@asynccontextmanager
async def relays(
    tmp: Path, count: int = 3, last: RelayServer | None = None
) -> AsyncIterator[list[tuple[RelayHost, RelayAddress]]]:
    """``count`` relay hosts on free loopback ports, each logging what it sees.

    ``last``: the server of the last relay (the mailbox relay of the tests), if not a plain one.
    """

    async def run(call: Callable[[], RelayReply]) -> RelayReply:
        return call()

    started: list[tuple[RelayHost, RelayAddress]] = []
    async with trio.open_nursery() as nursery:
        for number in range(count):
            store = MemoryMailboxStore()
            limits = RelayLimits(observe_log=str(tmp / f"relay{number}.jsonl"))
            server = RelayServer(store, _mailbox_of, prekeys=MemoryPrekeyStore())
            if last is not None and number == count - 1:
                server = last
            host = RelayHost(server, run, trio.current_time, limits=limits)
            host.store = store if server is not last else None  # type: ignore[attr-defined]
            key = SigningKey.generate()
            with trio.fail_after(WAIT):
                h, p = await nursery.start(host.serve, "127.0.0.1", 0, key)
            started.append((host, RelayAddress(h, p, NodeId.derive(key.public_key.to_bytes()))))
        yield started
        nursery.cancel_scope.cancel()


def _log(tmp: Path, number: int) -> list[dict[str, object]]:
    lines = (tmp / f"relay{number}.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


async def test_an_onion_deposit_lands_at_the_mailbox_relay_through_two_others(
    tmp_path: Path,
) -> None:
    box = bytes(MailboxId.derive(SigningKey.generate().public_key.to_bytes()))
    envelope, long = box + b"sealed" * 100, box + b"long" * 3000  # one onion, three
    async with relays(tmp_path) as hosts:
        (_, a), (_, b), (last_host, c) = hosts
        pool = OnionPool(onion_relays=[a, b], now=trio.current_time)
        with trio.fail_after(WAIT):
            items = [(box, envelope), (box, long)]
            results = await pool.deposit(onion_route(c.hostport), items)
        assert all(isinstance(result, bytes) for result in results)  # stored: entry ids
        held = [e.envelope for e in last_host.store.fetch(box)]  # type: ignore[attr-defined]
        assert held == [envelope, long]
        await pool.aclose()
    deposits = [e for n in range(3) for e in _log(tmp_path, n) if e["ev"] == "deposit"]
    assert [d["size"] for d in deposits] == [len(envelope), len(long)]  # put together
    onions = [e for n in range(2) for e in _log(tmp_path, n) if e.get("op") == "OnionPut"]
    assert len(onions) == 4 * 2  # 1 + 3 onions, each seen by the first two hops
    deposit = deposits[0]
    assert deposit["mb"] == [box.hex()]
    sender_links = {e["peer"] for e in _log(tmp_path, 2) if e["ev"] == "connect"}
    # The mailbox relay saw links from the other relays only (and one fetching its key).
    assert deposit["peer"] in sender_links
    first_hop_requests = [e for e in _log(tmp_path, 0) if e["ev"] == "request"]
    assert all(e["mb"] == [] for e in first_hop_requests)  # the first hop never sees the mailbox
    assert all(e["size"] < ONION_PACKET_SIZE + 64 for e in first_hop_requests)


async def test_a_loaded_mailbox_relay_takes_a_paid_token_through_an_onion(tmp_path: Path) -> None:
    """Work cannot travel in an onion; a paid token (protocol §40) can, and is spent once."""
    now = trio.current_time()
    shop = TokenShop(
        TokenSettings(enabled=True, price=3, max_per_payment=8),
        SHOP_KEY, SHOP_RELAY, MemoryTokenStore(), now,
    )  # fmt: skip
    shop.load(now)
    limits = RelayLimits(pow_free_relay=1.0, pow_free_mailbox=1.0)
    server = RelayServer(MemoryMailboxStore(), _mailbox_of, limits=limits)
    server.tokens = shop
    offer = shop.offer(now)
    request, pending = buy_request(offer.key, SHOP_RELAY, 1)
    (token,) = pending.finalize(shop.sell(request.to_bytes(), (offer.payee, 3), now))
    box = bytes(MailboxId.derive(SigningKey.generate().public_key.to_bytes()))
    async with relays(tmp_path, last=server) as hosts:
        (_, a), (_, b), (_, c) = hosts
        pool = OnionPool(onion_relays=[a, b], now=trio.current_time)
        wallet = {c.hostport: [token.redemption()]}
        with trio.fail_after(WAIT):
            # A stranger's deposits until the relay asks for work (no token held yet).
            for i in range(8):
                (result,) = await pool.deposit(onion_route(c.hostport), [(box, box + b"%d" % i)])
                if result == "pow":
                    break
            assert result == "pow"
            pool.auth.paid = lambda relay: (wallet.get(relay) or [None]).pop()
            (paid,) = await pool.deposit(onion_route(c.hostport), [(box, box + b"paid")])
            assert isinstance(paid, bytes), paid  # stored
            (again,) = await pool.deposit(onion_route(c.hostport), [(box, box + b"again")])
            assert again == "pow"  # the wallet is empty: work asked again, nothing sent
        await pool.aclose()
    assert shop.counts["redeemed"] == 1
    assert server.authorizer.counts["paid"] == 1


async def test_a_prekey_fetch_goes_through_an_onion_and_no_relay_sees_who_asks(
    tmp_path: Path,
) -> None:
    mailbox_key = SigningKey.generate()
    box = bytes(MailboxId.derive(mailbox_key.public_key.to_bytes()))
    async with relays(tmp_path) as hosts:
        (_, a), (_, b), (_, c) = hosts
        async with relay_session(c.host, c.port, node_key=mailbox_key) as owner:
            with trio.fail_after(WAIT):
                await owner.put_prekeys(box, b"last", [(1, b"one-time-1")], replace=True)
        pool = OnionPool(onion_relays=[a, b], now=trio.current_time)
        with trio.fail_after(WAIT):
            first = await pool.get_prekeys_from([c.hostport], box, onion=True)
            second = await pool.get_prekeys_from([c.hostport], box, onion=True)
        assert (first, second) == (b"one-time-1", b"last")  # taken as a direct fetch takes
        assert pool.onion_results["fetched"] == 2
        other = bytes(32)  # a mailbox with no bundle: a typed failure, never a direct fetch
        with trio.fail_after(WAIT), pytest.raises(OnionFetchError) as none:
            await pool.get_prekeys_from([c.hostport], other, onion=True)
        assert none.value.code == "none"
        await pool.aclose()
    # Only the mailbox relay learns the mailbox, from an onion relay b handed it (loopback
    # addresses are all alike here; the node's adversary test compares real addresses).
    fetches = [(n, e["mb"]) for n in range(3) for e in _log(tmp_path, n) if e["ev"] == "fetch"]
    assert fetches == [(2, [box.hex()])] * 2 + [(2, [bytes(32).hex()])]
    assert all(e["mb"] == [] for n in (0, 1) for e in _log(tmp_path, n) if e["ev"] == "request")
    ops = {e.get("op") for e in _log(tmp_path, 2) if e["ev"] == "request"}
    assert "RelayPrekeyGet" not in ops


async def test_bad_and_replayed_onions_are_answered_and_the_link_goes_on(tmp_path: Path) -> None:
    box = bytes(32)
    async with relays(tmp_path) as hosts:
        (_, a), (_, b), (_, c) = hosts
        async with relay_session(a.host, a.port, expected_peer=a.node) as session:
            with trio.fail_after(WAIT):
                assert await session.onion(bytes(ONION_PACKET_SIZE)) == "bad_onion"
                assert await session.onion(b"\x00" + bytes(range(256)) * 21 + bytes(85)) == (
                    "bad_onion"
                )
                route = []
                for relay in (a, b, c):
                    async with relay_session(relay.host, relay.port) as other:
                        record = await other.onion_key()
                    now = trio.current_time()
                    route.append((relay, OnionKeyRecord.verify(record, node=relay.node, now=now)))
                packet = build_onion_put(route, box, box + b"x")
                assert await session.onion(packet) == "stored"
                assert await session.onion(packet) == "replayed"
                again = build_onion_put(route, box, box + b"y")
                assert await session.onion(again) == "stored"
        status = hosts[0][0].onion_status()
        assert status["peeled"] == 2
        assert status["refused"] == 3  # two bad, one replayed: the relay went on serving
        assert status["forwarded"] == {"stored": 2}


async def test_after_a_relay_restarts_with_a_new_key_the_sender_fetches_it_again(
    tmp_path: Path,
) -> None:
    box = bytes(32)
    async with relays(tmp_path) as hosts:
        (_, a), (_, b), (last_host, c) = hosts
        pool = OnionPool(onion_relays=[a, b], now=trio.current_time)
        route = onion_route(c.hostport)
        with trio.fail_after(WAIT):
            assert isinstance((await pool.deposit(route, [(box, box + b"1")]))[0], bytes)
            node_key = last_host.server.node_key
            assert node_key is not None
            last_host.onion = OnionKeys(node_key, now=trio.current_time())  # as after a restart
            assert await pool.deposit(route, [(box, box + b"2")]) == ["bad_onion"]
            assert isinstance((await pool.deposit(route, [(box, box + b"3")]))[0], bytes)
        await pool.aclose()


def _wrap(mailbox: bytes, reply_id: bytes, body: bytes) -> bytes:
    return mailbox + reply_id + body  # the tests' envelopes start with their mailbox


async def test_an_answer_under_a_reply_block_reaches_the_owner_once(tmp_path: Path) -> None:
    box = bytes(MailboxId.derive(SigningKey.generate().public_key.to_bytes()))
    peer = b"\x07" * 32
    async with relays(tmp_path) as hosts:
        for host, _ in hosts:
            host.wrap_reply = _wrap
        (first_host, a), (_, b), (last_host, c) = hosts
        owner = OnionPool(onion_relays=[a, b], now=trio.current_time)
        answerer = OnionPool(now=trio.current_time)
        with trio.fail_after(WAIT):
            ((gift, keys),) = await owner.reply_gifts(c, box, 1)
            assert gift.first_relay.hostport != c.hostport  # the answerer never learns c
            book = ReplyBook()
            book.add(keys)
            given = [gift, gift]  # a misbehaving answerer tries the block twice

            async def take(who: bytes) -> ReplyGift | None:
                assert who == peer
                return given.pop() if given else None

            answerer.reply_blocks = take
            route = reply_route(peer)
            assert split_reply_route(route) == peer
            answer = b"a receipt, sealed for the owner"
            assert isinstance((await answerer.deposit(route, [(box, answer)]))[0], bytes)
            assert await answerer.deposit(route, [(box, answer + b"!")]) == ["replayed"]
            assert await answerer.deposit(route, [(box, answer)]) == ["no_reply_block"]
        (held,) = [e.envelope for e in last_host.store.fetch(box)]  # type: ignore[attr-defined]
        assert held[:32] == box
        reply_id, body = held[32:48], held[48:]
        assert book.open(reply_id, body, now=trio.current_time()) == answer
        with pytest.raises(ReplayedPacketError):
            book.open(reply_id, body)
        assert answerer.reply_results == {"stored": 1, "replayed": 1, "no_reply_block": 1}
        # Under a block of a key epoch that ended (here: a restarted first relay) it fails.
        with trio.fail_after(WAIT):
            ((old, _),) = await owner.reply_gifts(c, box, 1)
            node_key = first_host.server.node_key
            assert node_key is not None
            first_host.onion = OnionKeys(node_key, now=trio.current_time())
            given.append(old)
            assert await answerer.deposit(route, [(box, answer)]) == ["bad_onion"]
        await owner.aclose()
        await answerer.aclose()
    answerer_peers = {e["peer"] for n in (1, 2) for e in _log(tmp_path, n) if e["ev"] == "deposit"}
    assert len(answerer_peers) == 1  # the mailbox relay got it from the middle relay only


async def test_a_relay_without_reply_filing_refuses_replies(tmp_path: Path) -> None:
    box = bytes(32)
    async with relays(tmp_path) as hosts:
        (_, a), (_, b), (last_host, c) = hosts
        owner = OnionPool(onion_relays=[a, b], now=trio.current_time)
        answerer = OnionPool(now=trio.current_time)
        with trio.fail_after(WAIT):
            ((gift, _),) = await owner.reply_gifts(c, box, 1)

            async def take(_who: bytes) -> ReplyGift | None:
                return gift

            answerer.reply_blocks = take
            assert await answerer.deposit(reply_route(b"p"), [(box, b"x")]) == ["bad_onion"]
            too_long = bytes(MAX_REPLY_DATA + 1)
            assert await answerer.deposit(reply_route(b"p"), [(box, too_long)]) == [
                "too_long_for_reply"
            ]
        assert last_host.store.fetch(box) == []  # type: ignore[attr-defined]
        await owner.aclose()
        await answerer.aclose()
