"""Guardian recovery's chain side on a user node: keep the chat chain's identity record in step.

The logic is dchat-chain's (:class:`~dchat_chain.lowlevel.RecoveryChain` plans
each step from verified records, :class:`~dchat_chain.lowlevel.RecoveryChainBook`
keeps states, errors and retry times); this module is its I/O over the
configured chat chain (``chat_node``, :class:`~._chain_link.ChainLink`). Each
round derives the tasks from the guardian and recovery agents' stored state:

* our guardian set (after ``POST /v1/guardians``): the chain's ``g``/``th``,
  registering the identity with it if it is not on the chain;
* each request we approved as a guardian: ``recovery_request`` or
  ``recovery_approve`` with our key;
* each alert we vetoed as the owner: ``recovery_veto`` with our key while the
  chain holds that request;
* a finished recovery (we hold the new key): ``recovery_execute`` once the
  chain's request has its approvals and its time lock ended, then
  ``renew_handle`` with our card if the identity holds a handle (which
  becomes this node's own handle, ``GET /v1/handle``).

Failures (a chain that does not answer, a refused transaction) are kept and
retried with a growing delay, and every task's chain state shows in the
guardian and recovery answers under ``chain``. Without a chat chain the node
does none of this (and the answers carry no ``chain``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

import trio

from dchat_chain.lowlevel import RecoveryChain, RecoveryChainBook, RecoveryTask
from dchat_core import DchatError, IdentityId
from dchat_identity.lowlevel import GUARDIAN_STATE, RECOVERY_STATE, GuardianAgent, RecoveryAgent

from .._errors import NodeStateError
from ._chain_link import ChainLink
from ._handles import OWN_HANDLE
from ._roles import user_role

if TYPE_CHECKING:
    from typing import Literal

    from dchat_chain.lowlevel import ChainStep

    from .._runtime import Node
    from ..user._documents import DocumentService
    from ..user._service import UserService

__all__ = ("RecoveryChainDesk",)

log = logging.getLogger("dchat.recovery")
BOOK: Final = "recovery.chain"  # settings key: the RecoveryChainBook
ROUND: Final = 1.0  # seconds between rounds at most (a guardian API call wakes it at once)


def request_task(row: dict[str, Any], role: Literal["approval", "veto"]) -> RecoveryTask:
    """The ``approval`` (a guardian's request row) or ``veto`` (an owner's alert) task."""
    return RecoveryTask(
        role,
        bytes(IdentityId.parse(row["subject"])),
        bytes.fromhex(row["new_key"]),
        until_ms=round(row["expires"] * 1000),
    )


class RecoveryChainDesk:
    """The chain side of guardian recovery (see the module docstring)."""

    def __init__(self, node: Node, chain: ChainLink | None = None) -> None:
        self._node = node
        config = node.config
        self._chain = chain or ChainLink(
            node, "chat", lambda: (config.chat_node, config.chat_genesis), "recovery_refused"
        )
        self._wake = trio.Event()
        self._lock = trio.Lock()  # one round at a time (the task's, or none)

    @property
    def configured(self) -> bool:
        """Whether a chat chain is configured (else recovery stays between nodes)."""
        return self._node.config.chat_node is not None

    def wake(self) -> None:
        """Start the next round now (a guardian step may have made a task)."""
        self._wake.set()

    async def run(self) -> None:
        """Keep the chain in step until cancelled (a task; user role with a chat chain)."""
        if self._node.config.role != "user" or not self.configured:
            return
        while True:
            try:
                await self.round()
            except (DchatError, KeyError, TypeError, ValueError) as exc:
                log.info("recovery chain round failed: %s: %s", type(exc).__name__, exc)
            with trio.move_on_after(ROUND):
                await self._wake.wait()
            self._wake = trio.Event()

    async def tasks(self, u: UserService) -> list[RecoveryTask]:
        """What the chain must come to hold, from the agents' stored state."""
        agent = GuardianAgent({key: await u.state_get(key) for key in GUARDIAN_STATE})
        tasks = []
        gset = agent.own_set()
        if gset is not None:
            keys = tuple(g.identity_key.to_bytes() for g in gset.guardians)
            own = RecoveryTask(
                "guardians", bytes(gset.subject), guardians=keys, threshold=gset.threshold
            )
            tasks.append(own)
        approved = [r for r in agent.requests() if r["status"] == "approved"]
        vetoed = [r for r in agent.describe()["alerts"] if r["status"] == "vetoed"]
        tasks += [request_task(r, "approval") for r in approved]
        tasks += [request_task(r, "veto") for r in vetoed]
        recovery = RecoveryAgent(await u.state_get(RECOVERY_STATE)).status(now=u.now())
        if recovery["state"] == "done":
            subject = bytes(IdentityId.parse(recovery["subject"]))
            key = u.identity.signing_key.public_key.to_bytes()
            tasks.append(RecoveryTask("execution", subject, key))
        return tasks

    async def round(self) -> None:
        """One pass over the due tasks."""
        role = user_role(self._node)
        await self.step(role.user, role.documents)

    async def step(self, u: UserService, documents: DocumentService) -> None:
        """One pass over ``u``'s due tasks (``documents`` gives a registration's document)."""
        if not u.has_identity:
            return
        async with self._lock:
            tasks = await self.tasks(u)
            book = RecoveryChainBook(await u.state_get(BOOK))
            try:
                for task in book.due(tasks, _ms(u)):
                    try:
                        step = await self._attempt(u, documents, task)
                    except NodeStateError as exc:
                        book.failed(task, exc.code, str(exc), _ms(u))
                    except DchatError as exc:  # a light-client refusal of an answer
                        book.failed(task, "chain_answer", type(exc).__name__, _ms(u))
                    else:
                        book.stepped(task, step, _ms(u))
                        log.info("recovery on the chain: %s %s", task.role, step.state)
            finally:
                if book.changed:
                    await u.state_put(BOOK, book.to_bytes())

    async def _attempt(
        self, u: UserService, documents: DocumentService, task: RecoveryTask
    ) -> ChainStep:
        planner = RecoveryChain(u.identity.signing_key, self._chain.genesis())
        values: dict[bytes, bytes | None] = {}
        height = 0
        while keys := planner.missing(task, values):
            for key in keys:
                path = f"/v1/chain/state/{key.hex()}"
                read = await self._chain.verified(lambda r, p=path, k=key: r.read(p, k))
                _, values[key], proven = read.result()
                height = max(height, proven)
        account = await self._chain.call("GET", f"/v1/chain/accounts/{planner.public_key.hex()}")
        nonce, now_ms = int(account.get("next_nonce", 0)), _ms(u)
        document = b""
        if task.role in ("guardians", "approval"):  # a registration records its hash
            document = (await documents.head()).to_bytes()
        card = u.card.to_bytes()  # an execution renews the handle with it
        step = await trio.to_thread.run_sync(
            lambda: planner.plan(
                task, values, nonce=nonce, now_ms=now_ms, document=document, card=card,
                height=height,
            )
        )  # fmt: skip
        for tx in step.txs:  # in order: a registration comes before the act
            await self._chain.submit(tx)
        if step.handle:  # the recovered identity's handle is ours now (GET /v1/handle)
            await u.state_put(OWN_HANDLE, step.handle.encode())
        return step

    # -- what the answers show -------------------------------------------------------------

    async def _book(self) -> RecoveryChainBook:
        return RecoveryChainBook(await user_role(self._node).user.state_get(BOOK))

    async def guardians(self, report: dict[str, Any]) -> dict[str, Any]:
        """``report`` (``GET /v1/guardians``) with the chain state of our set and vetoes."""
        if not self.configured or not user_role(self._node).user.has_identity:
            return report
        book = await self._book()
        for alert in report["alerts"]:
            if alert["status"] == "vetoed":
                alert["chain"] = book.view(request_task(alert, "veto"))
        u = user_role(self._node).user
        own = [t for t in await self.tasks(u) if t.role == "guardians"]
        return {**report, "chain": book.view(own[0]) if own else None}

    async def requests(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Request rows (``GET /v1/guardians/requests``) with our approvals' chain state."""
        if not self.configured:
            return rows
        book = await self._book()
        return [
            {**r, "chain": book.view(request_task(r, "approval"))}
            if r["status"] == "approved"
            else r
            for r in rows
        ]

    async def recovery(self, status: dict[str, Any]) -> dict[str, Any]:
        """A recovery status (``GET /v1/recovery``) with its chain step's state."""
        if not self.configured or status["state"] == "none":
            return status
        if status["state"] != "done":
            return {**status, "chain": {"state": "after_finish", "done": False}}
        u = user_role(self._node).user
        key = u.identity.signing_key.public_key.to_bytes()
        task = RecoveryTask("execution", bytes(IdentityId.parse(status["subject"])), key)
        return {**status, "chain": (await self._book()).view(task)}


def _ms(u: UserService) -> int:
    return round(u.now() * 1000)
