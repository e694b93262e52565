"""Typed replies of the privacy and payment routes (cover, onion, put auth, stealth, tokens).

Each model is a :class:`~typing.TypedDict`: the JSON object the node answers,
so ``reply["loops_sent"]`` keeps working and ``json.dumps(reply)`` prints it,
while a type checker knows every key and its type. :func:`shaped` checks
that a reply carries a model's required keys before it is returned, so a
node of another version fails as :class:`_BadReplyError` at the call, not
as a ``KeyError`` later. The routes and their fields: docs/protocol.md
§25 (payments), §39 (onion), §40 (tokens), §41 (put auth), §42 (cover), §43
(stealth).
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict, TypeVar, cast

from ._errors import _BadReplyError

__all__ = (
    "CoverTraffic",
    "OnionGuard",
    "OnionModes",
    "OnionStatus",
    "PaymentSent",
    "Payments",
    "PendingPurchase",
    "PutAuth",
    "RelayTokens",
    "ReplyBlockCounts",
    "StealthAccount",
    "StealthPayment",
    "StealthScan",
    "StealthStatus",
    "StealthSweep",
    "TokenPurchase",
    "TokenWallet",
    "UnsentPayment",
    "shaped",
)

M = TypeVar("M")


def shaped(reply: Any, model: type[M]) -> M:
    """``reply`` as ``model`` once it is a JSON object holding every required key.

    Raises:
        _BadReplyError: It is not.
    """
    if not isinstance(reply, dict):
        raise _BadReplyError("node reply is not a JSON object")
    required: frozenset[str] = getattr(model, "__required_keys__", frozenset())
    missing = sorted(required - reply.keys())
    if missing:
        raise _BadReplyError(f"node reply lacks {', '.join(missing)} ({model.__name__})")
    return cast("M", reply)


class CoverTraffic(TypedDict):
    """``GET``/``PUT /v1/privacy/cover``: the cover traffic's state and counters.

    ``budget`` is in bytes/s (0: off); ``source`` is ``config`` or ``set``
    (chosen through the API, kept across restarts); the loop round trip
    times are in milliseconds (None before the first loop came back).
    """

    on: bool
    budget: int
    source: Literal["config", "set"]
    envelope_bytes: int
    loops_sent: int
    drops_sent: int
    replaced: int
    skipped: int
    loops_pending: int
    loops_returned: int
    loops_missing: int
    loops_unknown: int
    failed: int
    loop_rtt_ms: float | None
    loop_rtt_last_ms: float | None


class ReplyBlockCounts(TypedDict):
    """Single-use reply blocks (protocol §45): ``held`` (live, from peers), ``given``
    (ours, not used yet), ``peers`` (that gave some), ``refused`` (supplies that did not
    decode), ``supply`` (per contact, config ``reply_blocks``) and ``answers`` (what
    became of the answers sent under blocks: ``stored``, ``no_reply_block``, ...)."""

    held: int
    given: int
    peers: int
    refused: int
    supply: int
    answers: dict[str, int]


class OnionGuard(TypedDict):
    """One of the node's onion guards: every onion route it sends starts at one.

    ``address`` (``NODEID@HOST:PORT``), ``since`` it was picked, ``until`` it is
    rotated (30-60 days later), ``down_since`` it stopped answering (None: it
    answers; replaced after a day)."""

    address: str
    since: float
    until: float
    down_since: float | None


class OnionModes(TypedDict):
    """Each local identity's onion mode (id -> on) and the configured onion relays;
    ``reply_blocks``: single-use reply blocks (protocol §45, :class:`ReplyBlockCounts`).

        ``routes``: where onion routes come from (``directory``: the chain's relay
        directory, each hop of another operator; ``manual``: ``onion_relays``);
        ``route_error``: why the last route could not be chosen (None: it was);
        ``guards``: the pinned first hops of directory routes (:class:`OnionGuard`).
    """

    identities: dict[str, bool]
    relays: list[str]
    routes: NotRequired[Literal["directory", "manual"]]
    route_error: NotRequired[str | None]
    guards: NotRequired[list[OnionGuard]]
    reply_blocks: NotRequired[ReplyBlockCounts]


class OnionStatus(TypedDict):
    """``GET``/``PUT /v1/privacy/onion``."""

    onion: OnionModes


class PutAuth(TypedDict):
    """``GET /v1/put-auth``: how contacts are authorized to deposit in our mailbox."""

    mode: Literal["token", "proof"]
    tokens_issued: int
    secrets_issued: int
    ring_size: int
    ring_version: int


class StealthStatus(TypedDict):
    """``GET /v1/stealth/status``: last block scanned, payments found, background period (s);
    ``held_burners``: expired burners whose seed the node keeps for their stealth funds
    (``burner_id``, ``expired``: when; sweep with ``identity=burner_id``)."""

    scanned_to: int
    received: int
    scan_interval: float
    held_burners: NotRequired[list[dict[str, Any]]]


class StealthPayment(TypedDict):
    """``POST /v1/stealth/pay``: the committed transfer to a fresh one-time account."""

    account: str
    tx: str
    height: int
    amount: int


class StealthAccount(TypedDict):
    """One one-time account a scan found, with its proven balance and whose it is
    (``identity``: the node's identity id, or the paid burner's)."""

    account: str
    height: int
    balance: int
    identity: str


class StealthScan(TypedDict):
    """``POST /v1/stealth/scan``."""

    scanned_to: int
    accounts: list[StealthAccount]
    stealth_balance: int


class StealthSweep(TypedDict):
    """``POST /v1/stealth/sweep``: the total moved, the target account, one tx per account."""

    swept: int
    to: str
    txs: list[str]


class PaymentSent(TypedDict):
    """``POST /v1/payments``: a payment committed and its message queued."""

    message_id: str
    tx: str
    height: int
    amount: int
    to: str


class UnsentPayment(TypedDict):
    """A payment of ours committed whose message is not sent yet."""

    message_id: str
    peer_id: str
    amount: int
    tx: str


class Payments(TypedDict):
    """``GET /v1/payments``: received payments not yet verified, ours not yet sent.

    Each pending entry has ``message_id``, ``peer_id``, ``amount``, ``from``,
    ``to``, ``tx``, ``height``, ``note``, ``state``, ``code`` (§25).
    """

    pending: list[dict[str, Any]]
    unsent: list[UnsentPayment]


class TokenPurchase(TypedDict):
    """``POST /v1/tokens``: tokens bought from ``relay``, the amount paid, its tx, tokens held."""

    relay: str
    bought: int
    paid: int
    tx: str
    held: int


class RelayTokens(TypedDict):
    """The paid tokens held for one relay, per key epoch."""

    relay: str
    node_id: str
    count: int
    epochs: dict[str, int]


class PendingPurchase(TypedDict):
    """A purchase paid whose tokens the relay has not signed yet (the node keeps asking)."""

    relay: str
    paid: int
    tx: str
    since: float


class TokenWallet(TypedDict):
    """``GET /v1/tokens``: the tokens held, per relay, and the purchases still pending."""

    total: int
    relays: list[RelayTokens]
    pending: list[PendingPurchase]
