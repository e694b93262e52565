"""Currency chain: relay stake and per-epoch relay rewards, for uptime and for proven delivery.

Theory of operation. A relay operator bonds stake under its account key
(``relay_bond``); the chat chain's relay directory refers to that stake.
Epoch ``e`` covers heights ``[e * epoch_blocks, (e + 1) * epoch_blocks)``.
During an epoch each active validator (power > 0) may file one signed
``uptime_report``: per relay a score from 0 to 10,000 (its own probes) and,
optionally, a *delivery count*: the receipts the relay claimed on the chat
chain that the validator saw and audited that epoch (0 if an audit failed;
see ``dchat_network.Prober``). How a validator measures is node policy, not
consensus; an entry without a count (the first report format) counts 0.

At the first block of epoch ``e + 1`` the chain pays
``min(pool, relay_reward_per_epoch)`` from the relay reward pool to relays that
still hold at least ``min_relay_stake``, in two shares:

* the *delivery share*, ``relay_delivery_permille`` of it, pro rata to each
  relay's *median* delivery count over the reports;
* the *uptime share*, the rest, pro rata to each relay's median score.

When no eligible relay has a positive median delivery count the whole amount
is the uptime share (a network without receipts is paid as before). A relay
missing from a report scores and delivers 0 in it. The median means a
minority of lying validators cannot lift a relay or sink it: a forged claim
fails the audits of the honest majority, so its median count is 0 and it
earns nothing for it (and the score of 0 feeds :mod:`._relay_faults`).
Integer division leaves a remainder, which stays in the pool. The pool is
funded at genesis and by ``fund_relay_pool``; nothing is minted.

What each relay was paid is kept, cumulatively and by share, in
``earn/<account>`` -> ``{"u": uptime earnings, "d": delivery earnings}`` (an
operator reads it by proof; ``dchat-node relay status`` shows it).
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
    "earnings_key",
    "fund_pool",
    "median_deliveries",
    "median_scores",
    "parse_report_entry",
    "relay_bond",
    "relay_key",
    "relay_unbond",
    "uptime_report",
)

POOL_KEY: Final = b"pool/relay"
MAX_SCORE: Final = 10_000
MAX_SCORED_RELAYS: Final = 256
MAX_DELIVERED: Final = 1 << 32
"""The largest delivery count one report entry may carry."""
DELIVERY_PERMILLE: Final = 500
"""``relay_delivery_permille``'s default: half of an epoch's relay rewards follow deliveries."""


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


def parse_report_entry(item: Any) -> tuple[bytes, int, int] | None:
    """``[relay, score]`` or ``[relay, score, delivered]`` as a triple (None: malformed)."""
    if not isinstance(item, list) or len(item) not in (2, 3):
        return None
    relay, score, *rest = item
    delivered = rest[0] if rest else 0
    if not (isinstance(relay, bytes) and len(relay) == 32):
        return None
    if type(score) is not int or not 0 <= score <= MAX_SCORE:
        return None
    if type(delivered) is not int or not 0 <= delivered <= MAX_DELIVERED:
        return None
    return relay, score, delivered


def _parse_scores(raw: list[Any]) -> list[list[Any]]:
    scores: list[list[Any]] = []
    for item in raw:
        if parse_report_entry(item) is None:
            raise MalformedTransactionError(
                "scores must be [relay key, 0..10000] or [relay key, 0..10000, delivered] entries"
            )
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


def _lower_medians(reports: list[list[list[Any]]], column: int) -> dict[bytes, int]:
    """Each named relay's lower median of entry ``column`` (missing or absent: 0)."""
    relays = sorted({entry[0] for report in reports for entry in report})
    tables = [
        {entry[0]: (entry[column] if len(entry) > column else 0) for entry in report}
        for report in reports
    ]
    medians = {}
    for relay in relays:
        values = sorted(table.get(relay, 0) for table in tables)
        medians[relay] = values[(len(values) - 1) // 2]  # lower median: integers only
    return medians


def median_scores(reports: list[list[list[Any]]]) -> dict[bytes, int]:
    """Each scored relay's lower median score over ``reports`` (missing from a report: 0)."""
    return _lower_medians(reports, 1)


def median_deliveries(reports: list[list[list[Any]]]) -> dict[bytes, int]:
    """Each named relay's lower median delivery count (an entry without one: 0)."""
    return _lower_medians(reports, 2)


def earnings_key(account: bytes) -> bytes:
    """The state key of ``account``'s cumulative relay earnings, by share."""
    return b"earn/" + account


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
    scored = median_scores(reports)
    _pay(state, params, scored, median_deliveries(reports))
    return epoch, scored


def _shares(budget: int, weights: dict[bytes, int]) -> dict[bytes, int]:
    """``budget`` split pro rata to ``weights`` (rounded down; nothing when all are 0)."""
    total = sum(weights.values())
    if not total:
        return {}
    return {relay: budget * weight // total for relay, weight in sorted(weights.items())}


def _pay(
    state: StateStore,
    params: dict[str, Any],
    scored: dict[bytes, int],
    delivered: dict[bytes, int],
) -> None:
    def bonded(relay: bytes) -> bool:
        stake: int = get_record(state, relay_key(relay)) or 0
        return stake >= int(params["min_relay_stake"])

    uptime = {relay: score for relay, score in scored.items() if score and bonded(relay)}
    proven = {relay: count for relay, count in delivered.items() if count and bonded(relay)}
    pool: int = get_record(state, POOL_KEY) or 0
    budget = min(pool, params["relay_reward_per_epoch"])
    if not budget:
        return
    rate: int = params.get("relay_delivery_permille", DELIVERY_PERMILLE)
    delivery_budget = budget * rate // 1000 if proven else 0
    paid = {"u": _shares(budget - delivery_budget, uptime), "d": _shares(delivery_budget, proven)}
    total = 0
    for share, amounts in paid.items():
        for relay, value in amounts.items():
            if not value:
                continue
            credit(state, relay, value)
            earned: dict[str, int] = get_record(state, earnings_key(relay)) or {"u": 0, "d": 0}
            earned[share] += value
            put_record(state, earnings_key(relay), earned)
            total += value
    if total:
        put_record(state, POOL_KEY, pool - total)
