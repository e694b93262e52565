"""Choosing a user's home relays from a verified directory view: diverse, pinned, slow.

Theory of operation. An attacker who runs many relays wants every home relay
of a user to be one of his (an eclipse: he then sees, delays or drops all of
that user's mail). Three rules make that expensive:

* **Diversity.** Home relays share no network tag (the region counts as
  ``region:<name>``; tags such as ``as:64500`` name networks) and no
  operator. Operators are grouped transitively by anything that ties two
  listings together: the same registering identity, the same stake account
  (one bond cannot back two independent operators) or the same non-empty
  operator label. A view whose eligible relays all fall into one group is
  refused outright (:class:`SingleOperatorViewError`): whatever the user's
  node would pick from it, one operator would hold all of its mail.
* **Stake.** Only relays whose operator bonded at least ``min_bond`` on the
  currency chain are eligible, and only listings with a node key (users pin
  it: a relay that cannot be pinned could be impersonated).
* **Pinning, guard-style.** Chosen relays are kept while they stay eligible
  and diverse; a replacement is drawn only for one that stopped being either.
  On top of that, one relay is rotated voluntarily at most once per
  ``rotation_period``, and only when it has been pinned that long, so an
  attacker who adds relays to the directory gains a user slowly, if at all.

Choosing is random among eligible candidates (``rng`` is a parameter, so
tests and the simulator are deterministic) and complete: a bounded search
finds a diverse set whenever the view holds one, which greedy picking would
miss. :func:`choose_home_relays` is pure; the caller stores the returned
:class:`HomeRelays` (:meth:`HomeRelays.to_json`) and passes it back next time.

Errors::

    UnsafeDirectoryError(DchatChainError, PeerError, ValueError)
    ├── SingleOperatorViewError   every eligible relay has one operator
    └── NotEnoughRelaysError      fewer than ``min_home_relays`` diverse eligible relays
    PinnedRelaysError(ChainArgumentError)   stored home relays that do not decode
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from dchat_core import NodeId, PeerError

from ._errors import ChainArgumentError, DchatChainError

if TYPE_CHECKING:
    import random
    from collections.abc import Sequence

    from ._relay_directory import DirectoryView, RelayListing

__all__ = (
    "ChoicePolicy",
    "HomeRelays",
    "NotEnoughRelaysError",
    "PinnedRelay",
    "PinnedRelaysError",
    "RelayDiscovery",
    "SingleOperatorViewError",
    "UnsafeDirectoryError",
    "choose_home_relays",
    "operator_groups",
)

SEARCH_BUDGET: Final = 100_000  # candidate visits per search: bounds a hostile view's cost
MAX_PINNED: Final = 64


class UnsafeDirectoryError(DchatChainError, PeerError, ValueError):
    """The directory view cannot give this user diverse home relays."""


class SingleOperatorViewError(UnsafeDirectoryError):
    """Every eligible relay in the view belongs to one operator."""


class NotEnoughRelaysError(UnsafeDirectoryError):
    """The view holds fewer diverse eligible relays than the policy's minimum."""


class PinnedRelaysError(ChainArgumentError):
    """Stored home relays are malformed."""


@dataclass(frozen=True, slots=True)
class ChoicePolicy:
    """How home relays are chosen.

    Attributes:
        min_home_relays: How many home relays a user keeps (at least 1).
        rotation_period: Seconds between voluntary rotations (and the least
            time a relay stays pinned before it may be rotated out).
        min_bond: The least relay bond (currency-chain units) of an eligible relay.
    """

    min_home_relays: int = 2
    rotation_period: float = 30 * 86400.0
    min_bond: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.min_home_relays <= 16 or self.rotation_period < 0 or self.min_bond < 0:
            raise ChainArgumentError("min_home_relays 1..16, rotation_period and min_bond >= 0")


@dataclass(frozen=True, slots=True)
class RelayDiscovery:
    """A user node's ``[node.relay_discovery]`` settings: where to read, how to choose.

    Attributes:
        enabled: Resolve the home relays from the directory at start.
        chat_api: The chat-chain validator API to read: its data directory
            (``api.json`` gives address and token) or a URL (the token then
            comes from ``DCHAT_CHAIN_API_TOKEN``). It is not trusted.
        currency_api: The same for the currency chain (relay bonds).
        chat_genesis: The chat chain's genesis file, the light client's
            trust anchor (relative: to the data directory).
        currency_genesis: The currency chain's.
        min_home_relays: See :class:`ChoicePolicy`.
        rotation_period: See :class:`ChoicePolicy`.
        min_bond: See :class:`ChoicePolicy`.
    """

    enabled: bool = False
    chat_api: str = ""
    currency_api: str = ""
    chat_genesis: str = "genesis-chat.cbor"
    currency_genesis: str = "genesis-currency.cbor"
    min_home_relays: int = 2
    rotation_period: float = 30 * 86400.0
    min_bond: int = 1

    def __post_init__(self) -> None:
        self.policy  # noqa: B018 - checks the numbers now, at configuration time

    @property
    def policy(self) -> ChoicePolicy:
        """The choice rules."""
        return ChoicePolicy(self.min_home_relays, self.rotation_period, self.min_bond)


@dataclass(frozen=True, slots=True)
class PinnedRelay:
    """One home relay: who operates it, its pinned key, where it listens, since when.

    Attributes:
        identity: The operator's identity id (the listing's key).
        node_key: The pinned 32-byte link key.
        endpoint: ``HOST:PORT`` as last listed.
        since: When it was chosen (seconds, the caller's clock).
    """

    identity: bytes
    node_key: bytes
    endpoint: str
    since: float

    @property
    def address(self) -> str:
        """``NODEID@HOST:PORT``: the form the user node's ``relays`` list takes."""
        return f"{NodeId.derive(self.node_key)}@{self.endpoint}"


@dataclass(frozen=True, slots=True)
class HomeRelays:
    """A user's pinned home relays and when the set last changed (None: never chosen)."""

    relays: tuple[PinnedRelay, ...] = ()
    changed_at: float | None = None

    @property
    def addresses(self) -> tuple[str, ...]:
        """Every relay as ``NODEID@HOST:PORT``, in pinning order."""
        return tuple(r.address for r in self.relays)

    def to_json(self) -> str:
        """The stored form (a small JSON document)."""
        relays = [
            {"identity": r.identity.hex(), "node_key": r.node_key.hex(), "endpoint": r.endpoint}
            | {"since": r.since, "address": r.address}
            for r in self.relays
        ]
        return json.dumps({"v": 1, "changed_at": self.changed_at, "relays": relays}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> HomeRelays:
        """Read :meth:`to_json` output back.

        Raises:
            PinnedRelaysError: The text is not a stored home-relays document.
        """
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict) or doc.get("v") != 1:
                raise ValueError("not a version 1 document")
            relays = doc["relays"]
            if not isinstance(relays, list) or len(relays) > MAX_PINNED:
                raise ValueError("relays must be a short list")
            changed = doc["changed_at"]
            return cls(
                tuple(_pinned(r) for r in relays), None if changed is None else _num(changed)
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise PinnedRelaysError(f"stored home relays are malformed: {exc}") from None


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("a time must be a number")
    return float(value)


def _hex32(value: Any) -> bytes:
    raw = bytes.fromhex(value)
    if len(raw) != 32:
        raise ValueError("keys and ids are 32 bytes")
    return raw


def _pinned(raw: Any) -> PinnedRelay:
    endpoint = raw["endpoint"]
    if not isinstance(endpoint, str) or len(endpoint) > 256:
        raise TypeError("endpoint must be text")
    return PinnedRelay(
        _hex32(raw["identity"]), _hex32(raw["node_key"]), endpoint, _num(raw["since"])
    )


def operator_groups(listings: Sequence[RelayListing]) -> list[int]:
    """The operator group of each listing (same index), linked by identity, stake or label."""
    parent = list(range(len(listings)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    seen: dict[tuple[str, Any], int] = {}
    for i, listing in enumerate(listings):
        links: list[tuple[str, Any]] = [("id", listing.identity), ("stake", listing.stake_ref)]
        if listing.label:
            links.append(("label", listing.label))
        for link in links:
            if link in seen:
                parent[root(i)] = root(seen[link])
            else:
                seen[link] = i
    return [root(i) for i in range(len(listings))]


@dataclass(frozen=True, slots=True)
class _Candidate:
    listing: RelayListing
    group: int
    tags: frozenset[str]

    def clashes(self, other: _Candidate) -> bool:
        return self.group == other.group or bool(self.tags & other.tags)


def _search(chosen: list[_Candidate], pool: list[_Candidate], need: int) -> list[_Candidate] | None:
    """``need`` candidates from ``pool`` clashing with nothing chosen nor each other."""
    budget = [SEARCH_BUDGET]

    def extend(picked: list[_Candidate], start: int) -> list[_Candidate] | None:
        if len(picked) == need:
            return picked
        for i in range(start, len(pool)):
            budget[0] -= 1
            if budget[0] < 0:
                return None
            candidate = pool[i]
            if not any(candidate.clashes(c) for c in chosen + picked):
                found = extend([*picked, candidate], i + 1)
                if found is not None:
                    return found
        return None

    return extend([], 0)


def _kept(pinned: HomeRelays, by_identity: dict[bytes, _Candidate]) -> list[_Candidate]:
    """Pinned relays still eligible with the same key, clash-free in pinning order."""
    kept: list[_Candidate] = []
    for relay in pinned.relays:
        candidate = by_identity.get(relay.identity)
        if candidate is None or candidate.listing.node_key != relay.node_key:
            continue
        if not any(candidate.clashes(c) for c in kept):
            kept.append(candidate)
    return kept


def _rotation_due(pinned: HomeRelays, policy: ChoicePolicy, now: float) -> PinnedRelay | None:
    """The relay to rotate out now, if a voluntary rotation is due."""
    if not pinned.relays or pinned.changed_at is None:
        return None
    if now < pinned.changed_at + policy.rotation_period:
        return None
    oldest = min(pinned.relays, key=lambda r: r.since)
    return oldest if now >= oldest.since + policy.rotation_period else None


def choose_home_relays(
    view: DirectoryView,
    pinned: HomeRelays,
    policy: ChoicePolicy,
    now: float,
    rng: random.Random,
) -> HomeRelays:
    """The home relays to use from ``view``, given those pinned before.

    Returns:
        ``pinned`` itself when nothing changes; otherwise the new set, with
        ``changed_at`` set to ``now``.

    Raises:
        SingleOperatorViewError: Every eligible relay has one operator.
        NotEnoughRelaysError: Fewer than ``policy.min_home_relays`` diverse
            eligible relays (the user keeps its old relays meanwhile).
    """
    eligible = view.eligible(policy.min_bond)
    groups = operator_groups(eligible)
    if eligible and len(set(groups)) == 1:
        raise SingleOperatorViewError("every eligible relay in the directory has one operator")
    candidates = [_Candidate(e, g, e.network_tags) for e, g in zip(eligible, groups, strict=True)]
    by_identity = {c.listing.identity: c for c in candidates}
    kept = _kept(pinned, by_identity)
    retiring = _rotation_due(pinned, policy, now) if len(kept) == len(pinned.relays) else None
    if retiring is not None:
        without = [c for c in kept if c.listing.identity != retiring.identity]
        rotated = _fill(without, candidates, policy, rng, exclude=retiring.identity)
        if rotated is not None:
            return _result(pinned, rotated, now)
    chosen = _fill(kept, candidates, policy, rng, exclude=None)
    # Kept relays that block every diverse completion are released, newest first.
    while chosen is None and kept:
        kept = kept[:-1]
        chosen = _fill(kept, candidates, policy, rng, exclude=None)
    if chosen is None:
        raise NotEnoughRelaysError(
            f"the directory holds fewer than {policy.min_home_relays} diverse eligible relays"
        )
    return _result(pinned, chosen, now)


def _fill(
    kept: list[_Candidate],
    candidates: list[_Candidate],
    policy: ChoicePolicy,
    rng: random.Random,
    exclude: bytes | None,
) -> list[_Candidate] | None:
    need = max(policy.min_home_relays - len(kept), 0)
    taken = {c.listing.identity for c in kept} | ({exclude} if exclude else set())
    pool = [c for c in candidates if c.listing.identity not in taken]
    rng.shuffle(pool)
    found = _search(kept, pool, need)
    return None if found is None else [*kept, *found]


def _result(pinned: HomeRelays, chosen: list[_Candidate], now: float) -> HomeRelays:
    before = {r.identity: r for r in pinned.relays}
    relays = []
    for candidate in chosen:
        listing = candidate.listing
        assert listing.node_key is not None  # eligible listings have one
        old = before.get(listing.identity)
        since = now if old is None or old.node_key != listing.node_key else old.since
        relays.append(PinnedRelay(listing.identity, listing.node_key, listing.endpoint, since))
    same = [(r.identity, r.node_key) for r in relays] == [
        (r.identity, r.node_key) for r in pinned.relays
    ]
    if same and tuple(relays) == pinned.relays:
        return pinned
    return HomeRelays(tuple(relays), pinned.changed_at if same else now)
