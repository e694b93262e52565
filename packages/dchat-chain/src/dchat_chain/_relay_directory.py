"""Reading the relay directory through light clients: listings, bonds, one verified view.

Theory of operation. The chat chain lists relays (``relay/<id>``, see
:mod:`._chat_directory`) and keeps the sorted index of listed identities at
``relayidx``; the currency chain holds each operator's relay bond at
``relay/<account>`` (see :mod:`._currency_relays`). A user node reads all of it
through two light clients, one per chain, each value proven against a header
whose commit certificate it verified. A state proof covers one key, so the
index is what makes the view complete: a node that leaves a relay out of its
answer cannot do so without a proof failing.

:class:`DirectoryRead` is the sans-IO order of those reads::

    read = DirectoryRead()
    while (step := read.next_read()) is not None:
        chain, path, key = step          # "chat" or "currency", API path, state key
        read.receive(verified_value)     # the light client's proven value (None: absent)
    view = read.view()

The shell answers each step with the value its light reader of that chain
proved (:class:`~._light_reader.LightReader`); this module never sees an
unproven value, yet decodes every record strictly, because a record that
does not decode means a chain this code cannot read safely: a
:class:`DirectoryAnswerError`, never a partial view.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DchatError, DecodeLimits, Fields, NodeId, canonical_decode

from ._chat_directory import MAX_LABEL_LEN, MAX_RELAYS, MAX_TAGS, RELAY_INDEX_KEY
from ._currency_relays import (
    earnings_key,
    median_deliveries,
    median_scores,
    parse_report_entry,
    relay_key,
)
from ._errors import ChainAnswerError, ChainStateError
from ._tx import MAX_AMOUNT

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = (
    "DirectoryAnswerError",
    "DirectoryRead",
    "DirectoryView",
    "RelayListing",
    "decode_relay_bond",
    "decode_relay_index",
    "decode_relay_earnings",
    "decode_relay_listing",
    "epoch_delivered",
    "epoch_score",
    "relay_bond_key",
    "relay_earnings_key",
    "relay_listing_key",
)

_LIMITS: Final = DecodeLimits(max_size=1 << 20, max_depth=3, max_items=MAX_RELAYS + 16)
_LISTING_FIELDS: Final = frozenset({"ep", "region", "stake", "n", "node", "tags", "label", "lock"})
_ENDPOINT: Final = re.compile(r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})")
_TAG: Final = re.compile(r"[a-z0-9][a-z0-9:._-]{0,31}")


class DirectoryAnswerError(ChainAnswerError):
    """A proven directory record does not decode as one (a chain this reader cannot trust)."""


def relay_listing_key(identity: bytes) -> bytes:
    """The chat-chain state key of the listing of the relay operated by ``identity``."""
    return b"relay/" + identity


def relay_bond_key(account: bytes) -> bytes:
    """The currency-chain state key of ``account``'s relay bond."""
    return relay_key(account)


@dataclass(frozen=True, slots=True)
class RelayListing:
    """One relay as the chat chain lists it.

    Attributes:
        identity: The operator: the identity id that registered the relay.
        endpoint: ``HOST:PORT`` of the relay's link listener (as listed; see
            :attr:`usable_endpoint`).
        region: The declared region (``""``: none).
        stake_ref: The currency-chain account whose relay bond backs it.
        node_key: The relay's 32-byte link key, or None (an older listing).
        tags: Network tags (e.g. ``as:64500``), sorted.
        label: The operator's label (``""``: none).
    """

    identity: bytes
    endpoint: str
    region: str
    stake_ref: bytes
    node_key: bytes | None = None
    tags: tuple[str, ...] = ()
    label: str = ""

    @property
    def node_id(self) -> NodeId | None:
        """The node id users pin (derived from :attr:`node_key`)."""
        return None if self.node_key is None else NodeId.derive(self.node_key)

    @property
    def usable_endpoint(self) -> bool:
        """Whether :attr:`endpoint` is a ``HOST:PORT`` a node can dial."""
        match = _ENDPOINT.fullmatch(self.endpoint)
        return match is not None and 0 < int(match.group(2)) <= 65535

    @property
    def network_tags(self) -> frozenset[str]:
        """What diversity compares: ``region:<region>`` and every network tag."""
        region = {f"region:{self.region.lower()}"} if self.region else set()
        return frozenset(self.tags) | region

    @property
    def address(self) -> str:
        """``NODEID@HOST:PORT`` (the home-relays form), or the endpoint alone without a key."""
        node = self.node_id
        return self.endpoint if node is None else f"{node}@{self.endpoint}"


def _answer_error(what: str, exc: Exception) -> DirectoryAnswerError:
    return DirectoryAnswerError(f"{what}: {exc}")


def decode_relay_index(value: bytes | None) -> tuple[bytes, ...]:
    """The identity ids of the ``relayidx`` record (None: an empty directory).

    Raises:
        DirectoryAnswerError: Not a sorted list of distinct 32-byte ids.
    """
    if value is None:
        return ()
    try:
        raw = canonical_decode(value, _LIMITS)
    except DchatError as exc:
        raise _answer_error("relay index", exc) from None
    if not (
        isinstance(raw, list)
        and len(raw) <= MAX_RELAYS
        and all(isinstance(i, bytes) and len(i) == 32 for i in raw)
        and raw == sorted(set(raw))
    ):
        raise DirectoryAnswerError("relay index: not a sorted list of distinct identity ids")
    return tuple(raw)


def _tags(raw: Any) -> tuple[str, ...]:
    if not (
        isinstance(raw, list)
        and len(raw) <= MAX_TAGS
        and all(isinstance(t, str) and _TAG.fullmatch(t) for t in raw)
        and raw == sorted(set(raw))
    ):
        raise DirectoryAnswerError("relay listing: tags are sorted distinct lowercase words")
    return tuple(raw)


def decode_relay_listing(identity: bytes, value: bytes) -> RelayListing:
    """The listing stored at ``relay/<identity>``.

    Raises:
        DirectoryAnswerError: The record is malformed.
    """
    try:
        f = Fields(canonical_decode(value, _LIMITS), "relay listing", _LISTING_FIELDS)
        listing = RelayListing(
            identity=identity,
            endpoint=f.get_str("ep", max_len=256),
            region=f.get_str("region", max_len=32),
            stake_ref=f.get_bytes("stake", size=32),
            node_key=f.get_bytes("node", size=32) if f.has("node") else None,
            tags=_tags(f.raw("tags")) if f.has("tags") else (),
            label=f.get_str("label", max_len=MAX_LABEL_LEN) if f.has("label") else "",
        )
        f.get_int("n")
        if f.has("lock"):  # listed by a cross-chain claim (._bridge): the lock's id
            f.get_bytes("lock", size=32)
    except DirectoryAnswerError:
        raise
    except DchatError as exc:
        raise _answer_error("relay listing", exc) from None
    return listing


def decode_relay_bond(value: bytes | None) -> int:
    """The relay bond stored at ``relay/<account>`` on the currency chain (None: 0).

    Raises:
        DirectoryAnswerError: Not an amount.
    """
    if value is None:
        return 0
    try:
        raw = canonical_decode(value, _LIMITS)
    except DchatError as exc:
        raise _answer_error("relay bond", exc) from None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= MAX_AMOUNT:
        raise DirectoryAnswerError("relay bond: not an amount")
    return raw


def _report_tables(reports: list[bytes | None]) -> list[list[list[Any]]]:
    """The proven ``report/<epoch>/<validator>`` values, decoded (None: absent, skipped)."""
    tables = []
    for value in reports:
        if value is None:
            continue
        try:
            raw = canonical_decode(value, _LIMITS)
        except DchatError as exc:
            raise _answer_error("uptime report", exc) from None
        if not isinstance(raw, list) or not all(parse_report_entry(p) is not None for p in raw):
            raise DirectoryAnswerError("uptime report: not [relay, score(, delivered)] entries")
        tables.append(raw)
    return tables


def epoch_score(reports: list[bytes | None], relay: bytes) -> int:
    """``relay``'s score so far this epoch: the lower median over the proven reports.

    ``reports`` are the stored values of ``report/<epoch>/<validator>`` (None:
    absent); a relay missing from a report scores 0 in it, as at payout.

    Raises:
        DirectoryAnswerError: A report does not decode.
    """
    return median_scores(_report_tables(reports)).get(relay, 0)


def epoch_delivered(reports: list[bytes | None], relay: bytes) -> int:
    """``relay``'s proven deliveries so far this epoch: the lower median delivery count.

    Raises:
        DirectoryAnswerError: A report does not decode.
    """
    return median_deliveries(_report_tables(reports)).get(relay, 0)


def relay_earnings_key(account: bytes) -> bytes:
    """The currency-chain state key of ``account``'s cumulative relay earnings."""
    return earnings_key(account)


def decode_relay_earnings(value: bytes | None) -> dict[str, int]:
    """The proven ``earn/<account>`` record as ``{"uptime": n, "delivery": n}`` (None: 0s).

    Raises:
        DirectoryAnswerError: The value is not an earnings record.
    """
    if value is None:
        return {"uptime": 0, "delivery": 0}
    try:
        fields = Fields(canonical_decode(value, _LIMITS), "earnings", frozenset({"u", "d"}))
        uptime = fields.get_int("u", hi=MAX_AMOUNT)
        delivery = fields.get_int("d", hi=MAX_AMOUNT)
    except DchatError as exc:
        raise _answer_error("relay earnings", exc) from None
    return {"uptime": uptime, "delivery": delivery}


@dataclass(frozen=True)
class DirectoryView:
    """Every listed relay with its operator's verified bond.

    Attributes:
        listings: The listings, in index (identity id) order.
        bonds: Relay bond per stake account (an account absent: no bond).
    """

    listings: tuple[RelayListing, ...]
    bonds: Mapping[bytes, int] = field(default_factory=dict)

    def bond_of(self, listing: RelayListing) -> int:
        """The bond backing ``listing``."""
        return self.bonds.get(listing.stake_ref, 0)

    def eligible(self, min_bond: int) -> tuple[RelayListing, ...]:
        """Listings a user may pick: a node key, a dialable endpoint, bond >= ``min_bond``."""
        return tuple(
            listing
            for listing in self.listings
            if listing.node_key is not None
            and listing.usable_endpoint
            and self.bond_of(listing) >= min_bond
        )


class DirectoryRead:
    """The reads that build a :class:`DirectoryView`: index, listings, then bonds."""

    def __init__(self) -> None:
        self._index: tuple[bytes, ...] | None = None
        self._listings: list[RelayListing] = []
        self._accounts: list[bytes] = []
        self._bonds: dict[bytes, int] = {}

    def next_read(self) -> tuple[str, str, bytes] | None:
        """``(chain, API path, state key)`` to read next and verify, or None when done."""
        if self._index is None:
            return "chat", f"/v1/chain/state/{RELAY_INDEX_KEY.hex()}", RELAY_INDEX_KEY
        if len(self._listings) < len(self._index):
            identity = self._index[len(self._listings)]
            return "chat", f"/v1/chain/relays/{identity.hex()}", relay_listing_key(identity)
        if len(self._bonds) < len(self._accounts):
            account = self._accounts[len(self._bonds)]
            key = relay_bond_key(account)
            return "currency", f"/v1/chain/state/{key.hex()}", key
        return None

    def receive(self, value: bytes | None) -> None:
        """Take the proven value of the key :meth:`next_read` named.

        Raises:
            DirectoryAnswerError: The value does not decode, or an indexed relay is absent.
            ChainStateError: The read is complete.
        """
        if self._index is None:
            self._index = decode_relay_index(value)
        elif len(self._listings) < len(self._index):
            identity = self._index[len(self._listings)]
            if value is None:
                raise DirectoryAnswerError("an indexed relay has no listing")
            listing = decode_relay_listing(identity, value)
            self._listings.append(listing)
            if listing.stake_ref not in self._accounts:
                self._accounts.append(listing.stake_ref)
        elif len(self._bonds) < len(self._accounts):
            self._bonds[self._accounts[len(self._bonds)]] = decode_relay_bond(value)
        else:
            raise ChainStateError("the directory read is complete")

    def view(self) -> DirectoryView:
        """The complete view.

        Raises:
            ChainStateError: Reads are still outstanding.
        """
        if self.next_read() is not None:
            raise ChainStateError("the directory read is not complete")
        return DirectoryView(tuple(self._listings), dict(self._bonds))
