"""Stealth-payment calls of the node API, mixed into :class:`~dchat_sdk.RemoteClient`.

Each maps one route of ``/v1/stealth`` (the node's ``api/_stealth.py``,
docs/protocol.md §43) and returns its JSON object. A meta-address is the
``dchat-stealth:...`` text a recipient publishes; payments to it go to fresh
one-time accounts that nobody else can link to it or to each other.

Each payment a scan finds (asked for, or the node's background scan) is one
``stealth_received`` event (:attr:`Event.stealth`): ``account``, ``amount``,
``height``, ``identity`` (the node's identity or the burner that was paid: a
burner's card publishes its own meta-address, and the scan checks every live
burner's keys too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._conversations import PAY_TIMEOUT
from ._models import StealthPayment, StealthScan, StealthStatus, StealthSweep, shaped
from ._replies import obj

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("StealthCalls",)


class StealthCalls:
    """Publish a meta-address, pay one, scan for payments, sweep them."""

    # One API round trip (method, path, JSON body, query parameters): RemoteClient's.
    _call: Callable[..., Any]

    def stealth_address(self, peer: str | None = None) -> str:
        """This identity's stealth meta-address (``dchat-stealth:...``), to publish.

        With ``peer`` (a contact's name or id): the one published on that
        contact's verified card (``no_stealth_address`` if it publishes none).
        """
        params = None if peer is None else {"peer": peer}
        return str(obj(self._call("GET", "/v1/stealth/address", None, params))["meta_address"])

    def stealth_status(self) -> StealthStatus:
        """``{"scanned_to", "received", "scan_interval", "held_burners"}``: the node's last
        scanned block, the stealth payments found, the background scan's mean period in
        seconds (0: off), and the expired burners whose seed is kept for their funds
        (``[{"burner_id", "expired"}]``: sweep with ``identity=burner_id``; the next
        scan that finds them empty drops the seed)."""
        return shaped(self._call("GET", "/v1/stealth/status"), StealthStatus)

    def stealth_pay(self, to: str, amount: int, *, fee: int = 1) -> StealthPayment:
        """Pay ``amount`` to a fresh one-time account of ``to``: a meta-address, or a
        contact (name or id) whose verified card publishes one.

        Returns once committed and certified: ``{"account", "tx", "height", "amount"}``.
        """
        body = {"to": to, "amount": amount, "fee": fee}
        reply = self._call("POST", "/v1/stealth/pay", body, timeout=PAY_TIMEOUT)
        return shaped(reply, StealthPayment)

    def stealth_scan(self) -> StealthScan:
        """Scan new blocks for payments to this identity's meta-address.

        Returns ``{"scanned_to", "accounts": [{"account", "height", "balance",
        "identity"}], "stealth_balance"}`` (balances proven by the node's light
        client; ``identity``: ours, or the burner whose meta-address was paid).
        """
        reply = self._call("POST", "/v1/stealth/scan", None, timeout=PAY_TIMEOUT)
        return shaped(reply, StealthScan)

    def stealth_sweep(self, to: str, *, fee: int = 1, identity: str | None = None) -> StealthSweep:
        """Move every stealth balance found for our identity (or, with ``identity``,
        for that live burner, or an expired one whose seed is held) less ``fee`` each
        to the account ``to`` (hex).

        Sweeping several one-time accounts to one account links them on chain
        (a burner's and ours: the burner to us). Returns ``{"swept", "to", "txs"}``.
        """
        body: dict[str, Any] = {"to": to, "fee": fee}
        if identity is not None:
            body["identity"] = identity
        reply = self._call("POST", "/v1/stealth/sweep", body, timeout=2 * PAY_TIMEOUT)
        return shaped(reply, StealthSweep)
