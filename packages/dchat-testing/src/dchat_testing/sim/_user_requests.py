"""The user's requests to relays: one-shot deposits and bundle fetches, the mailbox link.

Each object owns one simulated link and reports back to its :class:`UserNode`
(see :mod:`._user` for the order of steps).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dchat_crypto import SigningKey
from dchat_network import RelayClient, RelayProtocolError
from dchat_network.lowlevel import (
    RelayAcked,
    RelayBatch,
    RelayPrekeyBundle,
    RelayPrekeysHeld,
    RelayStored,
)

if TYPE_CHECKING:
    from dchat_core import NodeId
    from dchat_messaging import DeviceAddress
    from dchat_messaging.testing import MemoryOutboxEntry

    from ._loop import Timer
    from ._node import SimLink
    from ._user import UserNode

__all__ = ("BundleFetch", "Fetcher", "Put")


class _Request:
    """One request on a fresh link to a relay: dial, send, wait for the reply or fail."""

    def __init__(self, user: UserNode, relay: str, relay_node: NodeId | None) -> None:
        self._user = user
        self._client = RelayClient()
        self._done = False
        # A fresh key per request: the relay cannot link requests to a sender.
        key = SigningKey.from_bytes(user.rng.randbytes(32))
        self._timer = user.after(user.params.request_timeout, self._timeout)
        self._link = user.dial(relay, self, node_key=key, expected_peer=relay_node)

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


class Put(_Request):
    """One deposit attempt: ``put`` an outbox entry, wait for ``stored``."""

    def __init__(self, user: UserNode, entry: MemoryOutboxEntry) -> None:
        self._entry = entry
        sent = user.durable.sent.get(entry.message_id)
        super().__init__(user, entry.relay, None if sent is None else sent.relay_node)

    def request(self) -> bytes:
        return self._client.put(self._entry.mailbox, self._entry.envelope)

    def answered(self, reply: object) -> bool:
        if not isinstance(reply, RelayStored):
            return False
        self._user._stored(self._entry)
        return True

    def failed(self, reason: str) -> None:
        self._user._put_failed(self._entry, reason)


class BundleFetch(_Request):
    """One ``pk_get`` for a device's prekey bundle."""

    def __init__(self, user: UserNode, device: DeviceAddress) -> None:
        self._device = device
        super().__init__(user, device.relay, device.relay_node)

    def request(self) -> bytes:
        return self._client.get_prekeys(bytes(self._device.mailbox))

    def answered(self, reply: object) -> bool:
        if not isinstance(reply, RelayPrekeyBundle):
            return False
        self._user._bundle_fetched(self._device, reply.bundle)
        return True

    def failed(self, reason: str) -> None:
        self._user._bundle_failed(self._device, reason)


class Fetcher:
    """The mailbox link: count and publish prekeys, fetch, (commit), ack, repeat."""

    def __init__(self, user: UserNode) -> None:
        self._user = user
        self._client = RelayClient()
        self._mailbox = bytes(user.durable.identity.mailbox_id)
        self._more = False
        self.state = "connecting"
        self._timer: Timer | None = user.after(user.params.request_timeout, self._timeout)
        self._link = user.dial(
            user.card.relay,
            self,
            node_key=user.durable.identity.mailbox_key,
            expected_peer=user.card.relay_node,
        )

    def refresh(self) -> None:
        """Top up prekeys if the relay runs low (checked now and then), then fetch."""
        if self._user._prekeys_due():
            self._request("counting", self._client.count_prekeys(self._mailbox))
        else:
            self.fetch()

    def fetch(self) -> None:
        self._request("fetching", self._client.fetch(self._mailbox, self._user.params.fetch_limit))

    def ack(self, ids: list[bytes], *, full: bool) -> None:
        if self._link.is_open:
            self._more = full
            self._request("acking", self._client.ack(self._mailbox, ids))

    def _request(self, state: str, data: bytes) -> None:
        self.state = state
        self._arm()
        self._link.send(data)

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._user.after(self._user.params.request_timeout, self._timeout)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def on_open(self, link: SimLink) -> None:
        self.refresh()

    def on_message(self, link: SimLink, data: bytes) -> None:
        self._disarm()
        try:
            reply = self._client.receive(data)
        except RelayProtocolError:
            self._fail("refused")
            return
        if isinstance(reply, RelayPrekeysHeld) and self.state == "counting":
            upload = self._user._prekeys_held(reply.count)
            if upload is None:
                self.fetch()
            else:
                last, one_time, replace = upload
                put = self._client.put_prekeys(self._mailbox, last, one_time, replace=replace)
                self._request("publishing", put)
        elif isinstance(reply, RelayPrekeysHeld):
            self._user.observe("prekeys_stored", held=reply.count)
            self.fetch()
        elif isinstance(reply, RelayBatch) and reply.items:
            self.state = "committing"
            self._user._receive_batch(self, reply)
        elif isinstance(reply, RelayBatch | RelayAcked):
            self.state = "idle"
            if isinstance(reply, RelayAcked) and self._more:
                self.fetch()

    def on_closed(self, link: SimLink, reason: str) -> None:
        self._fail(reason)

    def _timeout(self) -> None:
        self._fail("timeout")

    def _fail(self, reason: str) -> None:
        self._disarm()
        self._link.abort()
        self._user._session_ended(self, reason)
