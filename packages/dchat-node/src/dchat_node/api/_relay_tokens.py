"""A relay's paid blind tokens: the node's I/O around :class:`dchat_network.lowlevel.TokenShop`.

With ``[node.relay_tokens] enabled = true`` and ``currency_node`` set, a relay
sells tokens on its links (``tk_offer``, ``tk_buy``; protocol §40) and takes
them for deposits in place of proof of work. :class:`RelayTokenSales` (a task
beside the API, like the user's payment desk) builds the shop once the relay
holds its node key: the shop's state (sealed issuer keys, used payments,
spent tokens) is the database's ``TokenRepo``, read back at start-up. A
purchase's payment is read here, off the database worker: the chain's
``payref/<ref>`` record through the light client of
:class:`~._chain_link.ChainLink`, so only a transfer that a commit
certificate proves counts; the sale itself (payment recorded as used,
signatures) then runs in the database worker, in one transaction.

The relay's ``/v1/relay/status`` shows ``tokens``: sold, redeemed and refused
since start, spent in this epoch, the price and the payee.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from dchat_chain.lowlevel import decode_payment_record, payment_key
from dchat_core import NodeId
from dchat_network.lowlevel import TokenShop

from ._chain_link import ChainLink
from ._roles import relay_role

if TYPE_CHECKING:
    from .._runtime import Node

__all__ = ("RelayTokenSales", "token_status")

log = logging.getLogger("dchat.tokens")


class RelayTokenSales:
    """Sets up a relay's token sales (see the module docstring)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        config = node.config
        self._chain = ChainLink(
            node,
            "currency",
            lambda: (config.currency_node, config.currency_genesis),
            "chain_unreachable",
        )
        self.shop: TokenShop | None = None

    async def run(self) -> None:
        """Open the shop (a task beside the API; returns at once when not selling)."""
        config = self._node.config
        if config.role != "relay" or not config.relay_tokens.enabled:
            return
        if config.currency_node is None:
            log.warning("relay_tokens is enabled but currency_node is not set: no token sales")
            return
        role = relay_role(self._node)
        host, key = role.service, role.service.server.node_key
        assert key is not None  # the role started (with its node key) before the API
        redeemer = bytes(NodeId.derive(key.public_key.to_bytes()))
        now = role.clock.now()
        shop = TokenShop(config.relay_tokens, key, redeemer, role.store.db.tokens, now)
        await role.store.run(shop.load, now)
        host.payments = self.payment
        host.server.tokens = self.shop = shop
        log.info("selling tokens at %d each to %s", shop.settings.price, shop.payee.hex())

    async def payment(self, ref: bytes) -> tuple[bytes, int] | None:
        """The proven payment of reference ``ref``: ``(recipient, amount)``, or None."""
        key = payment_key(ref)
        read = await self._chain.verified(lambda r: r.read(f"/v1/chain/state/{key.hex()}", key))
        _, value, _ = read.result()
        if value is None:
            return None
        record = decode_payment_record(value)
        return record.recipient, record.amount


def token_status(shop: TokenShop | None, now: float) -> dict[str, Any] | None:
    """The ``tokens`` part of ``/v1/relay/status`` (None: no sales)."""
    if shop is None:
        return None
    return {
        **shop.counts,
        "epoch": shop.epoch(now),
        "spent_this_epoch": shop.spent_count(now),
        "price": shop.settings.price,
        "payee": shop.payee.hex(),
    }
