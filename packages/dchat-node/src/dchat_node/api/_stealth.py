"""Stealth payments on a user node: publish a meta-address, pay one, scan, sweep.

Routes (user role, bearer token like the rest of the API; docs/protocol.md §43):

* ``GET  /v1/stealth/address``: ``{"meta_address": "dchat-stealth:..."}``, the
  identity's meta-address (its stealth keys derive from the identity key; a
  new identity's contact card publishes it). ``?peer=NAME_OR_ID``: the one
  published on that contact's verified card (404 ``unknown_contact``, 409
  ``no_stealth_address``).
* ``POST /v1/stealth/pay {to, amount, fee?}``: pay ``amount`` from the identity's
  account to a fresh one-time account of ``to``: a meta-address, or a contact
  (name or id) whose card publishes one; answers once
  committed and certified: ``{"account", "tx", "height", "amount"}``. 409
  ``payment_failed`` if the chain refuses it.
* ``POST /v1/stealth/scan``: scan the committed blocks not scanned yet (each
  block's transactions checked against its certified header) and answer
  ``{"scanned_to", "accounts": [{"account", "height", "balance", "identity"}],
  "stealth_balance"}``, balances proven by the light client; ``identity``
  says whose meta-address was paid (the identity's id or a live burner's).
* ``POST /v1/stealth/sweep {to, fee?, identity?}``: move every balance found
  for the identity (or, with ``identity``, for that live burner; 404
  ``not_found`` else) less the fee to the account ``to`` (hex), each transfer
  signed by its one-time key: ``{"swept", "to", "txs"}``. Sweeping several
  to one account links them; a burner's and the identity's, their owner.
* ``GET  /v1/stealth/status``: ``{"scanned_to", "received", "scan_interval"}``,
  the last block scanned, the payments found, the background period (0: off).

Each scan (asked for, or about every ``stealth_scan_interval`` seconds in the
background when configured, each wait jittered by up to half the period)
checks the identity's keys and every live burner's in one pass over the
blocks, and hands its finds to
``UserMessaging.stealth``, which logs one ``stealth_received`` event per
payment (``account``, ``amount``, ``height``, ``identity``), once across
rescans and restarts. A destroyed burner's keys leave the scan with its
finds; ``DELETE /v1/burners/{id}`` refuses (409 ``unswept_funds``) while
the burner's one-time accounts hold a balance, unless ``?force=true``
(:meth:`StealthDesk.refuse_unswept`). An *expired* burner's seed stays in
the scan while its accounts may hold funds (``held_burners`` in the status;
:meth:`StealthDesk._settle_held` drops it once a scan finds them empty;
protocol §47).

The scan and the reads are dchat_chain's (``StealthScan``, ``StealthScanFile``,
the light reader); this module is their I/O through :class:`~._chain_link.ChainLink`.
The scan is kept in ``DATA_DIR/stealth.scan``, sealed under a key derived from
the identity key.
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Any

import trio
from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from dchat_chain import Transaction
from dchat_chain.lowlevel import (
    META_ADDRESS_PREFIX,
    StealthFormatError,
    StealthMetaAddress,
    StealthScanFile,
    account_key,
    scan_delay,
    stealth_payment,
)
from dchat_core import DchatError, IdentityId

from .._errors import NodeStateError
from ._chain_link import ChainLink
from ._roles import user_role

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.params import Depends

    from dchat_chain.lowlevel import StealthScan

    from .._runtime import Node

__all__ = ("add_stealth_routes",)

_MAX = 2**63 - 1
log = logging.getLogger("dchat_node.stealth")


class StealthPayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(min_length=1, max_length=200)
    amount: int = Field(ge=1, le=_MAX)
    fee: int = Field(default=1, ge=0, le=_MAX)


class SweepBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(pattern="^[0-9a-f]{64}$")
    fee: int = Field(default=1, ge=0, le=_MAX)
    identity: str | None = Field(default=None, min_length=1, max_length=128)


class StealthDesk:
    """The user node's stealth payments (see the module docstring)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        config = node.config
        self._chain = ChainLink(
            node,
            "currency",
            lambda: (config.currency_node, config.currency_genesis),
            "payment_failed",
        )
        self._lock = trio.Lock()  # one scan and one account's nonces at a time

    def _file(self) -> StealthScanFile:
        """The identity's own scan file, its keys alone (for the meta-address)."""
        key = user_role(self._node).user.identity.signing_key
        return StealthScanFile(self._node.config.data_dir / "stealth.scan", key.to_bytes())

    async def _ring_file(self) -> tuple[StealthScanFile, dict[bytes, str]]:
        """The scan file with every live burner's keys too, and every expired burner's
        whose seed is held (:meth:`_settle_held`); and owner label -> identity id."""
        role = user_role(self._node)
        burners = await role.burners.identities()
        held = await role.burners.with_book(lambda book: book.held())
        seeds = {bytes(i): b.signing_key.to_bytes() for i, b in burners.items()}
        seeds |= {bytes(i): key.to_bytes() for i, key in held.items()}
        key = role.user.identity.signing_key
        names = {b"": str(role.user.identity.identity_id)} | {o: str(IdentityId(o)) for o in seeds}
        path = self._node.config.data_dir / "stealth.scan"
        return StealthScanFile(path, key.to_bytes(), seeds), names

    def _owner(self, names: dict[bytes, str], identity: str | None) -> bytes:
        """The keyring label of ``identity`` (None: the node's own identity)."""
        if identity is None or identity == names[b""]:
            return b""
        try:
            label = bytes(IdentityId.parse(identity))
        except ValueError:
            label = b"?"
        if label not in names:
            raise NodeStateError("not_found", "no such identity or live burner here")
        return label

    async def address(self, peer: str | None) -> dict[str, Any]:
        """``GET /v1/stealth/address``."""
        if peer is None:
            return {"meta_address": self._file().keys.meta_address.to_text()}
        return {"meta_address": (await self._meta(peer)).to_text(), "peer": peer}

    async def _meta(self, to: str) -> StealthMetaAddress:
        """The meta-address ``to`` names: its text, or a contact's verified card's."""
        try:
            if to.startswith(META_ADDRESS_PREFIX):
                return StealthMetaAddress.from_text(to)
            u = user_role(self._node).user
            return StealthMetaAddress.from_bytes(await u.run(u.agent.contacts.stealth_address, to))
        except StealthFormatError as exc:
            raise NodeStateError("bad_key", f"to: {exc}") from None

    async def _next_nonce(self, account: bytes) -> int:
        doc = await self._chain.call("GET", f"/v1/chain/accounts/{account.hex()}")
        return int(doc.get("next_nonce", 0))  # a lie only gets the transfer refused

    async def pay(self, body: StealthPayBody) -> dict[str, Any]:
        """``POST /v1/stealth/pay``."""
        meta = await self._meta(body.to)
        key = user_role(self._node).user.identity.signing_key
        account, memo = stealth_payment(meta)
        transfer = {"to": account, "amount": body.amount, "stealth": memo.to_bytes()}
        async with self._lock:
            tx = Transaction.create(
                key, chain_id=self._chain.chain_id(), fee=body.fee, kind="transfer",
                nonce=await self._next_nonce(key.public_key.to_bytes()), body=transfer,
            )  # fmt: skip
            height = await self._chain.submit(tx)
        return {
            "account": account.hex(),
            "tx": tx.hash.hex(),
            "height": height,
            "amount": body.amount,
        }

    async def _scan(self) -> tuple[StealthScanFile, StealthScan, dict[bytes, str]]:
        file, names = await self._ring_file()
        exists = await trio.Path(file.path).exists()
        genesis = None if exists else self._chain.genesis()
        state = await trio.to_thread.run_sync(file.load, genesis)
        state.scan_to(int((await self._chain.call("GET", "/v1/chain/status"))["height"]))
        try:
            while (request := state.next_request()) is not None:
                answer = await self._chain.call("GET", request)
                # Certificates and matches are CPU work: off the event loop (under the lock).
                await trio.to_thread.run_sync(state.receive, answer)
        except DchatError as exc:
            if isinstance(exc, NodeStateError):
                raise
            raise NodeStateError(
                "chain_unreachable", f"answer refused: {type(exc).__name__}: {exc}"
            ) from None
        finally:
            await trio.to_thread.run_sync(file.save, state)
        finds = [(f.account, f.height, f.amount, names[f.owner]) for f in state.finds]
        u = user_role(self._node).user
        await u.logged(u.agent.stealth.record, state.height, finds, u.now())
        await self._settle_held(state)
        return file, state, names

    async def _settle_held(self, state: StealthScan) -> None:
        """Release the held seed of every expired burner whose accounts, scanned to the
        chain's height just now, hold nothing (a balance keeps it, however small)."""
        role = user_role(self._node)
        for burner_id in await role.burners.with_book(lambda book: list(book.held())):
            finds = state.finds_of(bytes(burner_id))
            if not [f for f in finds if await self._balance(f.account) > 0]:
                await self.release(str(burner_id), "empty")

    async def release(self, burner_id: str, reason: str) -> bool:
        """Delete an expired burner's held seed and tell the user (``burner_released``);
        whether it was held."""
        try:
            target = IdentityId.parse(burner_id)
        except ValueError:
            return False
        role = user_role(self._node)
        if not await role.burners.with_book(lambda book: book.release(target)):
            return False
        u = role.user
        await u.logged(u.agent.stealth.burner_released, burner_id, reason, u.now())
        return True

    async def _balance(self, account: bytes) -> int:
        key = account_key(account)
        read = await self._chain.verified(
            lambda r: r.read(f"/v1/chain/accounts/{account.hex()}", key)
        )
        value = read.result()[1]
        return 0 if value is None else int.from_bytes(value[:8])

    async def scan(self) -> dict[str, Any]:
        """``POST /v1/stealth/scan``."""
        async with self._lock:
            _, state, names = await self._scan()
            rows: list[dict[str, Any]] = []
            total = 0
            for find in state.finds:
                balance = await self._balance(find.account)
                rows.append({"account": find.account.hex(), "height": find.height})
                rows[-1].update(balance=balance, identity=names[find.owner])
                total += balance
        return {"scanned_to": state.height, "accounts": rows, "stealth_balance": total}

    async def sweep(self, body: SweepBody) -> dict[str, Any]:
        """``POST /v1/stealth/sweep``."""
        target = bytes.fromhex(body.to)
        swept, txs = 0, []
        async with self._lock:
            file, state, names = await self._scan()
            owner = self._owner(names, body.identity)
            for find in state.finds_of(owner):
                balance = await self._balance(find.account)
                if balance <= body.fee:
                    continue
                one_time = file.keyring[owner].spending_key(find.account, find.memo)
                tx = Transaction.create(
                    one_time, chain_id=self._chain.chain_id(), fee=body.fee, kind="transfer",
                    nonce=await self._next_nonce(find.account),
                    body={"to": target, "amount": balance - body.fee},
                )  # fmt: skip
                await self._chain.submit(tx)
                swept += balance - body.fee
                txs.append(tx.hash.hex())
        return {"swept": swept, "to": target.hex(), "txs": txs}

    async def refuse_unswept(self, burner_id: str) -> None:
        """Refuse to destroy a burner whose one-time accounts hold a balance (a scan
        first): its keys, the only ones that can move the funds, would go with it.

        Raises:
            NodeStateError: ``unswept_funds``; ``chain_unreachable`` (the chain
                could not say: destroy with force, or try again).
        """
        if self._node.config.currency_node is None:
            return  # no chain to scan: nothing can have been found
        async with self._lock:
            _, state, names = await self._scan()
            try:
                owner = self._owner(names, burner_id)
            except NodeStateError:
                return  # not a live burner: destroying it says why
            held = [await self._balance(f.account) for f in state.finds_of(owner)]
        if owner and sum(held) > 0:
            raise NodeStateError(
                "unswept_funds",
                f"the burner's stealth accounts hold {sum(held)}: sweep them "
                "(POST /v1/stealth/sweep with its identity) or destroy it with force",
            )

    async def status(self) -> dict[str, Any]:
        """``GET /v1/stealth/status``."""
        role = user_role(self._node)
        found = await role.user.run(role.user.agent.stealth.status)
        held = await role.burners.with_book(lambda book: book.held_rows())
        interval = self._node.config.stealth_scan_interval
        return {**found, "scan_interval": interval, "held_burners": held}

    async def status_part(self) -> dict[str, Any]:
        """``{"stealth": status}`` on a user node, else ``{}`` (a part of ``GET /status``)."""
        return {"stealth": await self.status()} if self._node.config.role == "user" else {}

    async def run(self) -> None:
        """Scan about every ``stealth_scan_interval`` seconds, each wait drawn from half to
        one and a half times it (a task; off at 0 or without a chain)."""
        config = self._node.config
        period = config.stealth_scan_interval
        if config.role != "user" or config.currency_node is None or period <= 0:
            return
        rng = random.SystemRandom()
        while True:
            await trio.sleep(scan_delay(period, rng))  # jittered: no fixed rhythm to see
            if not user_role(self._node).user.has_identity:
                continue
            try:
                async with self._lock:
                    await self._scan()
            except DchatError as exc:  # the chain node is down or lies: next round
                log.info("background stealth scan: %s", type(exc).__name__)


def add_stealth_routes(app: FastAPI, node: Node, auth: list[Depends]) -> StealthDesk:
    """Install the ``/v1/stealth`` routes on ``app``; the desk's :meth:`~StealthDesk.run`
    is the background scan (``serve_api`` runs it)."""
    desk = StealthDesk(node)

    @app.get("/v1/stealth/address", dependencies=auth)
    async def address(peer: str | None = Query(default=None, max_length=128)) -> dict[str, Any]:
        return await desk.address(peer)

    @app.get("/v1/stealth/status", dependencies=auth)
    async def status() -> dict[str, Any]:
        return await desk.status()

    @app.post("/v1/stealth/pay", dependencies=auth)
    async def pay(body: StealthPayBody) -> dict[str, Any]:
        return await desk.pay(body)

    @app.post("/v1/stealth/scan", dependencies=auth)
    async def scan() -> dict[str, Any]:
        return await desk.scan()

    @app.post("/v1/stealth/sweep", dependencies=auth)
    async def sweep(body: SweepBody) -> dict[str, Any]:
        return await desk.sweep(body)

    return desk
