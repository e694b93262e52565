"""Anchored groups' chain work on a user node: commit the order, check it (a task).

The logic is dchat-messaging's (``Groups.anchors``, sans-IO) and
dchat-chain's (order keys and records, the light reader); this module is its
I/O over the configured chat chain (``chat_node``, :class:`~._chain_link.ChainLink`):

* as the sequencer of a group (an admin's primary node, ``GroupState.sequencer``):
  register the identity on the chain if needed, create the group's channel
  (its owner), give the other admins the channel's admin role, read the
  channel's next number, commit ``commit_order`` for the due batch
  (``group_anchor_batch`` messages or ``group_anchor_interval`` seconds) and
  send the signed list to the members;
* as any member: read the chain's record of every received list's range
  through the light client (a proof against a certified header) and settle it;
* as the sequencer after a crash or a chain that did not answer: commit
  again a list of ours the chain still lacks while its range is the
  channel's next (the same signed list), and send one the chain holds but
  the members never got (``GroupAnchors.resends``).

A chain that is down or lies only delays anchoring: lists wait, and a
refused batch's messages go into the next one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

import trio

from dchat_chain.lowlevel import (
    HandleOwner,
    channel_key,
    decode_channel_next,
    decode_order_record,
    order_key,
)
from dchat_core import DchatError
from dchat_messaging.lowlevel import OrderBatch

from .._errors import NodeStateError
from ._chain_link import ChainLink
from ._roles import user_role

if TYPE_CHECKING:
    from dchat_chain import Transaction
    from dchat_messaging.lowlevel import AnchorJob, AnchorResend

    from .._runtime import Node
    from ..user._service import UserService

__all__ = ("GroupAnchorDesk",)

log = logging.getLogger("dchat.groups")
ROUND: Final = 1.0  # seconds between rounds (at most; the batch interval may be shorter)


class GroupAnchorDesk:
    """The chain side of anchored groups (see the module docstring)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        config = node.config
        self._chain = ChainLink(
            node, "chat", lambda: (config.chat_node, config.chat_genesis), "anchor_refused"
        )
        self._refused: set[tuple[bytes, bytes]] = set()  # grants the chain refused (this run)
        self._started = False  # a round has run since the node started

    async def run(self) -> None:
        """Sequence and check anchored groups until cancelled (a task; user role with a chain)."""
        config = self._node.config
        if config.role != "user" or config.chat_node is None:
            return
        while True:
            try:
                await self.round()
            except (DchatError, KeyError, TypeError, ValueError) as exc:
                log.info("group order not anchored yet: %s: %s", type(exc).__name__, exc)
            await trio.sleep(min(ROUND, config.group_anchor_interval))

    async def round(self) -> None:
        """One pass: every due batch committed, every waiting list checked."""
        u = user_role(self._node).user
        if not u.has_identity:
            return
        config, anchors = self._node.config, u.agent.groups.anchors
        jobs = await u.run(
            anchors.jobs, u.now(), count=config.group_anchor_batch,
            interval=config.group_anchor_interval,
        )  # fmt: skip
        for job in jobs:
            await self._sequence(u, job)
        for gid, channel, first in await u.run(anchors.checks):
            value = await self._read(order_key(channel, first))
            if value is None:
                continue  # not on the chain (yet): the list waits
            r = decode_order_record(value)
            chain = (r.last, r.root, r.by, r.height)
            await u.act(anchors.settle, gid, channel, first, chain)
        resends = await u.run(
            anchors.resends, u.now(), interval=config.group_anchor_interval,
            restarted=not self._started,
        )  # fmt: skip
        self._started = True
        for resend in resends:
            await self._resend(u, resend)

    async def _read(self, key: bytes) -> bytes | None:
        read = await self._chain.verified(lambda r: r.read(f"/v1/chain/state/{key.hex()}", key))
        value: bytes | None = read.result()[1]
        return value

    async def _sequence(self, u: UserService, job: AnchorJob) -> None:
        owner = HandleOwner(u.identity.signing_key, self._chain.genesis())
        nonce = await self._nonce(owner)
        txs: list[Transaction] = []
        if await self._read(b"id/" + owner.identity) is None:
            document = (await user_role(self._node).documents.head()).to_bytes()
            txs.append(await trio.to_thread.run_sync(owner.registration, nonce, document))
        channel = await self._read(channel_key(job.channel))
        if channel is None and job.owner != owner.identity:
            return  # the owner's node has not created the channel yet
        if channel is None:
            body: dict[str, Any] = {"name": job.group.hex()}
            txs.append(owner.transaction(nonce + len(txs), "create_channel", body))
        for tx in txs:
            await self._chain.submit(tx)
        nonce += len(txs)
        for who in job.grant:
            if (job.group, who) in self._refused:
                continue
            body = {"channel": job.channel, "member": who, "role": 2}
            try:
                await self._chain.submit(owner.transaction(nonce, "set_role", body))
                nonce += 1
                await u.run(u.agent.groups.anchors.granted, job.group, who)
            except NodeStateError as exc:
                self._refused.add((job.group, who))  # e.g. not registered on the chain
                log.info("channel admin role not given: %s", exc.code)
                nonce = await self._nonce(owner)
        if job.entries:
            await self._commit(u, owner, job, nonce)

    async def _nonce(self, owner: HandleOwner) -> int:
        account = await self._chain.call("GET", f"/v1/chain/accounts/{owner.public_key.hex()}")
        return int(account.get("next_nonce", 0))

    async def _commit(self, u: UserService, owner: HandleOwner, job: AnchorJob, nonce: int) -> None:
        value = await self._read(channel_key(job.channel))
        first = 0 if value is None else decode_channel_next(value)
        anchors = u.agent.groups.anchors
        batch = await u.run(anchors.propose, job, first, now=u.now())
        body = {"channel": job.channel, "first": first, "last": batch.last, "root": batch.root()}
        try:
            await self._chain.submit(owner.transaction(nonce, "commit_order", body))
        except NodeStateError as exc:
            if exc.code == "anchor_refused":  # the chain will not take it: re-batched
                await u.run(anchors.abandon, job.group, first)
            log.info("group order batch not committed: %s", exc.code)  # else: resent later
            return
        await u.act(anchors.publish, batch.to_bytes())

    async def _resend(self, u: UserService, resend: AnchorResend) -> None:
        anchors = u.agent.groups.anchors
        if not resend.commit:
            await u.act(anchors.publish, resend.batch)
            return
        value = await self._read(channel_key(resend.channel))  # the next, then the record
        next_first = 0 if value is None else decode_channel_next(value)
        if await self._read(order_key(resend.channel, resend.first)) is not None:
            return  # on the chain after all: settled and sent next round
        if not await u.run(anchors.retry, resend.group, resend.batch, next_first, u.now()):
            return
        batch = OrderBatch.from_bytes(resend.batch)
        owner = HandleOwner(u.identity.signing_key, self._chain.genesis())
        body = {"channel": batch.channel, "first": batch.first, "last": batch.last}
        body["root"] = batch.root()
        try:
            tx = owner.transaction(await self._nonce(owner), "commit_order", body)
            await self._chain.submit(tx)
        except NodeStateError as exc:
            log.info("group order batch not committed again: %s", exc.code)
            return
        await u.act(anchors.publish, resend.batch)
