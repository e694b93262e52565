"""The trio shell around :class:`LinkConnection`: TCP dialing and listening.

All waiting happens under deadlines; every foreign exception (trio, OS) is
translated to :class:`LinkClosedError` / :class:`LinkTimeoutError` here, so the
rest of the code only sees dchat errors.

``Link.send`` and ``Link.receive`` are most of a link's CPU time per message, so
they do only what each call needs: a cancel scope is opened only when there is a
deadline to enforce (trio cancel scopes cost as much as encrypting the message),
a free mutex is taken without a trip through the scheduler, and a message that
an earlier read already decoded is returned without any I/O. Each call still
begins with :func:`trio.lowlevel.checkpoint_if_cancelled`, so a cancelled caller
is stopped before anything happens, as with the ``trio.Lock`` used before.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, Protocol

import trio

from dchat_core import DchatError, NodeId
from dchat_crypto import PrivateKey

from ._errors import LinkClosedError, LinkTimeoutError
from ._link import (
    DEFAULT_MAX_MESSAGE,
    HandshakeComplete,
    LinkClosed,
    LinkConnection,
    LinkEvent,
    LinkState,
    link_proof,
    refusal_frame,
)
from ._link_stats import LinkStats

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from dchat_crypto import SigningKey, VerifyKey

__all__ = ("ConnectionGate", "Link", "connect", "open_link", "serve_links", "set_source_address")

_log = logging.getLogger("dchat.network")
_READ_SIZE = 65536
_DEAD = (LinkState.CLOSED, LinkState.ERROR)
_TRANSPORT_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


@contextmanager
def _translated(timeout: float) -> Iterator[None]:
    try:
        with trio.fail_after(timeout):
            yield
    except trio.TooSlowError:
        raise LinkTimeoutError("link operation timed out") from None
    except _TRANSPORT_ERRORS as exc:
        raise _closed(exc) from None


def _closed(exc: BaseException) -> LinkClosedError:
    return LinkClosedError(f"connection failed: {type(exc).__name__}")


class _Mutex:
    """A fair mutex that costs next to nothing when free.

    ``trio.Lock`` yields to the scheduler on every acquire and tracks its owner
    for diagnostics; a Link holds its mutexes only inside its own methods, so it
    needs neither. Waiters queue in a ParkingLot, and ``release`` hands the mutex
    straight to the first of them (``_held`` stays set), so it cannot be barged.
    A waiter cancelled while parked leaves the queue without owning it.
    """

    __slots__ = ("_held", "_waiters")

    def __init__(self) -> None:
        self._held = False
        self._waiters = trio.lowlevel.ParkingLot()

    async def acquire(self) -> None:
        if self._held:
            await self._waiters.park()  # returns once release() handed it over
        else:
            self._held = True

    def release(self) -> None:
        if self._waiters:
            self._waiters.unpark()
        else:
            self._held = False


class Link:
    """An open, authenticated, encrypted link to one peer."""

    def __init__(
        self, stream: trio.abc.Stream, conn: LinkConnection, done: HandshakeComplete
    ) -> None:
        self._stream = stream
        self._conn = conn
        self._send_lock = _Mutex()
        self._recv_lock = _Mutex()
        self._send_broken = False
        self.peer_key: VerifyKey = done.peer_key
        self.peer_id: NodeId = done.peer_id
        self.source = ""
        """The peer's IP address, on links :func:`serve_links` accepted."""

    async def send(self, data: bytes, *, timeout: float | None = 30.0) -> None:
        """Send one message.

        Raises:
            FrameTooLargeError: ``data`` exceeds the link's maximum message size.
            LinkClosedError: the connection failed or timed out.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        await self._send_lock.acquire()
        try:
            if self._send_broken:
                raise LinkClosedError("an earlier send was interrupted; the link is unusable")
            self._conn.send_message(data)
            # A send_all cut short by a timeout or cancellation may have written part
            # of a Noise frame; anything sent after it would be garbage to the peer.
            self._send_broken = True
            out = self._conn.data_to_send()
            try:
                if timeout is None:
                    await self._stream.send_all(out)
                else:
                    # fail_after without its generator: move_on_after + cancelled_caught.
                    with trio.move_on_after(timeout) as scope:
                        await self._stream.send_all(out)
                    if scope.cancelled_caught:
                        raise LinkTimeoutError("link operation timed out")
            except _TRANSPORT_ERRORS as exc:
                raise _closed(exc) from None
            self._send_broken = False
        finally:
            self._send_lock.release()

    async def receive(self, *, timeout: float | None = None) -> bytes:
        """Wait for the next message.

        Raises:
            LinkProtocolError: the peer broke the protocol.
            LinkClosedError: the peer closed the link, or the connection failed.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        await self._recv_lock.acquire()
        try:
            event = self._conn.next_event()
            if event is None:
                event = await self._read_event(timeout)
        finally:
            self._recv_lock.release()
        if isinstance(event, LinkClosed):
            raise LinkClosedError("peer closed the link")
        assert not isinstance(event, HandshakeComplete)
        return event.data

    async def _read_event(self, timeout: float | None) -> LinkEvent:
        try:
            if timeout is None:
                return await self._read_until_event()
            with trio.move_on_after(timeout):
                return await self._read_until_event()
        except _TRANSPORT_ERRORS as exc:
            raise _closed(exc) from None
        raise LinkTimeoutError("link operation timed out")  # the deadline expired

    async def _read_until_event(self) -> LinkEvent:
        while True:
            if self._conn.state in _DEAD:
                raise LinkClosedError("the link is closed")
            self._conn.receive_data(bytes(await self._stream.receive_some(_READ_SIZE)))
            event = self._conn.next_event()
            if event is not None:
                return event

    async def request(self, data: bytes, *, timeout: float = 30.0) -> bytes:
        """Send one message and wait for the next one, both within ``timeout``."""
        with _translated(timeout):
            await self.send(data, timeout=None)
            return await self.receive(timeout=None)

    async def aclose(self) -> None:
        """Close the link and its stream."""
        self._conn.close()
        # One scope that both shields and bounds: a shield nested inside a separate
        # move_on_after would also shield the close from that deadline.
        with (
            trio.move_on_after(1, shield=True),
            suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError),
        ):
            await self._stream.aclose()


async def open_link(
    stream: trio.abc.Stream,
    *,
    initiator: bool,
    node_key: SigningKey,
    expected_peer: NodeId | None = None,
    timeout: float = 10.0,
    max_message: int = DEFAULT_MAX_MESSAGE,
    turn: trio.Semaphore | None = None,
    static: PrivateKey | None = None,
    proof: bytes | None = None,
) -> Link:
    """Run the link handshake over ``stream``.

    ``turn``, if given, is held while each received handshake message is
    processed (the public-key operations); a listener shares one among all its
    handshakes, so that they take turns, one step per scheduler pass, and a
    burst of connections cannot hold up established links for more than one
    step. ``static`` and ``proof`` (:func:`~dchat_network._link.link_proof`)
    are this side's Noise static key and its identity proof, when the caller
    keeps one for many links; by default each link has a fresh static key.

    Raises:
        HandshakeFailedError: the handshake or the peer's identity proof failed.
        LinkClosedError: the connection failed or the handshake timed out.
    """
    conn = LinkConnection(
        initiator=initiator,
        node_key=node_key,
        expected_peer=expected_peer,
        max_message=max_message,
        static=static,
        proof=proof,
    )
    with _translated(timeout):
        while True:
            pending = conn.data_to_send()
            if pending:
                await stream.send_all(pending)
            event = conn.next_event()
            if isinstance(event, HandshakeComplete):
                return Link(stream, conn, event)
            data = bytes(await stream.receive_some(_READ_SIZE))
            if turn is None:
                conn.receive_data(data)
            else:
                async with turn:
                    conn.receive_data(data)


_source: list[str | None] = [None]


def set_source_address(address: str | None) -> None:
    """Bind every outgoing link of this process to the local ``address`` (None: any).

    A node with several addresses (or a test giving each user its own
    loopback address, 127.0.0.2, 127.0.0.3, ...) says which one it dials from.
    """
    _source[0] = address


async def connect(
    host: str,
    port: int,
    *,
    node_key: SigningKey,
    expected_peer: NodeId | None = None,
    timeout: float = 10.0,
) -> Link:
    """Dial ``host:port`` over TCP and open a link, all within ``timeout``."""
    deadline = trio.current_time() + timeout
    with _translated(timeout):
        stream = await trio.open_tcp_stream(host, port, local_address=_source[0])
    try:
        return await open_link(
            stream,
            initiator=True,
            node_key=node_key,
            expected_peer=expected_peer,
            timeout=max(0.0, deadline - trio.current_time()),
        )
    except BaseException:
        with trio.CancelScope(shield=True):
            await stream.aclose()
        raise


class ConnectionGate(Protocol):
    """Admits accepted connections (e.g. a relay's connection caps), before the handshake."""

    def connect(self, address: str) -> str | None:
        """None to admit a connection from ``address``; else why not (``overflow``: drop it)."""
        ...

    def retry_ms(self, address: str, verdict: str) -> int:
        """How long a connection from ``address`` refused for ``verdict`` is asked to wait (ms)."""
        ...

    def disconnect(self, address: str, verdict: str | None) -> None:
        """The connection ``connect`` answered ``verdict`` closed."""
        ...


def _peer_address(stream: trio.SocketStream) -> str:
    try:
        peer: Any = stream.socket.getpeername()
    except OSError:
        return ""
    return str(peer[0]) if isinstance(peer, tuple) else ""


async def _refuse(stream: trio.SocketStream, frame: bytes, timeout: float) -> None:
    """Answer a refused connection's first bytes with ``frame``, then close it.

    The dialer's message 1 is read first: closing a socket with unread input
    resets the connection, and the reset could overtake the refusal.
    """
    with trio.move_on_after(timeout), suppress(*_TRANSPORT_ERRORS):
        if await stream.receive_some(_READ_SIZE):
            await stream.send_all(frame)
    with trio.CancelScope(shield=True):
        await stream.aclose()


async def serve_links(
    handler: Callable[[Link], Awaitable[None]],
    host: str,
    port: int,
    *,
    node_key: SigningKey,
    handshake_timeout: float = 10.0,
    stats: LinkStats | None = None,
    gate: ConnectionGate | None = None,
    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept TCP connections, open a link on each and run ``handler`` on it.

    One misbehaving or failing connection never stops the listener: its error is
    logged and only that connection is closed. ``task_status.started`` receives
    the bound ``(host, port)``. ``stats``, if given, counts the connections.
    ``gate``, if given, is asked about each connection before its handshake: a
    refused one is answered with a refusal frame instead of handshake message 2
    (:func:`~dchat_network._link.refusal_frame`: the reason and the gate's
    retry-after, no public-key work) once its message 1 has arrived, then
    closed; ``overflow`` is closed at once. A handshake that
    does not complete within ``handshake_timeout`` is closed (half-open
    connections, e.g. slowloris, hold nothing longer).
    """
    counts = LinkStats() if stats is None else stats
    turn = trio.Semaphore(1)  # handshakes take turns (see open_link)
    # One Noise static key and identity proof for every link of this listener:
    # each handshake then costs no key generation and no signature (forward
    # secrecy comes from the ephemeral keys; the node key is public anyway).
    static = PrivateKey.generate()
    proof = link_proof(node_key, static.public_key.to_bytes())

    async def on_connection(stream: trio.SocketStream) -> None:
        address = _peer_address(stream)
        verdict = gate.connect(address) if gate is not None else None
        try:
            await on_admitted(stream, address, verdict)
        finally:
            if gate is not None:
                gate.disconnect(address, verdict)

    async def on_admitted(stream: trio.SocketStream, address: str, verdict: str | None) -> None:
        link: Link | None = None
        counts.accepted += 1
        if verdict == "overflow":
            with trio.CancelScope(shield=True):
                await stream.aclose()
            return
        if verdict is not None:
            assert gate is not None
            await _refuse(
                stream, refusal_frame(verdict, gate.retry_ms(address, verdict)), handshake_timeout
            )
            return
        try:
            link = await open_link(
                stream,
                initiator=False,
                node_key=node_key,
                timeout=handshake_timeout,
                turn=turn,
                static=static,
                proof=proof,
            )
            link.source = address
            counts.open += 1
            await handler(link)
        except DchatError as exc:
            _log.info("link ended: %s: %s", type(exc).__name__, exc)
            (counts.handshake_failures if link is None else counts.ended)[type(exc).__name__] += 1
        except Exception:
            _log.exception("link handler crashed")
        finally:
            if link is not None:
                counts.open -= 1
                await link.aclose()
            else:
                with trio.CancelScope(shield=True):
                    await stream.aclose()

    listeners = await trio.open_tcp_listeners(port, host=host)
    sockname: Any = listeners[0].socket.getsockname()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, on_connection, listeners)
        task_status.started((sockname[0], sockname[1]))
