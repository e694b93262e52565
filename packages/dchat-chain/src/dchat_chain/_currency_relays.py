"""Currency chain: relay stake and per-epoch relay rewards.

Theory of operation. A relay operator bonds stake under its account key
(``relay_bond``); the chat chain's relay directory refers to that stake.
Epoch ``e`` covers heights ``[e * epoch_blocks, (e + 1) * epoch_blocks)``.
During an epoch each active validator (power > 0) may file one signed
``uptime_report`` scoring relays from 0 to 10,000 (its own probes; how it
measures is node policy, not consensus).

At the first block of epoch ``e + 1`` the chain pays
``min(pool, relay_reward_per_epoch)`` from the relay reward pool to relays that
still hold at least ``min_relay_stake``, pro rata to each relay's *median* score
over the reports (a relay missing from a report scores 0 in it). The median
means a minority of lying validators cannot lift a relay or sink it. Integer
division leaves a remainder, which stays in the pool. The pool is funded at
genesis and by ``fund_relay_pool``; nothing is minted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from ._currency_staking import load_validator, queue_unbonding
from ._state_records import amount, body_fields, credit, debit, get_record, int_be, put_record
from ._tx_errors import MalformedTransactionError, RejectedTransactionError, UnauthorizedError

if TYPE_CHECKING:
    from ._app import BlockContext
    from ._state import StateStore
    from ._tx import Transaction

__all__ = (
    "POOL_KEY",
    "distribute_rewards",
    "fund_pool",
    "relay_bond",
    "relay_key",
    "relay_unbond",
    "uptime_report",
)

POOL_KEY: Final = b"pool/relay"
MAX_SCORE: Final = 10_000
MAX_SCORED_RELAYS: Final = 256


def relay_key(owner: bytes) -> bytes:
    """The state key of ``owner``'s relay stake."""
    return b"relay/" + owner


def relay_bond(state: StateStore, tx: Transaction) -> None:
    """``relay_bond {amount}``: lock funds as the sender's relay stake."""
    value = amount(body_fields(tx.body, "relay_bond", {"amount"}), "amount", lo=1)
    debit(state, tx.sender, value)
    put_record(state, relay_key(tx.sender), (get_record(state, relay_key(tx.sender)) or 0) + value)


def relay_unbond(
    state: StateStore, params: dict[str, Any], context: BlockContext, tx: Transaction
) -> None:
    """``relay_unbond {amount}``: start unbonding relay stake (same period as validators)."""
    value = amount(body_fields(tx.body, "relay_unbond", {"amount"}), "amount", lo=1)
    bonded: int = get_record(state, relay_key(tx.sender)) or 0
    if bonded < value:
        raise RejectedTransactionError("not that much relay stake bonded")
    if bonded == value:
        state.delete(relay_key(tx.sender))
    else:
        put_record(state, relay_key(tx.sender), bonded - value)
    queue_unbonding(state, params, context, tx.sender, value)


def fund_pool(state: StateStore, tx: Transaction) -> None:
    """``fund_relay_pool {amount}``: give funds to the relay reward pool."""
    value = amount(body_fields(tx.body, "fund_relay_pool", {"amount"}), "amount", lo=1)
    debit(state, tx.sender, value)
    put_record(state, POOL_KEY, (get_record(state, POOL_KEY) or 0) + value)


def _epoch(params: dict[str, Any], height: int) -> int:
    epoch: int = height // params["epoch_blocks"]
    return epoch


def _parse_scores(raw: list[Any]) -> list[list[Any]]:
    scores: list[list[Any]] = []
    for item in raw:
        if not (
            isinstance(item, list)
            and len(item) == 2
            and isinstance(item[0], bytes)
            and len(item[0]) == 32
            and isinstance(item[1], int)
            and not isinstance(item[1], bool)
            and 0 <= item[1] <= MAX_SCORE
        ):
            raise MalformedTransactionError("scores must be [relay key, 0..10000] pairs")
        scores.append(item)
    if [s[0] for s in scores] != sorted({s[0] for s in scores}):
        raise MalformedTransactionError("scores must be sorted by relay key, no duplicates")
    return scores


def uptime_report(
    state: StateStore, params: dict[str, Any], context: BlockContext, tx: Transaction
) -> None:
    """``uptime_report {epoch, scores}``: an active validator scores relays for this epoch."""
    fields = body_fields(tx.body, "uptime_report", {"epoch", "scores"})
    epoch = fields.get_int("epoch")
    scores = _parse_scores(fields.get_list("scores", max_len=MAX_SCORED_RELAYS))
    if epoch != _epoch(params, context.height):
        raise RejectedTransactionError("a report is for the current epoch only")
    record = load_validator(state, tx.sender)
    if record is None or record["power"] == 0:
        raise UnauthorizedError("only active validators report relay uptime")
    report_key = b"report/" + int_be(epoch) + b"/" + tx.sender
    if state.get(report_key) is not None:
        raise RejectedTransactionError("this validator already reported for the epoch")
    put_record(state, report_key, scores)
    reporters_key = b"reporters/" + int_be(epoch)
    reporters: list[bytes] = get_record(state, reporters_key) or []
    put_record(state, reporters_key, [*reporters, tx.sender])


def _median_scores(reports: list[list[list[Any]]]) -> dict[bytes, int]:
    relays = sorted({relay for report in reports for relay, _ in report})
    tables = [dict((relay, score) for relay, score in report) for report in reports]
    medians = {}
    for relay in relays:
        column = sorted(table.get(relay, 0) for table in tables)
        medians[relay] = column[(len(column) - 1) // 2]  # lower median: integers only
    return medians


def distribute_rewards(
    state: StateStore, params: dict[str, Any], context: BlockContext
) -> tuple[int, dict[bytes, int]] | None:
    """At an epoch's first block, pay the previous epoch's relay rewards.

    Returns that epoch and the median score of every relay a report named
    (for :func:`._relay_faults.note_faults`), or None at any other block.
    """
    if context.height % params["epoch_blocks"] or context.height == 0:
        return None
    epoch = _epoch(params, context.height) - 1
    reporters_key = b"reporters/" + int_be(epoch)
    reporters: list[bytes] = get_record(state, reporters_key) or []
    reports = []
    for reporter in reporters:
        report_key = b"report/" + int_be(epoch) + b"/" + reporter
        reports.append(get_record(state, report_key))
        state.delete(report_key)
    state.delete(reporters_key)
    scored = _median_scores(reports)
    _pay(state, params, scored)
    return epoch, scored


def _pay(state: StateStore, params: dict[str, Any], scored: dict[bytes, int]) -> None:
    medians = {
        relay: score
        for relay, score in scored.items()
        if score and (get_record(state, relay_key(relay)) or 0) >= params["min_relay_stake"]
    }
    pool: int = get_record(state, POOL_KEY) or 0
    budget = min(pool, params["relay_reward_per_epoch"])
    total = sum(medians.values())
    if not total or not budget:
        return
    paid = 0
    for relay, score in sorted(medians.items()):
        share = budget * score // total
        credit(state, relay, share)
        paid += share
    put_record(state, POOL_KEY, pool - paid)
