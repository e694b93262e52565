"""The trio driver of a relay's :class:`~dchat_network.ClaimPolicy`.

Theory of operation
-------------------
:func:`run_claims` loops forever: it asks the policy, where the receipt
book's store may be used (``run``: the node's database worker), which batch is
due (the policy may seal the pending receipts, durably, before it answers),
hands that batch's root and count to ``submit`` (the node signs a
``receipt_batch`` transaction, sends it to a chat validator and waits until it
is committed), and reports
the outcome back to the policy: a success is written to the book's store as
the batch's claim time, a failure of any kind is retried later. Between
rounds it sleeps as long as the policy says. What to claim and when are the
policy's; nothing here decides.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Protocol, TypeVar

import trio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._claims import ClaimPolicy
    from ._receipts import ReceiptBatch, ReceiptBook

__all__ = ("StoreRunner", "run_claims")

_log = logging.getLogger("dchat.claims")
T = TypeVar("T")


class StoreRunner(Protocol):
    """Runs a call where the receipt book's store may be used (``AsyncStore.run``)."""

    def __call__(self, fn: Callable[[], T], /) -> Awaitable[T]: ...


async def run_claims(
    policy: ClaimPolicy,
    book: ReceiptBook,
    submit: Callable[[bytes, int, int], Awaitable[None]],
    run: StoreRunner,
    now: Callable[[], float],
    *,
    timeout: float = 60.0,
) -> None:
    """Claim ``book``'s batches as ``policy`` says, through ``submit(root, count, fee)``.

    ``submit`` returns once the claim is committed and raises when it was
    refused (``timeout`` bounds it); ``run`` runs a call where the book's
    store may be used.
    """
    while True:
        batch: ReceiptBatch | None = await run(lambda: policy.due(book, now()))
        if batch is not None:
            root, count = batch.root, batch.count
            try:
                with trio.fail_after(timeout):
                    await submit(root, count, policy.settings.fee)
            except Exception as exc:  # any failure is retried later
                _log.warning("receipt claim failed: %s: %s", type(exc).__name__, exc)
                policy.failed(now())
            else:
                _log.info("claimed a receipt batch", extra={"root": root.hex(), "count": count})
                await run(functools.partial(policy.claimed, book, root, now()))
        await trio.sleep(policy.wait(now()))
