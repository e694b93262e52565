"""Onion routes from a verified directory view: every hop of another operator and network.

Theory of operation. An onion's privacy rests on its first hop (who sends)
and its last hop (where to) not being one party. With hops drawn from a
hand-written list, nothing stops an operator from running all of them. Here
the hop candidates are the same listings home relays come from
(:meth:`DirectoryView.eligible`: a pinned node key, a dialable endpoint, a
bond), grouped by operator with :func:`~dchat_chain.lowlevel.operator_groups`
(identity, stake account, label, transitively) and compared by network tags
(region included), exactly as home relays are. A route is the mailbox relay
(the last hop, fixed by the recipient) and ``hops - 1`` relays such that no
two of the route share an operator group or a tag. When the mailbox relay is
not in the view, it counts as an operator of its own with no tags.

A view that cannot give such a route is refused (:class:`NoDiverseRouteError`)
rather than answered with a weaker route: a sender in onion mode then waits
(and says so) instead of sending through relays that may be one party.
Choosing is random (``rng`` is a parameter) and complete: the bounded search
of home-relay choice finds a diverse route whenever the view holds one.

:class:`OnionDirectory` is the small, storable result (a JSON document): the
candidates' pinned addresses with their groups and tags, so a node can choose
routes for every envelope without the whole view.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from dchat_core import NodeId, RelayAddress

from ._errors import ChainArgumentError
from ._relay_choice import (
    SingleOperatorViewError,
    UnsafeDirectoryError,
    _Candidate,
    _search,
    operator_groups,
)

if TYPE_CHECKING:
    import random
    from collections.abc import Sequence

    from ._relay_directory import DirectoryView

__all__ = ("ONION_DIRECTORY_FILE", "NoDiverseRouteError", "OnionDirectory", "OnionDirectoryError")

ONION_DIRECTORY_FILE: Final = "onion-directory.json"
"""Where a user node keeps the onion directory of its last relay discovery (data directory)."""

MAX_CANDIDATES: Final = 4096
_MAX_TAGS: Final = 32


class NoDiverseRouteError(UnsafeDirectoryError):
    """The view holds no route whose hops are all of different operators and networks."""


class OnionDirectoryError(ChainArgumentError):
    """A stored onion directory is malformed."""


@dataclass(frozen=True, slots=True)
class _Hop:
    """A stand-in listing for :class:`_Candidate` (only ``identity`` is read)."""

    identity: str


class OnionDirectory:
    """Onion hop candidates (``NODEID@HOST:PORT``) with their operator group and tags.

    Args:
        candidates: ``(address, group, tags)`` per relay; two relays with one
            ``group`` value have one operator.
    """

    def __init__(self, candidates: tuple[tuple[str, int, frozenset[str]], ...] = ()) -> None:
        self.candidates = candidates
        self._by_node = {_node_of(address): i for i, (address, _, _) in enumerate(candidates)}
        self._by_endpoint = {_endpoint_of(a): i for i, (a, _, _) in enumerate(candidates)}

    @classmethod
    def from_view(cls, view: DirectoryView, min_bond: int) -> OnionDirectory:
        """The eligible listings of ``view`` (as home relays: key, endpoint, bond)."""
        eligible = view.eligible(min_bond)
        groups = operator_groups(eligible)
        return cls(
            tuple(
                (listing.address, group, listing.network_tags)
                for listing, group in zip(eligible, groups, strict=True)
            )
        )

    def __len__(self) -> int:
        return len(self.candidates)

    def _candidate(self, i: int) -> _Candidate:
        address, group, tags = self.candidates[i]
        return _Candidate(_Hop(address), group, tags)  # type: ignore[arg-type]

    def _index_of(self, relay: str) -> int | None:
        node = _node_of(relay)
        if node is not None and node in self._by_node:
            return self._by_node[node]
        return self._by_endpoint.get(_endpoint_of(relay))

    def route(
        self, last: str, rng: random.Random, *, hops: int = 3, first: Sequence[str] | None = None
    ) -> list[str]:
        """``hops`` addresses ending with ``last`` (the mailbox relay), pairwise diverse.

        ``first``: the route starts at one of these (a node's guards), tried in
        order; none of them listed and diverse from ``last``: no route.

        Raises:
            SingleOperatorViewError: every candidate has one operator.
            NoDiverseRouteError: no diverse route to ``last`` in this directory.
        """
        if hops < 2:
            raise ChainArgumentError("an onion route has at least 2 hops")
        if self.candidates and len({group for _, group, _ in self.candidates}) == 1:
            raise SingleOperatorViewError("every relay in the directory has one operator")
        end = self._index_of(last)
        # Not listed: an operator of its own, with no tags.
        unlisted = _Candidate(_Hop(last), -1, frozenset())  # type: ignore[arg-type]
        fixed = [unlisted if end is None else self._candidate(end)]
        pool = [self._candidate(i) for i in range(len(self.candidates)) if i != end]
        rng.shuffle(pool)
        found = (
            _search(fixed, pool, hops - 1)
            if first is None
            else self._from(first, fixed, pool, hops)
        )
        if found is None:
            start = "" if first is None else " starting at a guard"
            raise NoDiverseRouteError(
                f"the directory holds no {hops}-hop route{start} of distinct operators and networks"
            )
        return [*(str(c.listing.identity) for c in found), last]

    def _from(
        self, first: Sequence[str], fixed: list[_Candidate], pool: list[_Candidate], hops: int
    ) -> list[_Candidate] | None:
        """The first of ``first`` that completes a diverse route with the last hop
        (``fixed``), then the middle hops."""
        for address in first:
            i = self._index_of(address)
            if i is None or (guard := self._candidate(i)).clashes(fixed[0]):
                continue  # not listed, or the mailbox relay's operator or network
            rest = [c for c in pool if c.listing.identity != guard.listing.identity]
            found = _search([*fixed, guard], rest, hops - 2)
            if found is not None:
                return [guard, *found]
        return None

    def route_addresses(self, last: RelayAddress, rng: random.Random) -> list[RelayAddress]:
        """:meth:`route` (3 hops) as relay addresses, ending with ``last`` itself."""
        return [*(RelayAddress.parse(a) for a in self.route(str(last), rng)[:-1]), last]

    def to_json(self) -> str:
        """The stored form."""
        rows = [
            {"address": address, "group": group, "tags": sorted(tags)}
            for address, group, tags in self.candidates
        ]
        return json.dumps({"v": 1, "candidates": rows})

    @classmethod
    def from_json(cls, text: str) -> OnionDirectory:
        """Read :meth:`to_json` output back.

        Raises:
            OnionDirectoryError: not a stored onion directory.
        """
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict) or doc.get("v") != 1:
                raise ValueError("not a version 1 document")
            rows = doc["candidates"]
            if not isinstance(rows, list) or len(rows) > MAX_CANDIDATES:
                raise ValueError("candidates must be a bounded list")
            return cls(tuple(_row(row) for row in rows))
        except (ValueError, KeyError, TypeError) as exc:
            raise OnionDirectoryError(f"stored onion directory is malformed: {exc}") from None


def _row(row: Any) -> tuple[str, int, frozenset[str]]:
    address, group, tags = row["address"], row["group"], row["tags"]
    if not isinstance(address, str) or len(address) > 300 or _node_of(address) is None:
        raise TypeError("an address is NODEID@HOST:PORT")
    if type(group) is not int or not isinstance(tags, list) or len(tags) > _MAX_TAGS:
        raise TypeError("a group is an integer, tags a short list")
    if not all(isinstance(tag, str) and len(tag) <= 64 for tag in tags):
        raise TypeError("a tag is short text")
    return address, group, frozenset(tags)


def _node_of(address: str) -> str | None:
    node, at, _ = address.partition("@")
    if not at:
        return None
    try:
        return str(NodeId.parse(node))
    except ValueError:
        return None


def _endpoint_of(address: str) -> str:
    return address.rpartition("@")[2]
