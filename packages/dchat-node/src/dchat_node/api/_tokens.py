"""Paid blind tokens on a user node: buy them from a relay, spend them on deposits there.

Routes (user role, bearer token like the rest of the API):

* ``POST /v1/tokens {relay, count, fee?}``: buy ``count`` tokens from the
  relay ``[NODEID@]HOST:PORT``: read its signed offer (protocol §40) on a
  fresh link (checked against the key the link proved, and the pinned node
  id if given), blind ``count`` token messages bound to that relay, pay
  ``price * count`` to the offer's payee on the currency chain with the
  transfer ``ref`` binding the blinded request, wait until the transfer is
  committed and certified, then ask for the blind signatures and keep the
  unblinded tokens. Answers ``{"relay", "bought", "paid", "tx", "held"}``.
  Typed refusals: 409 with the relay's code (``unpaid``, ``underpaid``,
  ``unknown_key``, ``expired``, ...), ``payment_failed``, ``no_chain``,
  ``chain_unreachable``, ``bad_offer``, ``pending`` (paid, not yet signed: see
  below), ``too_many_pending``, 422 ``too_many``.
* ``GET /v1/tokens``: the tokens held, per relay and key epoch, and the
  purchases waiting: ``{"total": n, "relays": [{"relay": "HOST:PORT",
  "node_id", "count", "epochs": {...}}], "pending": [{"relay", "paid", "tx", "since"}]}``.
  ``GET /status`` has ``tokens`` ``{"held": n, "relays": {"HOST:PORT": n}, "pending": n}``.

The tokens are kept (sealed at rest) in the node's settings table. The node's
deposits use them on their own: when a relay asks for proof of work, a
token for that relay (if one is held) is attached instead of solving it
(:attr:`dchat_network.lowlevel.PutAuthClient.paid`). A token taken for a
deposit is dropped from the wallet at once; the wallet is written back
within a second (a crash in between may offer a spent token again: the
relay answers ``spent`` and the deposit falls back to work).

A purchase survives the relay or this node going down between payment and
signing: before paying, the desk records the request and its blinding
secrets (:class:`dchat_network.lowlevel.TokenPurchases`, sealed in the
settings table); if the answer does not come within the request (three
tries), ``POST /v1/tokens`` answers 409 ``pending`` and the node asks the
relay again every ``RETRY_EVERY`` seconds, also after a restart, until the
tokens come (the relay sends the same signatures again: never a second
sale) or a final refusal or a week gives it up (logged). ``GET /v1/tokens``
lists such purchases under ``pending``; ``/status`` counts them.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Final

import trio
from pydantic import BaseModel, ConfigDict, Field

from dchat_chain import Transaction
from dchat_core import (
    DchatError,
    DecodeError,
    DecodeLimits,
    NodeId,
    RelayAddress,
    canonical_decode,
    canonical_encode,
)
from dchat_network import RelayProtocolError, relay_session
from dchat_network.lowlevel import (
    PendingPurchase,
    PurchaseBookError,
    TokenOffer,
    TokenPurchases,
    TokenSaleError,
    buy_request,
    purchase_ref,
)
from dchat_privacy import PendingTokens, TokenError, TokenWallet

from .._errors import NodeStateError
from ._chain_link import ChainLink
from ._roles import user_role

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.params import Depends

    from dchat_privacy import Token

    from .._runtime import Node
    from ..user._service import UserService

__all__ = ("TokenDesk", "add_token_routes")

log = logging.getLogger("dchat.tokens")

WALLET_KEY: Final = "tokens.wallets"
PENDING_KEY: Final = "tokens.pending"
SAVE_EVERY: Final = 1.0
RETRY_EVERY: Final = 30.0
BUY_TRIES: Final = 3
_LIMITS: Final = DecodeLimits(max_size=4 * 1024 * 1024, max_depth=2, max_items=4096)


class BuyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    relay: str = Field(min_length=3, max_length=300)
    count: int = Field(ge=1, le=64)
    fee: int = Field(default=1, ge=0, le=2**63 - 1)


class TokenDesk:
    """The user node's paid tokens (see the module docstring)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        config = node.config
        self._chain = ChainLink(
            node,
            "currency",
            lambda: (config.currency_node, config.currency_genesis),
            "payment_failed",
        )
        self._wallets: dict[str, TokenWallet] | None = None
        self._purchases: TokenPurchases | None = None
        self._ids: dict[str, str] = {}  # relay HOST:PORT -> its node id (as bought)
        self._dirty = False
        self._lock = trio.Lock()  # one purchase (one transfer nonce) at a time

    @property
    def _user(self) -> UserService:
        return user_role(self._node).user

    async def _load(self) -> dict[str, TokenWallet]:
        if self._wallets is None:
            blob = await self._user.state_get(WALLET_KEY)
            self._wallets = {}
            if blob is not None:
                try:
                    stored = canonical_decode(blob, _LIMITS)
                    for relay, (node_id, wallet) in stored.items():
                        self._wallets[relay] = TokenWallet.from_bytes(wallet)
                        self._ids[relay] = node_id
                except (DecodeError, TokenError, ValueError, TypeError) as exc:
                    log.warning("token wallet unreadable, starting empty: %s", exc)
        return self._wallets

    async def _book(self) -> TokenPurchases:
        if self._purchases is None:
            blob = await self._user.state_get(PENDING_KEY)
            try:
                self._purchases = TokenPurchases.from_bytes(blob) if blob else TokenPurchases()
            except PurchaseBookError as exc:
                log.warning("pending token purchases unreadable: %s", exc)
                self._purchases = TokenPurchases()
        return self._purchases

    async def _save_book(self) -> None:
        book = await self._book()
        for purchase, why in book.given_up:
            log.warning(
                "token purchase at %s given up (%s): tx %s", purchase.relay, why, purchase.tx
            )
        book.given_up.clear()
        await self._user.state_put(PENDING_KEY, book.to_bytes())

    async def _save(self) -> None:
        wallets = await self._load()
        self._dirty = False
        blob = {r: [self._ids.get(r, ""), w.to_bytes()] for r, w in wallets.items()}
        await self._user.state_put(WALLET_KEY, canonical_encode(blob))

    def take(self, relay: str) -> bytes | None:
        """One token's redemption for the relay ``HOST:PORT`` (removed), or None."""
        wallet = (self._wallets or {}).get(relay)
        if wallet is None or not len(wallet):
            return None
        try:
            redeemer = bytes(NodeId.parse(self._ids[relay]))
        except (KeyError, DchatError):
            return None
        token = wallet.take(redeemer, oldest_epoch=0)
        if token is None:
            return None
        self._dirty = True
        return token.redemption()

    async def run(self) -> None:
        """Hand the wallet to the node's deposits and write it back when spent (a task)."""
        if self._node.config.role != "user":
            return
        await self._load()
        self._user.pool.auth.paid = self.take
        retry_at = trio.current_time()  # purchases left unfinished by the last run: at once
        while True:
            await trio.sleep(SAVE_EVERY)
            if self._dirty:
                try:
                    await self._save()
                except DchatError as exc:
                    log.warning("token wallet not saved: %s", type(exc).__name__)
            if trio.current_time() >= retry_at:
                retry_at = trio.current_time() + RETRY_EVERY
                try:
                    async with self._lock:
                        await self._finish_pending()
                except DchatError as exc:
                    log.warning("pending token purchases not retried: %s", type(exc).__name__)

    async def _finish_pending(self) -> None:
        """Ask the relays again for the signatures of paid purchases still waiting."""
        book = await self._book()
        for purchase in book.due(time.time()):
            try:
                where = RelayAddress.parse(purchase.relay)
                answer = await self._ask(where, purchase.request)
                tokens = PendingTokens.from_bytes(purchase.pending).finalize(answer)
            except RelayProtocolError as exc:
                book.refused(purchase.ref, exc.code)
                continue
            except TokenError as exc:  # a bad answer (or state): nothing more to ask for
                book.refused(purchase.ref, exc.code)
                continue
            except (OSError, DchatError):  # unreachable: later
                continue
            await self._keep(where, tokens)
            book.finish(purchase.ref)
            log.info("token purchase from %s finished: %d tokens", purchase.relay, len(tokens))
        await self._save_book()

    async def _keep(self, where: RelayAddress, tokens: list[Token]) -> int:
        """Add bought ``tokens`` to the wallet of relay ``where`` and save it; how many it holds."""
        relay = f"{where.host}:{where.port}"
        wallets = await self._load()
        wallets.setdefault(relay, TokenWallet()).add(tokens)
        self._ids[relay] = str(NodeId(tokens[0].redeemer))
        await self._save()
        return len(wallets[relay])

    @staticmethod
    async def _ask(where: RelayAddress, request: bytes) -> bytes:
        async with relay_session(where.host, where.port, expected_peer=where.node) as session:
            return await session.token_buy(request)

    # -- buying -----------------------------------------------------------------------------

    async def buy(self, body: BuyBody) -> dict[str, Any]:
        """``POST /v1/tokens``."""
        try:
            where = RelayAddress.parse(body.relay)
        except DchatError:
            raise NodeStateError("bad_relay", "give the relay as [NODEID@]HOST:PORT") from None
        relay = f"{where.host}:{where.port}"
        async with self._lock:
            try:
                tokens, paid, tx = await self._buy(where, body)
            except (TokenSaleError, TokenError) as exc:
                raise NodeStateError(exc.code, str(exc)) from None
            except RelayProtocolError as exc:
                raise NodeStateError(exc.code or "relay_refused", str(exc)) from None
            held = await self._keep(where, tokens)
        return {"relay": relay, "bought": len(tokens), "paid": paid, "tx": tx, "held": held}

    async def _buy(self, where: RelayAddress, body: BuyBody) -> tuple[list[Token], int, str]:
        u = self._user
        async with relay_session(where.host, where.port, expected_peer=where.node) as session:
            relay_key = session.link.peer_key.to_bytes()
            offer = TokenOffer.from_bytes(await session.token_offer(), relay_key)
        if body.count > offer.max_count:
            raise TokenSaleError("too_many", f"this relay sells at most {offer.max_count}")
        redeemer = bytes(NodeId.derive(relay_key))
        request, pending = buy_request(offer.key, redeemer, body.count)
        amount = offer.price * body.count
        transfer = {"to": offer.payee, "amount": amount, "ref": purchase_ref(request)}
        payer = u.identity.signing_key.public_key.to_bytes().hex()
        account = await self._chain.call("GET", f"/v1/chain/accounts/{payer}")
        tx = Transaction.create(
            u.identity.signing_key, chain_id=self._chain.chain_id(),
            nonce=int(account.get("next_nonce", 0)), fee=body.fee, kind="transfer", body=transfer,
        )  # fmt: skip
        # Recorded before paying: if the answer never comes, the purchase is finished later.
        book, ref = await self._book(), purchase_ref(request)
        pinned = RelayAddress(where.host, where.port, NodeId(redeemer))
        purchase = PendingPurchase(
            str(pinned), ref, request.to_bytes(), pending.to_bytes(), amount, tx.hash.hex(),
            int(time.time()),
        )  # fmt: skip
        try:
            book.add(purchase)
        except OverflowError:
            raise NodeStateError("too_many_pending", "64 purchases wait for their tokens") from None
        await self._save_book()
        try:
            await self._chain.submit(tx)
        except NodeStateError as exc:
            if exc.code == "payment_failed":  # refused by the chain: nothing was paid
                book.finish(ref)
                await self._save_book()
            raise
        for attempt in range(BUY_TRIES):
            try:
                answer = await self._ask(pinned, request.to_bytes())
                tokens = pending.finalize(answer)
            except RelayProtocolError as exc:
                if not book.refused(ref, exc.code):
                    await self._save_book()
                    raise
            except (OSError, DchatError):
                pass  # the relay is unreachable: retried below, then in the background
            else:
                book.finish(ref)
                await self._save_book()
                return tokens, amount, tx.hash.hex()
            if attempt < BUY_TRIES - 1:
                await trio.sleep(1.0 + attempt)  # the relay's light client may lag a block
        raise NodeStateError(
            "pending", "paid; the relay has not signed yet: the node keeps asking (dchat tokens)"
        )

    async def status(self) -> dict[str, Any]:
        """The ``tokens`` part of a user node's ``/status``: held in all, per relay."""
        if self._node.config.role != "user":
            return {}
        try:
            wallets = await self._load()
        except DchatError:
            return {}
        held = {relay: len(wallet) for relay, wallet in sorted(wallets.items())}
        waiting = len(await self._book())
        return {"tokens": {"held": sum(held.values()), "relays": held, "pending": waiting}}

    async def listing(self) -> dict[str, Any]:
        """``GET /v1/tokens``."""
        wallets = await self._load()
        relays = []
        for relay, wallet in sorted(wallets.items()):
            node_id = self._ids.get(relay, "")
            tokens = TokenWallet.from_bytes(wallet.to_bytes())
            epochs: Counter[int] = Counter()
            while (token := tokens.take(bytes(NodeId.parse(node_id)), oldest_epoch=0)) is not None:
                epochs[token.epoch] += 1
            relays.append(
                {
                    "relay": relay,
                    "node_id": node_id,
                    "count": len(wallet),
                    "epochs": {str(e): n for e, n in sorted(epochs.items())},
                }
            )
        pending = (await self._book()).listing()
        return {"total": sum(r["count"] for r in relays), "relays": relays, "pending": pending}


def add_token_routes(app: FastAPI, node: Node, auth: list[Depends]) -> TokenDesk:
    """Install the token routes on ``app``; returns the desk (its task runs beside the API)."""
    desk = TokenDesk(node)

    @app.post("/v1/tokens", dependencies=auth)
    async def buy(body: BuyBody) -> dict[str, Any]:
        user_role(node)
        return await desk.buy(body)

    @app.get("/v1/tokens", dependencies=auth)
    async def tokens() -> dict[str, Any]:
        user_role(node)
        return await desk.listing()

    return desk
