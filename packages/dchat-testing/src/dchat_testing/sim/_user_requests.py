"""The user's links to relays: the deposit link, bundle fetches, the mailbox link.

Each object owns one simulated link and reports back to its :class:`UserNode`
(see :mod:`._user` for the order of steps): a :class:`DepositLink` per relay
(reused for every ``put_many``, proven with a random key), a one-shot
:class:`BundleFetch` per ``pk_get`` (a fresh link and key each), and the
standing :class:`MailboxPuller` of the user's mailbox at each home relay
(``pull`` held by the relay, acknowledgement riding the next ``pull``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dchat_core import RelayAddress
from dchat_crypto import SigningKey
from dchat_network import RelayClient, RelayProtocolError
from dchat_network.lowlevel import (
    RelayBatch,
    RelayPrekeyBundle,
    RelayPrekeysHeld,
    RelayStoredMany,
)

if TYPE_CHECKING:
    from dchat_core import NodeId
    from dchat_messaging import DeviceAddress
    from dchat_messaging.lowlevel import OutboxEntry

    from ._loop import Timer
    from ._node import SimLink
    from ._user import UserNode

__all__ = ("BundleFetch", "DepositLink", "MailboxPuller", "relay_name")


def relay_name(address: str) -> str:
    """The node to dial for a relay address: ``relay-0:7400`` and ``relay-0`` are ``relay-0``."""
    rest = RelayAddress.split(address)[1]
    return rest.rpartition(":")[0] or rest


class _Request:
    """One request on a fresh link to a relay: dial, send, wait for the reply or fail."""

    def __init__(self, user: UserNode, relay: str, relay_node: NodeId | None) -> None:
        self._user = user
        self._client = RelayClient()
        self._done = False
        # A fresh key per request: the relay cannot link requests to a sender.
        key = SigningKey.from_bytes(user.rng.randbytes(32))
        self._timer = user.after(user.params.request_timeout, self._timeout)
        self._link = user.dial(relay_name(relay), self, node_key=key, expected_peer=relay_node)

    def request(self) -> bytes:
        raise NotImplementedError

    def on_open(self, link: SimLink) -> None:
        link.send(self.request())

    def on_message(self, link: SimLink, data: bytes) -> None:
        try:
            reply = self._client.receive(data)
        except RelayProtocolError:
            self._finish(None, reason="refused")
            return
        self._finish(reply, reason="unexpected")

    def on_closed(self, link: SimLink, reason: str) -> None:
        self._finish(None, reason=reason)

    def _timeout(self) -> None:
        self._finish(None, reason="timeout")

    def _finish(self, reply: object, *, reason: str) -> None:
        if self._done:
            return
        self._done = True
        self._timer.cancel()
        if self.answered(reply):
            self._link.close()
        else:
            self._link.abort()
            self.failed(reason)

    def answered(self, reply: object) -> bool:
        """Handle the reply; False if it is not the expected one."""
        raise NotImplementedError

    def failed(self, reason: str) -> None:
        raise NotImplementedError


class BundleFetch(_Request):
    """One ``pk_get`` for a device's prekey bundle (try number ``attempt`` asks the next relay)."""

    def __init__(self, user: UserNode, device: DeviceAddress, attempt: int = 0) -> None:
        self._device = device
        node, address = RelayAddress.split(device.relays[attempt % len(device.relays)])
        super().__init__(user, address, node)

    def request(self) -> bytes:
        return self._client.get_prekeys(bytes(self._device.mailbox))

    def answered(self, reply: object) -> bool:
        if not isinstance(reply, RelayPrekeyBundle):
            return False
        self._user._bundle_fetched(self._device, reply.bundle)
        return True

    def failed(self, reason: str) -> None:
        self._user._bundle_failed(self._device, reason)


class DepositLink:
    """The reused link to one relay for deposits: one ``put_many`` at a time, in order.

    It dials on the first deposit, under a random key made for this link (a
    relay can group the deposits of one link, not tie them to a mailbox), and
    stays open for the next ones. A reset, a timeout or a refused request
    fails the deposit in flight and drops the link; the next deposit dials a
    new one.
    """

    def __init__(self, user: UserNode, relay: str, relay_node: NodeId | None) -> None:
        self._user = user
        self.relay = relay
        self._client = RelayClient()
        self._batch: list[OutboxEntry] | None = None
        self._timer: Timer | None = None
        self.closed = False
        key = SigningKey.from_bytes(user.rng.randbytes(32))
        self._link = user.dial(relay_name(relay), self, node_key=key, expected_peer=relay_node)

    def deposit(self, batch: list[OutboxEntry]) -> None:
        """Send ``batch`` as one ``put_many`` (now, or once the link is open)."""
        assert self._batch is None
        assert not self.closed
        self._batch = batch
        self._timer = self._user.after(self._user.params.request_timeout, self._timeout)
        if self._link.is_open:
            self._send()

    def _send(self) -> None:
        assert self._batch is not None
        items = [(entry.mailbox, entry.envelope) for entry in self._batch]
        self._link.send(self._client.put_many(items))

    def on_open(self, link: SimLink) -> None:
        if self._batch is not None:
            self._send()

    def on_message(self, link: SimLink, data: bytes) -> None:
        try:
            reply = self._client.receive(data)
        except RelayProtocolError:
            self._fail("refused")
            return
        batch = self._batch
        if not isinstance(reply, RelayStoredMany) or batch is None:
            self._fail("unexpected")
            return
        self._settle()
        self._user._deposited(self, batch, list(reply.results))

    def on_closed(self, link: SimLink, reason: str) -> None:
        self._fail(reason)

    def _timeout(self) -> None:
        self._fail("timeout")

    def _settle(self) -> None:
        self._batch = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fail(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        batch = self._batch
        self._settle()
        self._link.abort()
        self._user._deposit_link_lost(self, batch, reason)


class MailboxPuller:
    """The standing mailbox link: prekeys on connect, then ``pull`` forever.

    Each ``pull`` acknowledges the previous batch (once the user committed
    it) and asks for the next; the relay holds it up to ``pull_wait``
    seconds when the mailbox is empty. The link times out after
    ``pull_wait + request_timeout`` without an answer; any failure ends it
    (the user reconnects after a backoff).
    """

    def __init__(self, user: UserNode, relay: str) -> None:
        self._user = user
        self.relay = relay
        """The home relay, as the card lists it."""
        self._client = RelayClient()
        self._mailbox = bytes(user.durable.identity.mailbox_id)
        self.state = "connecting"
        self.ended = False
        self._ack: list[bytes] = []  # held back while prekeys are checked
        self._timer: Timer | None = user.after(user.params.request_timeout, self._timeout)
        node, address = RelayAddress.split(relay)
        key = user.durable.identity.mailbox_key
        self._link = user.dial(relay_name(address), self, node_key=key, expected_peer=node)

    def pull(self, ack: list[bytes]) -> None:
        """Acknowledge ``ack`` and ask for the next batch (held while the mailbox is empty)."""
        if self._user._prekeys_due(self.relay):
            self._ack = ack
            self._request("counting", self._client.count_prekeys(self._mailbox))
            return
        params = self._user.params
        wait_ms = int(params.pull_wait * 1000)
        request = self._client.pull(self._mailbox, ack, limit=params.fetch_limit, wait_ms=wait_ms)
        self._request("pulling", request, params.pull_wait)

    def _request(self, state: str, data: bytes, wait: float = 0.0) -> None:
        self.state = state
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._user.after(wait + self._user.params.request_timeout, self._timeout)
        self._link.send(data)

    def _resume(self) -> None:
        ack, self._ack = self._ack, []
        self.pull(ack)

    def on_open(self, link: SimLink) -> None:
        self._user._puller_connected(self)
        self.pull([])

    def on_message(self, link: SimLink, data: bytes) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            reply = self._client.receive(data)
        except RelayProtocolError:
            self._fail("refused")
            return
        if isinstance(reply, RelayPrekeysHeld) and self.state == "counting":
            upload = self._user._prekeys_held(reply.count)
            if upload is None:
                self._resume()
            else:
                last, one_time, replace = upload
                put = self._client.put_prekeys(self._mailbox, last, one_time, replace=replace)
                self._request("publishing", put)
        elif isinstance(reply, RelayPrekeysHeld):
            self._user.observe("prekeys_stored", held=reply.count)
            self._resume()
        elif isinstance(reply, RelayBatch) and reply.items:
            self.state = "committing"
            self._user._receive_batch(self, reply)
        elif isinstance(reply, RelayBatch):
            self.pull([])  # the wait ended with no mail: pull again (the link's keep-alive)
        else:
            self._fail("unexpected")

    def on_closed(self, link: SimLink, reason: str) -> None:
        self._fail(reason)

    def _timeout(self) -> None:
        self._fail("timeout")

    def _fail(self, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._link.abort()
        self._user._puller_ended(self, reason)
