"""The trio driver of a validator's :class:`~dchat_network.Prober`.

Theory of operation
-------------------
Every ``interval`` seconds :func:`run_prober` asks its caller where the chain
is (``position``: the current reward epoch, how many of its blocks are past,
and the epoch's length; None while the validator is not ready), reads the
relay directory (``targets``: the node's reader of the chat chain's
directory; a failed read keeps the last listing), and probes every listed
relay at once, each over a fresh link with a fresh link key (so a relay cannot
tell a probe's link from a user's until the challenge arrives), pinned to the
relay's node id, all within ``timeout``; a relay that passes is then audited
on the same link for one random leaf of its last claimed receipt batch (a
relay that answers ``no_batch`` or an unbacked leaf is convicted). When the prober says an epoch's
report is due, the book's ``file_uptime`` gets it (dchat-chain's validator
book turns it into an ``uptime_report`` transaction).

Nothing here decides anything: what a probe's outcome is, when a report is
due and what it says are the sans-IO :class:`Prober`'s.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

import trio

from dchat_core import DchatError
from dchat_crypto import SigningKey

from ._errors import RelayProtocolError
from ._receipts import AuditAnswer
from ._session import relay_session

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from ._prober import Prober, ProbeTarget
    from ._session import RelaySession

__all__ = ("ProbeBook", "probe_once", "run_prober")

_log = logging.getLogger("dchat.probe")


class ProbeBook(Protocol):
    """Where the chain is and where reports go (dchat-chain's ``ValidatorBook`` is one)."""

    def probe_position(self) -> tuple[int, int, int] | None:
        """(epoch, blocks of it past, epoch length), or None while there is nothing to report."""
        ...

    def file_uptime(self, epoch: int, scores: list[tuple[bytes, int, int]]) -> Sequence[Exception]:
        """Hand in ``epoch``'s report, (account, score, deliveries) rows; the refusals."""
        ...


async def probe_once(
    prober: Prober, target: ProbeTarget, epoch: int, now_ms: Callable[[], int], timeout: float
) -> bool:
    """Probe ``target`` once for ``epoch``; whether it passed (the prober counted it)."""
    challenge = prober.challenge(target, epoch, now_ms())
    try:
        with trio.fail_after(timeout):
            async with relay_session(
                target.host, target.port, node_key=SigningKey.generate(), expected_peer=target.node
            ) as session:
                signature = await session.probe(challenge.to_bytes(), timeout=timeout)
                relay_key = session.link.peer_key.to_bytes()
                passed = prober.answered(challenge, relay_key, signature, now_ms())
                if passed and (index := prober.audit_index(target)) is not None:
                    await _audit(prober, session, target, epoch, index, timeout)
    except (DchatError, OSError, trio.TooSlowError) as exc:
        _log.info("probe failed", extra={"relay": str(target.node), "error": type(exc).__name__})
        prober.failed(challenge)
        return False
    return passed


async def _audit(
    prober: Prober,
    session: RelaySession,
    target: ProbeTarget,
    epoch: int,
    index: int,
    timeout: float,
) -> None:
    """Audit leaf ``index`` of the target's claimed batch; a refusal counts as a failure."""
    assert target.batch is not None
    answer: AuditAnswer | None = None
    try:
        reply = await session.audit(target.batch[0], index, timeout=timeout)
        answer = AuditAnswer(reply.entry_id, reply.receipt, reply.path)
    except RelayProtocolError:
        pass  # no such batch or leaf: the claim is not backed
    if not prober.audited(target, epoch, index, answer):
        _log.warning("relay failed a receipt audit", extra={"relay": str(target.node)})


async def run_prober(
    prober: Prober,
    targets: Callable[[], Awaitable[Sequence[ProbeTarget]]],
    book: ProbeBook,
    now_ms: Callable[[], int],
    *,
    interval: float = 5.0,
    timeout: float = 10.0,
) -> None:
    """Probe the directory's relays every ``interval`` s and hand in due reports (forever)."""
    listed: list[ProbeTarget] = []
    while True:
        where = book.probe_position()
        if where is not None:
            try:
                with trio.fail_after(timeout):
                    listed = prober.targets_of(await targets())
            except Exception as exc:
                _log.warning("relay directory not read: %s: %s", type(exc).__name__, exc)
            async with trio.open_nursery() as nursery:
                for target in listed:
                    nursery.start_soon(probe_once, prober, target, where[0], now_ms, timeout)
            where = book.probe_position()
            due = None if where is None else prober.take_report(*where)
            if where is not None and due is not None:
                for refusal in book.file_uptime(where[0], due):
                    _log.warning("uptime report not admitted: %s", refusal)
        await trio.sleep(interval)
