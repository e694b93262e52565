"""The relay host's onion requests (a mixin of :class:`~dchat_network.RelayHost`).

``okey`` is answered from the host's :class:`OnionKeys` (made when the host
starts serving with its node key). ``onion`` is peeled in the event loop (one
ECDH and a few hashes, no store): a layer that names a next hop is forwarded
over the host's :class:`OnionPool` and its answer returned; the last layer's
deposit is served as a ``put`` of its envelope into its mailbox
(:meth:`RelayServer.serve`, in the worker, in the work queue's turn, woken
pulls included), so every put rule applies. Refusals are ``onion_done``
answers, never link errors.

``onion_fetch`` (§46) is peeled the same way; a forwarding relay peels the
answer it gets back (:meth:`OnionKeys.peel_reply`) before it answers; the
mailbox relay takes one prekey bundle as a ``prekeys_get`` would (in the
worker, in its turn) and answers it through the fetch's reply block.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING

from ._errors import OnionRefusedError
from ._onion_fetch import answer_fetch
from ._relay import (
    RelayBusy,
    RelayError,
    RelayPrekeyBundle,
    RelayPrekeyGet,
    RelayPut,
    RelayStored,
    encode_relay_message,
)
from ._relay_observe import digest
from ._relay_onion import OnionDeposit, OnionFetch, OnionHop, OnionKeys, Reassembly
from ._relay_onion_pool import OnionPool
from ._relay_onion_wire import (
    ONION_RESULTS,
    OnionDone,
    OnionFetched,
    OnionFetchPut,
    OnionKeyIs,
    OnionKeyQuery,
    OnionPut,
)
from ._relay_server import RelayReply

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from dchat_crypto import SigningKey

    from ._relay import RelayMessage
    from ._relay_limits import RelayLimits
    from ._relay_observe import ObserveLog
    from ._relay_server import RelayServer

__all__ = ("OnionHosting",)


class OnionHosting:
    """Onion keys, next-hop links and the answers to ``okey`` and ``onion``."""

    server: RelayServer
    limits: RelayLimits
    observer: ObserveLog | None
    _now: Callable[[], float]
    # RelayHost's: run a server call in the worker in its turn; wake readers of mailboxes.
    _in_turn: Callable[[Callable[[], RelayReply], str, bool], Awaitable[RelayReply]]
    _wake: Callable[[tuple[bytes, ...]], None]
    onion: OnionKeys | None = None
    """The relay's onion keys (None until it serves with a node key)."""
    forwarder: OnionPool | None = None
    """Links to the next hops of the onions this relay forwards."""
    pieces: Reassembly | None = None
    """Pieces of envelopes that came in several onions, until the last one."""
    wrap_reply: Callable[[bytes, bytes, bytes], bytes] | None = None
    """``(mailbox, reply id, body) -> envelope``: how a reply that came under a
    reply block is filed (§45); None: such onions are refused ``bad_onion``."""

    def start_onions(self, node_key: SigningKey) -> None:
        """Draw the first onion key (signed by ``node_key``) and open the next-hop pool."""
        self.onion = OnionKeys(node_key, now=self._now(), period=self.limits.onion_period)
        self.forwarder = OnionPool()
        self.pieces = Reassembly()

    def onion_status(self) -> dict[str, object]:
        """Onion counters for the relay's status: peeled, refused, next hops' answers, pieces."""
        keys, forwarder, pieces = self.onion, self.forwarder, self.pieces
        return {
            "epoch": None if keys is None else keys.epoch,
            "peeled": 0 if keys is None else keys.peeled,
            "refused": 0 if keys is None else keys.refused,
            "forwarded": {} if forwarder is None else dict(forwarder.forwarded),
            "pieces_waiting": 0 if pieces is None else len(pieces),
        }

    async def answer_onion(
        self, request: OnionKeyQuery | OnionPut | OnionFetchPut, source: str, now: float
    ) -> RelayReply:
        """The answer to an ``okey``, ``onion`` or ``onion_fetch`` request from ``source``."""
        keys, forwarder, pieces = self.onion, self.forwarder, self.pieces
        if keys is None or forwarder is None or pieces is None:
            return _reply(RelayError(request.rid, "unsupported", "this relay peels no onions"))
        if isinstance(request, OnionKeyQuery):
            return _reply(OnionKeyIs(request.rid, keys.record(now)))
        if isinstance(request, OnionFetchPut):
            return _reply(await self._answer_fetch(keys, forwarder, request, source, now))
        try:
            step = keys.peel(request.packet, now)
            if isinstance(step, OnionFetch):  # a fetch sent as a deposit
                return _reply(OnionDone(request.rid, "bad_onion"))
            if not isinstance(step, OnionHop) and step.fragment is not None:
                whole = pieces.add(step, now)
                if whole is None:
                    return _reply(OnionDone(request.rid, "partial"))
                step = whole
            if not isinstance(step, OnionHop) and step.reply_id is not None:
                step = self._as_reply(step)
        except OnionRefusedError as exc:
            return _reply(OnionDone(request.rid, exc.code))
        if isinstance(step, OnionHop):
            if self.observer is not None:
                # Not paired with the request it came in (``peer``): a relay
                # that follows the protocol keeps no record of that pairing.
                self.observer.write("forward", to=step.to.hostport, digest=digest(step.packet))
            return _reply(OnionDone(request.rid, await forwarder.forward(step.to, step.packet)))
        if self.observer is not None:
            self.observer.write(
                "deposit",
                peer=source,
                mb=[step.mailbox.hex()],
                size=len(step.envelope),
                digest=digest(step.envelope),
            )
        put = RelayPut(request.rid, step.mailbox, step.envelope, step.auth)
        authorised = self.server.authorizer.holds(step.mailbox, step.auth)
        call = functools.partial(self.server.serve, b"", put, now)
        reply = await self._in_turn(call, source, authorised)
        self._wake(reply.notify)
        return _reply(OnionDone(request.rid, _result(reply.message)))

    async def _answer_fetch(
        self,
        keys: OnionKeys,
        forwarder: OnionPool,
        request: OnionFetchPut,
        source: str,
        now: float,
    ) -> OnionFetched:
        try:
            step = keys.peel(request.packet, now)
        except OnionRefusedError as exc:
            return OnionFetched(request.rid, exc.code)
        if isinstance(step, OnionHop):
            if self.observer is not None:
                self.observer.write("forward", to=step.to.hostport, digest=digest(step.packet))
            answer = await forwarder.forward_fetch(step.to, step.packet)
            if answer.result != "ok":
                return OnionFetched(request.rid, answer.result)
            try:  # our layer of the reply block: the answer changes here too
                return OnionFetched(request.rid, "ok", keys.peel_reply(answer.data, self._now()))
            except OnionRefusedError as exc:
                return OnionFetched(request.rid, exc.code)
        if not isinstance(step, OnionFetch):  # a deposit sent as a fetch
            return OnionFetched(request.rid, "bad_onion")
        if self.observer is not None:  # the peer is a relay, never the sender
            self.observer.write("fetch", peer=source, mb=[step.mailbox.hex()])
        get = RelayPrekeyGet(request.rid, step.mailbox)
        call = functools.partial(self.server.serve, b"", get, now)
        reply = await self._in_turn(call, source, False)
        message = reply.message
        bundle = message.bundle if isinstance(message, RelayPrekeyBundle) else None
        return OnionFetched(request.rid, "ok", answer_fetch(step.block, bundle))

    def _as_reply(self, step: OnionDeposit) -> OnionDeposit:
        if self.wrap_reply is None or step.reply_id is None:
            raise OnionRefusedError("bad_onion")
        envelope = self.wrap_reply(step.mailbox, step.reply_id, step.envelope)
        return dataclasses.replace(step, envelope=envelope, reply_id=None)


def _result(message: RelayMessage) -> str:
    """The ``onion_done`` code of the last hop's answer to its ``put``."""
    match message:
        case RelayStored():
            return "stored"
        case RelayBusy(reason=reason):
            return "pow" if reason == "pow" else "busy"
        case RelayError(code=code) if code in ONION_RESULTS:
            return code
    return "bad_envelope"


def _reply(message: RelayMessage) -> RelayReply:
    return RelayReply(encode_relay_message(message), message, isinstance(message, RelayError))
