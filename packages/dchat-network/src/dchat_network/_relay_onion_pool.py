"""Onion deposits in trio: a sender's route through three relays, a relay's next hop.

:class:`OnionPool` is a :class:`RelayPool` (pooled links with random keys)
that also deposits through onions (:mod:`._relay_onion`): an outbox entry
whose relay text is an onion route (:func:`onion_route`, ``onion:`` in front
of the mailbox relay's address) is wrapped, one onion per envelope, for a
route of :data:`~dchat_network._relay_onion.ONION_HOPS` relays: two drawn
from :attr:`OnionPool.onion_relays` (distinct hosts where possible), then
the mailbox relay; or, given ``routes`` (a user node with relay discovery:
:meth:`dchat_chain.lowlevel.OnionDirectory.route`), the whole route from the
chain's directory, each hop of another operator and network. A route that
cannot be had is an onion failure (its error's name, e.g.
``NoDiverseRouteError``, kept in :attr:`OnionPool.route_error`), never a
direct put. Each relay's signed onion key record is fetched once per
epoch over a pooled link and verified against the relay's pinned node id, or
the key its link proved. The first hop answers once the last one stored the
envelope (or refused it), so the outbox settles onion deposits like direct
ones; the answer carries no entry id, so the pool reports the envelope's
(:func:`entry_id_of`, the id every relay gives it). An envelope longer than one
onion's body goes in pieces (:func:`split_envelope`), one onion each, each on
a route of its own, one after another; the mailbox relay answers ``partial``
until the last piece, then as for a whole envelope.

An outbox entry whose relay text is ``reply:<peer>`` (:func:`reply_route`)
goes under one of the reply blocks the peer gave (protocol §45), taken
from :attr:`OnionPool.reply_blocks` at send time, to the block's first relay
only; with none left the entry fails ``no_reply_block`` and waits in the
outbox for the next supply (never a direct put). :meth:`OnionPool.reply_gifts`
builds the blocks a user in onion mode gives away.
In onion mode a prekey-bundle fetch goes through an onion too
(:meth:`OnionPool.get_prekeys_from` with ``onion=True``, protocol §46): a
route as for a deposit, the answer back through a single-use reply block
(:mod:`._onion_fetch`) the pool's :attr:`OnionPool.replies` book opens.

A relay forwards through the same pool (:meth:`OnionPool.forward`): one
pooled link per next relay, with a random key, pinned to the node id the
onion named.
"""

from __future__ import annotations

import functools
import os
import random
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeAlias, TypeVar

import trio

from dchat_core import DchatError, InvalidRelayAddressError, RelayAddress, TransportError
from dchat_privacy import ReplyBook, write_reply
from dchat_privacy.lowlevel import MAX_REPLY_DATA

from ._errors import (
    OnionFetchError,
    OnionKeyError,
    OnionRouteError,
    RelayBusyError,
)
from ._onion_fetch import build_onion_fetch, open_fetch_reply
from ._put_auth import auth_paid
from ._relay_limits import entry_id_of
from ._relay_links import RelayPool
from ._relay_onion import (
    ONION_HOPS,
    OnionKeyRecord,
    build_onion_put,
    choose_onion_route,
    split_envelope,
)
from ._relay_onion_reply import build_reply_gift, split_reply_route
from ._relay_onion_wire import OnionFetched
from ._session import RelaySession

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from dchat_privacy.lowlevel import ReplyGift, ReplyKeys


__all__ = ("ONION_PREFIX", "OnionPool", "onion_route", "split_route")

ONION_PREFIX: Final = "onion:"
_Routes: TypeAlias = "Callable[[RelayAddress, random.Random], Sequence[RelayAddress]]"
_A = TypeVar("_A")
_ASKS_WORK: Final = "pow"


class GuardedSource(Protocol):
    """Routes that start at pinned guards (``dchat_chain.lowlevel.GuardedRoutes``)."""

    def route(self, last: RelayAddress, rng: random.Random) -> list[RelayAddress]: ...

    def free_route(self, last: RelayAddress, rng: random.Random) -> list[RelayAddress]: ...

    def mark(self, relay: RelayAddress, reachable: bool) -> None: ...


def onion_route(relay: str) -> str:
    """The outbox relay text that deposits at ``relay`` through onions."""
    return relay if relay.startswith(ONION_PREFIX) else ONION_PREFIX + relay


def split_route(relay: str) -> tuple[bool, str]:
    """``(through onions?, the mailbox relay's address text)`` of an outbox relay text."""
    if relay.startswith(ONION_PREFIX):
        return True, relay[len(ONION_PREFIX) :]
    return False, relay


class OnionPool(RelayPool):
    """A :class:`RelayPool` that also deposits through onions and forwards them.

    Args:
        onion_relays: The relays onion routes are drawn from (pinned
            ``NODEID@HOST:PORT``, or their text; the mailbox relay is added as
            the last hop). Raises ``InvalidRelayAddressError`` for a bad text.
        rng: Draws routes (a system RNG by default).
        now: The wall clock (key records have epochs in Unix time).
        hops: Relays per route, the mailbox relay included.
        routes: Chooses a whole route ``(mailbox relay, rng) -> hops`` in place
            of drawing from ``onion_relays`` (raises a ``DchatError`` when the
            directory holds no acceptable route); with relay discovery its
            first hop is one of the node's guards
            (:class:`dchat_chain.lowlevel.GuardedRoutes`).
        gift_routes: Chooses the routes of reply blocks given away (entered by
            peers: no guard); ``routes`` by default.
        guarded: Sets ``routes`` (its ``route``), ``gift_routes`` (``free_route``)
            and :attr:`first_hop` (``mark``) at once: a
            :class:`dchat_chain.lowlevel.GuardedRoutes`.
        unlinkable: As :class:`RelayPool` (for direct deposits and key fetches).
        tokens: As :class:`RelayPool`.
        **kwargs: As :class:`RelayPool` (``timeout``, ``max_bits``).
    """

    def __init__(
        self,
        onion_relays: Sequence[RelayAddress | str] = (),
        unlinkable: bool = False,
        tokens: Callable[[bytes], bytes | None] | None = None,
        *,
        rng: random.Random | None = None,
        now: Callable[[], float] = time.time,
        hops: int = ONION_HOPS,
        routes: _Routes | None = None,
        gift_routes: _Routes | None = None,
        guarded: GuardedSource | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(unlinkable=unlinkable, tokens=tokens, **kwargs)  # type: ignore[arg-type]
        self.onion_relays = tuple(
            r if isinstance(r, RelayAddress) else RelayAddress.parse(r) for r in onion_relays
        )
        """Where onion routes' first hops come from."""
        self._rng = rng or random.SystemRandom()
        self._now = now
        self._hops = hops
        if guarded is not None:
            routes, gift_routes = guarded.route, guarded.free_route
        self._routes = routes
        self._gift_routes = gift_routes or routes
        self.first_hop: Callable[[RelayAddress, bool], None] | None = (
            None if guarded is None else guarded.mark
        )
        """Told whether each route's first hop answered (the node marks its guards)."""
        self.route_error: str | None = None
        """Why the last route could not be chosen (None: it was)."""
        self._records: dict[str, OnionKeyRecord] = {}
        self.onion_results: Counter[str] = Counter()
        """What became of the onions sent (``stored``, ``bad_onion``, ...)."""
        self.replies = ReplyBook(max_pending=256)
        """The reply blocks of this pool's fetches still waiting for their answer."""
        self.forwarded: Counter[str] = Counter()
        """What the next hops answered to the onions this relay forwarded."""
        self.reply_blocks: Callable[[bytes], Awaitable[ReplyGift | None]] | None = None
        """Takes (uses up) a reply block a peer gave; set by the user node."""
        self.reply_results: Counter[str] = Counter()
        """What became of the answers sent under reply blocks."""

    async def deposit(self, relay: str, items: Sequence[tuple[bytes, bytes]]) -> list[bytes | str]:
        """Deposit ``(mailbox, envelope)`` items at an outbox relay text, maybe through onions.

        Per item its entry id or why it failed; after a failed onion the rest
        fail with the same code (they are retried later, in order).
        """
        peer = split_reply_route(relay)
        if peer is not None:
            return await self._under_blocks(peer, items)
        through_onions, text = split_route(relay)
        address = RelayAddress.parse(text)
        if not through_onions:
            return await self.put_many(address.host, address.port, items)
        results: list[bytes | str] = []
        for mailbox, envelope in items:
            result = await self._onion_one(address, mailbox, envelope)
            results.append(result)
            if isinstance(result, str):
                results += [result] * (len(items) - len(results))
                break
        return results

    async def _under_blocks(
        self, peer: bytes, items: Sequence[tuple[bytes, bytes]]
    ) -> list[bytes | str]:
        """Each envelope under a reply block of ``peer``'s, one block each, in order."""
        results: list[bytes | str] = []
        for _mailbox, envelope in items:
            result = await self._under_block(peer, envelope)
            self.reply_results[result] += 1
            if result != "stored":
                return [*results, *[result] * (len(items) - len(results))]
            results.append(entry_id_of(envelope))
        return results

    async def _under_block(self, peer: bytes, envelope: bytes) -> str:
        if len(envelope) > MAX_REPLY_DATA:
            return "too_long_for_reply"
        gift = None if self.reply_blocks is None else await self.reply_blocks(peer)
        if gift is None:
            return "no_reply_block"
        packet = write_reply(gift.block, envelope)
        first = gift.first_relay
        send = functools.partial(RelaySession.onion, packet=packet)
        try:
            return str(await self._call(first.host, first.port, send))
        except RelayBusyError:
            return "busy"
        except DchatError as exc:
            return type(exc).__name__

    async def reply_gifts(
        self, last: RelayAddress, mailbox: bytes, count: int
    ) -> list[tuple[ReplyGift, ReplyKeys]]:
        """``count`` fresh reply blocks into ``mailbox`` at ``last`` (our mailbox relay),
        each over its own route (:meth:`route_to`: two relays of the directory's
        routes or :attr:`onion_relays`, then ``last``).

        Raises:
            OnionRouteError: too few onion relays.
            OnionKeyError, DchatError: a relay's key could not be had.
        """
        gifts = []
        for _ in range(count):
            route = self.route_to(last, gift=True)
            hops = await self._keyed(route)
            gifts.append(build_reply_gift(hops, mailbox))
        return gifts

    async def _onion_one(self, last: RelayAddress, mailbox: bytes, envelope: bytes) -> bytes | str:
        try:
            result = await self._send(last, mailbox, envelope, retry=False)
            if result == _ASKS_WORK:  # the mailbox relay asks work: a token if we hold one
                self.auth.asked(last.hostport, trio.current_time())
                result = await self._send(last, mailbox, envelope, retry=True)
        except RelayBusyError:
            result = "busy"
        except (OnionRouteError, OnionKeyError, DchatError) as exc:
            result = type(exc).__name__
        self.onion_results[result] += 1
        return entry_id_of(envelope) if result == "stored" else result

    async def _send(
        self, last: RelayAddress, mailbox: bytes, envelope: bytes, *, retry: bool
    ) -> str:
        """Send ``envelope`` in one onion, or in pieces (each its own route); the last answer."""
        (auth,) = self.auth.first(last.hostport, [mailbox], trio.current_time())
        if retry and auth is None:
            # No put token: a paid one (protocol §40) goes through onions as well. Work
            # cannot: the relay's challenge would need an answer path to the sender.
            paid = self.auth.paid(last.hostport)
            if paid is None:
                return _ASKS_WORK
            auth = auth_paid(paid)
        pieces = split_envelope(envelope, os.urandom(16))
        result = "bad_onion"
        for number, (piece, fragment) in enumerate(pieces):
            route = self.route_to(last)
            hops = await self._keyed(route)
            frag = fragment if len(pieces) > 1 else None
            packet = build_onion_put(hops, mailbox, piece, auth, fragment=frag)
            send = functools.partial(RelaySession.onion, packet=packet)
            result = await self._first(route[0], send)
            if result == "bad_onion":  # e.g. a hop restarted (a new key): fetch them anew
                for relay in route:
                    self._records.pop(relay.hostport, None)
            if result != "partial" or number == len(pieces) - 1:
                break  # a refusal ends the envelope (it is retried whole, new pieces)
        return "bad_onion" if result == "partial" else result

    @property
    def from_directory(self) -> bool:
        """Whether routes come from the chain's directory (else from ``onion_relays``)."""
        return self._routes is not None

    async def _keyed(
        self, route: Sequence[RelayAddress]
    ) -> list[tuple[RelayAddress, OnionKeyRecord]]:
        """Each relay of ``route`` with its onion key (the first hop's reachability told)."""
        first = await self._first(route[0], None)
        return [(route[0], first), *[(relay, await self.onion_key(relay)) for relay in route[1:]]]

    async def _first(
        self, relay: RelayAddress, send: Callable[[RelaySession], Awaitable[_A]] | None
    ) -> Any:
        """Call the first hop (``send`` None: fetch its onion key), telling
        :attr:`first_hop` whether it answered."""
        try:
            if send is None:
                answer: Any = await self.onion_key(relay)
            else:
                answer = await self._call(relay.host, relay.port, send)
        except RelayBusyError:
            raise  # it answered
        except TransportError:
            if self.first_hop is not None:
                self.first_hop(relay, False)
            raise
        if self.first_hop is not None:
            self.first_hop(relay, True)
        return answer

    def route_to(self, last: RelayAddress, *, gift: bool = False) -> list[RelayAddress]:
        """A route ending at ``last`` (the mailbox relay); ``gift``: for a reply block given away.

        Raises:
            OnionRouteError: too few ``onion_relays``.
            DchatError: the directory holds no acceptable route.
        """
        try:
            if self._routes is None:
                route = choose_onion_route(self.onion_relays, last, self._rng, hops=self._hops)
            else:
                choose = self._gift_routes if gift else self._routes
                assert choose is not None
                *hops, _ = choose(last, self._rng)
                route = [*hops, last]
        except DchatError as exc:
            self.route_error = f"{type(exc).__name__}: {exc}"
            raise
        self.route_error = None
        return route

    async def onion_key(self, relay: RelayAddress) -> OnionKeyRecord:
        """``relay``'s verified onion key record for now (fetched once per epoch).

        Raises:
            OnionKeyError: the relay's record does not verify.
            DchatError: the relay cannot be reached.
        """
        now = self._now()
        cached = self._records.get(relay.hostport)
        if cached is not None and now < cached.usable_until:
            return cached
        if relay.node is not None:
            self.pins[(relay.host, relay.port)] = relay.node

        async def fetch(session: RelaySession) -> OnionKeyRecord:
            data = await session.onion_key()
            proven = session.link.peer_key.to_bytes()
            return OnionKeyRecord.verify(data, node=relay.node, now=now, link_key=proven)

        record = await self._call(relay.host, relay.port, fetch)
        self._records[relay.hostport] = record
        return record

    async def get_prekeys_from(
        self, relays: Sequence[str], mailbox: bytes, *, onion: bool = False
    ) -> bytes:
        """A bundle of ``mailbox`` from the first of ``relays`` that answers.

        ``onion``: each fetch goes through an onion (§46), so no relay of
        ``relays`` sees who asks; never falls back to a direct fetch.

        Raises:
            OnionFetchError, OnionRouteError, DchatError: the last relay's failure.
        """
        if not onion:
            return await super().get_prekeys_from(relays, mailbox)
        for number, text in enumerate(relays):
            try:
                return await self._fetch_one(RelayAddress.parse(split_route(text)[1]), mailbox)
            except DchatError as exc:
                self.onion_results[f"fetch_{getattr(exc, 'code', type(exc).__name__)}"] += 1
                if number == len(relays) - 1:
                    raise
        raise InvalidRelayAddressError("no relay to fetch a prekey bundle from")

    async def _fetch_one(self, last: RelayAddress, mailbox: bytes) -> bytes:
        route = self.route_to(last)
        hops = await self._keyed(route)
        packet = build_onion_fetch(hops, mailbox, self.replies)
        send = functools.partial(RelaySession.onion_fetch, packet=packet)
        answer: OnionFetched = await self._first(route[0], send)
        if answer.result != "ok":
            if answer.result == "bad_onion":  # e.g. a hop restarted (a new key)
                for relay in route:
                    self._records.pop(relay.hostport, None)
            raise OnionFetchError(answer.result)
        bundle = open_fetch_reply(self.replies, answer.data)
        self.onion_results["fetched"] += 1
        return bundle

    async def forward_fetch(
        self, to: RelayAddress, packet: bytes, *, timeout: float = 30.0
    ) -> OnionFetched:
        """Hand the fetch onion ``packet`` to the next relay ``to``: its answer."""
        if to.node is not None:
            self.pins[(to.host, to.port)] = to.node
        try:
            with trio.fail_after(timeout):
                send = functools.partial(RelaySession.onion_fetch, packet=packet, timeout=timeout)
                answer: OnionFetched = await self._call(to.host, to.port, send)
        except RelayBusyError:
            answer = OnionFetched(0, "busy")
        except (DchatError, trio.TooSlowError):
            answer = OnionFetched(0, "unreachable")
        self.forwarded[f"fetch_{answer.result}"] += 1
        return answer

    async def forward(self, to: RelayAddress, packet: bytes, *, timeout: float = 30.0) -> str:
        """Hand ``packet`` to the next relay ``to`` (pinned): its answer, or ``unreachable``."""
        if to.node is not None:
            self.pins[(to.host, to.port)] = to.node
        try:
            with trio.fail_after(timeout):
                result = await self._call(
                    to.host, to.port, lambda session: session.onion(packet, timeout=timeout)
                )
        except RelayBusyError:
            result = "busy"
        except (DchatError, trio.TooSlowError):
            result = "unreachable"
        self.forwarded[result] += 1
        return result
